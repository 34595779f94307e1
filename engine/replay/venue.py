"""A venue made from a recorded tape: the real book and trades, our orders filled by queue position,
late by the wire's latency, in a book that trades and our hedges use up.

Our orders never move the recorded market's prices (no impact), so they must be small next to
it. What the tape does to them is modelled as a real exchange would do it:

- **Latency.** An action reaches the exchange `entry latency` after the core sends it: a quote
  rests only from then on (its place in the queue is the size shown at its price then), a
  cancel takes effect only then (the order can fill while the cancel is on its way; the cancel
  is then refused), a hedge walks the book as it stands then. Every answer, and every fill,
  reaches the core `response latency` after it happened at the exchange. Market data reaches
  the core at its recorded time.
- **Consumed liquidity.** A recorded trade takes its size out of the level it printed at, and a
  hedge takes what it fills, and the level stays that much thinner until a depth update for it
  replaces it: a second hedge, or a refill priced off the same sweep, finds what was left.
- **Queues.** A quote joins the back of its level: the size shown there when it arrives is
  ahead of it. Trades at our price eat the queue ahead first, then fill us. When the level
  shrinks without a trade (cancels), the queue model says how much of it was ahead of us:
  `risk-averse` (every cancel is behind us; the queue ahead only shrinks to what is shown) or
  `power` (hftbacktest's PowerProbQueueModel: a share of each decrease comes from ahead, the
  more so the further back we are, as a power `n` of the position in the queue).
- **Trades through our price.** A print beyond our price means the matching engine already
  took every order at our price, ours included (price-time priority): we fill in full
  (`fill_through = "full"`, hftbacktest's convention). `"traded"` fills only up to the size
  printed, a pessimistic bound for tapes whose prints are thinned.
- **The instrument's rules.** A quote under the contract's minimum notional is refused, and
  counted (`skipped_min_notional`).

The venue keeps the recorded book as two plain dicts of size by tick, with no ordering: the
core keeps its own full book from the same events, and the venue only needs the size at our
prices (every trade) and the touch (every placement), so sorting on demand costs far less than
maintaining a second sorted book per message. Our actions and answers wait in one heap by
time; with nothing in flight, a step is the tape's next event and nothing more.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from engine.events import (
    Action,
    BookUpdate,
    CancelAll,
    CancelOrder,
    CancelRejected,
    Fill,
    Instrument,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    Side,
    Trade,
    VenueEvent,
)
from engine.grid import floor_lots, ticks_to_price

_EPS_BASE = 1e-12
_NS_PER_MS = 1_000_000

QueueModel = Literal["risk-averse", "power"]
FillThrough = Literal["full", "traded"]


@dataclass(frozen=True, slots=True)
class ReplayModel:
    """How the replay treats our orders; the defaults are an exchange with no latency."""

    entry_latency_ms: float = 0.0
    """From the core's send to the exchange."""
    response_latency_ms: float = 0.0
    """From the exchange to the core: answers and fills."""
    queue: QueueModel = "risk-averse"
    queue_power: float = 2.0
    """The power model's `n`: higher puts more of each decrease behind a front-of-queue order."""
    fill_through: FillThrough = "full"
    min_notional_usd: float = 0.0
    """The contract's minimum order value; a quote under it is refused."""

    def describe(self) -> str:
        queue = self.queue if self.queue == "risk-averse" else f"power n={self.queue_power:g}"
        return (
            f"latency {self.entry_latency_ms:g} ms in, {self.response_latency_ms:g} ms back; "
            f"queue {queue}; trades through fill {self.fill_through}"
        )


class _RecordedBook:
    """The recorded levels, size by tick per side, less what trades and hedges took since the
    last depth update of each level; the touch is found on demand."""

    __slots__ = ("asks", "bids", "tick_size")

    def __init__(self, tick_size: float) -> None:
        self.tick_size = tick_size
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}

    def apply(self, update: BookUpdate) -> None:
        if update.is_snapshot:
            self.bids.clear()
            self.asks.clear()
        tick = self.tick_size
        for levels, sizes in ((update.bids, self.bids), (update.asks, self.asks)):
            for price, size in levels:
                ticks = round(price / tick)
                if size > 0:
                    sizes[ticks] = size
                else:
                    sizes.pop(ticks, None)

    def take(self, side: Side, ticks: int, size: float) -> None:
        """`size` traded away at `ticks` on `side`'s book (the resting side)."""
        sizes = self.bids if side is Side.BUY else self.asks
        left = sizes.get(ticks, 0.0) - size
        if left > _EPS_BASE:
            sizes[ticks] = left
        else:
            sizes.pop(ticks, None)

    def to_ticks(self, price: float) -> int:
        return round(price / self.tick_size)

    def size_at(self, side: Side, ticks: int) -> float:
        return (self.bids if side is Side.BUY else self.asks).get(ticks, 0.0)

    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (max(self.bids) + min(self.asks)) * self.tick_size / 2

    def touch(self, side: Side) -> int | None:
        """Best bid (side BUY) or best ask (side SELL), in ticks."""
        if side is Side.BUY:
            return max(self.bids) if self.bids else None
        return min(self.asks) if self.asks else None

    def ticks_from_touch(self, side: Side, limit: int) -> list[int]:
        """The first `limit` levels of one side, best first, in ticks."""
        sizes = self.bids if side is Side.BUY else self.asks
        return sorted(sizes, reverse=side is Side.BUY)[:limit]


@dataclass(slots=True)
class _Resting:
    order_id: str
    side: Side
    price: float
    ticks: int
    leaves_base: float
    queue_ahead_base: float


# kinds of what waits in the heap: an action reaching the exchange, or news reaching the core
_ARRIVE = 0
_DELIVER = 1


class ReplayVenue:
    """Steps through recorded events and our orders' traffic in time order."""

    def __init__(
        self,
        tape: Iterator[BookUpdate | Trade],
        instrument: Instrument,
        *,
        maker_fee_pct: float,
        taker_fee_pct: float,
        model: ReplayModel | None = None,
    ) -> None:
        self.instrument = instrument
        self.model = model or ReplayModel()
        self.book = _RecordedBook(instrument.tick_size)
        self.maker_fee_pct = maker_fee_pct
        self.taker_fee_pct = taker_fee_pct
        self._tape = tape
        self._next: BookUpdate | Trade | None = next(tape, None)
        self._heap: list[tuple[int, int, int, object]] = []
        self._seq = 0
        self._entry_ns = round(self.model.entry_latency_ms * _NS_PER_MS)
        self._response_ns = round(self.model.response_latency_ms * _NS_PER_MS)
        self._orders: dict[str, _Resting] = {}
        """Our orders resting at the exchange (as the exchange knows them)."""
        self.position_base = 0.0
        self.cash_usd = 0.0
        self.skipped_min_notional = 0
        """Quotes refused for being under the contract's minimum notional."""
        self.first_ts_ns = 0 if self._next is None else self._next.ts_ns
        self.now_ns = self.first_ts_ns

    @property
    def next_ts_ns(self) -> int | None:
        tape = None if self._next is None else self._next.ts_ns
        if self._heap:
            ours = self._heap[0][0]
            return ours if tape is None or ours < tape else tape
        return tape

    def resting_orders(self) -> list[tuple[str, Side, float, float]]:
        return [(o.order_id, o.side, o.price, o.leaves_base) for o in self._orders.values()]

    def step(self) -> list[VenueEvent]:
        """The next moment's events: the tape's next event (first on a tie: what the market did
        at a time happened before our traffic of that time), or our traffic due then."""
        heap, event = self._heap, self._next
        if heap and (event is None or heap[0][0] < event.ts_ns):
            return self._traffic(heap[0][0])
        if event is None:
            return []
        self._next = next(self._tape, None)
        self.now_ns = event.ts_ns
        if isinstance(event, BookUpdate):
            if self._orders:
                self._apply_with_queues(event)
            else:
                self.book.apply(event)
            return [event]
        if self._orders:
            for fill in self._match_trade(event):
                self._deliver(fill)
        self.book.take(event.aggressor.opposite, self.book.to_ticks(event.price), event.size_base)
        return [event]

    def submit(self, action: Action, now_ns: int) -> None:
        """The action leaves now; it reaches the exchange after the entry latency."""
        self._push(now_ns + self._entry_ns, _ARRIVE, action)

    # ---- traffic ------------------------------------------------------------------------------

    def _push(self, ts_ns: int, kind: int, item: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts_ns, self._seq, kind, item))

    def _deliver(self, event: VenueEvent) -> None:
        """News for the core, stamped with when it reaches the core (`_back`)."""
        self._push(event.ts_ns, _DELIVER, event)

    def _back(self, exchange_ns: int) -> int:
        """When news from the exchange at `exchange_ns` reaches the core."""
        return exchange_ns + self._response_ns

    def _traffic(self, ts_ns: int) -> list[VenueEvent]:
        """Everything of ours due at `ts_ns`: actions reach the exchange (in the order sent),
        news reaches the core."""
        self.now_ns = ts_ns
        heap = self._heap
        out: list[VenueEvent] = []
        while heap and heap[0][0] == ts_ns:
            _, _, kind, item = heapq.heappop(heap)
            if kind == _DELIVER:
                out.append(item)  # type: ignore[arg-type]
            else:
                self._arrive(item, ts_ns)  # type: ignore[arg-type]
        return out

    def _arrive(self, action: Action, now_ns: int) -> None:
        if isinstance(action, PlaceQuote):
            self._deliver(self._place(action, now_ns))
        elif isinstance(action, CancelOrder):
            self._cancel(action.order_id, now_ns)
        elif isinstance(action, CancelAll):
            for order_id in list(self._orders):
                self._cancel(order_id, now_ns)
        elif isinstance(action, PlaceHedge):
            for event in self._take(action, now_ns):
                self._deliver(event)

    def _cancel(self, order_id: str, now_ns: int) -> None:
        at = self._back(now_ns)
        if self._orders.pop(order_id, None) is None:
            self._deliver(CancelRejected(at, order_id, "not resting (filled or unknown)"))
        else:
            self._deliver(OrderCanceled(at, order_id))

    # ---- matching -----------------------------------------------------------------------------

    def _place(self, quote: PlaceQuote, now_ns: int) -> VenueEvent:
        at = self._back(now_ns)
        minimum = self.model.min_notional_usd
        if minimum and quote.price * quote.size_base < minimum - 1e-9:
            self.skipped_min_notional += 1
            return OrderRejected(
                at,
                quote.order_id,
                f"below the ${minimum:g} minimum notional ({quote.size_base:g} at {quote.price:g})",
            )
        ticks = self.book.to_ticks(quote.price)
        best = self.book.touch(quote.side.opposite)
        if best is not None and (ticks - best) * int(quote.side) >= 0:
            return OrderRejected(at, quote.order_id, "post-only would cross")
        self._orders[quote.order_id] = _Resting(
            quote.order_id,
            quote.side,
            quote.price,
            ticks,
            quote.size_base,
            self.book.size_at(quote.side, ticks),
        )
        return OrderAccepted(at, quote.order_id)

    def _apply_with_queues(self, update: BookUpdate) -> None:
        """A depth update with our orders resting: a level of ours that shrank without a trade
        lost orders, and the queue model says how many of them were ahead of us."""
        book = self.book
        before = [(order, book.size_at(order.side, order.ticks)) for order in self._orders.values()]
        book.apply(update)
        power = self.model.queue == "power"
        n = self.model.queue_power
        for order, prev in before:
            new = book.size_at(order.side, order.ticks)
            front = order.queue_ahead_base
            change = prev - new
            if power and change > 0 and front > 0:
                back = max(prev - front, 0.0)
                weight_back, weight_front = back**n, front**n
                from_back = weight_back / (weight_back + weight_front)
                front = front - (1.0 - from_back) * change + min(back - from_back * change, 0.0)
            order.queue_ahead_base = max(min(front, new), 0.0)

    def _match_trade(self, trade: Trade) -> list[Fill]:
        fills: list[Fill] = []
        trade_ticks = self.book.to_ticks(trade.price)
        full = self.model.fill_through == "full"
        lot = self.instrument.lot_size
        mid: float | None = None  # found only when we fill: it scans the book
        for order in list(self._orders.values()):
            if order.side is trade.aggressor:
                continue
            # how far the trade went past our price, in ticks: > 0 traded through us
            through = (order.ticks - trade_ticks) * int(order.side)
            if through < 0:
                continue
            if through > 0:
                size = order.leaves_base if full else min(order.leaves_base, trade.size_base)
            else:
                ahead = order.queue_ahead_base - trade.size_base
                order.queue_ahead_base = max(ahead, 0.0)
                if ahead >= 0:
                    continue
                size = min(-ahead, order.leaves_base)
            size = floor_lots(size, lot)  # a queue estimate is not a whole number of lots
            if size > 0:
                if mid is None:
                    mid = self.book.mid()
                fills.append(self._fill(order, size, self._back(trade.ts_ns), mid))
        return fills

    def _fill(self, order: _Resting, size_base: float, ts_ns: int, mid: float | None) -> Fill:
        order.leaves_base -= size_base
        if order.leaves_base <= _EPS_BASE:
            order.leaves_base = 0.0
            del self._orders[order.order_id]
        fee = size_base * order.price * self.maker_fee_pct / 100.0
        self._book_fill(order.side, order.price, size_base, fee)
        return Fill(ts_ns, order.order_id, order.side, order.price, size_base, fee, True,
                    order.leaves_base, venue_mid=mid)  # fmt: skip

    def _take(self, hedge: PlaceHedge, now_ns: int) -> list[VenueEvent]:
        """Walk the opposite side of the book as it stands from the touch, taking what it fills
        out of it; one fill per level."""
        events: list[VenueEvent] = []
        at = self._back(now_ns)
        book, side = self.book, hedge.side.opposite
        mid = book.mid()
        remaining = hedge.size_base
        for ticks in book.ticks_from_touch(side, 50):
            if remaining <= _EPS_BASE:
                break
            take = min(book.size_at(side, ticks), remaining)
            remaining -= take
            book.take(side, ticks, take)
            price = ticks_to_price(ticks, book.tick_size)
            leaves = remaining if remaining > _EPS_BASE else 0.0
            fee = take * price * self.taker_fee_pct / 100.0
            self._book_fill(hedge.side, price, take, fee)
            events.append(Fill(at, hedge.order_id, hedge.side, price, take, fee, False, leaves,
                               venue_mid=mid))  # fmt: skip
        if remaining > _EPS_BASE:
            events.append(OrderCanceled(at, hedge.order_id))
        return events

    def _book_fill(self, side: Side, price: float, size_base: float, fee_usd: float) -> None:
        self.position_base += int(side) * size_base
        self.cash_usd -= int(side) * size_base * price + fee_usd
