"""A venue made from a recorded tape: the real book and trades, our orders filled by queue position.

Our orders never change the recorded market (no impact), so they must be small next to it.
A quote joins the back of the queue at its price: the size displayed there when it arrives
is ahead of it. Real trades at our price eat that queue first (cancels are assumed to come
from behind us, but the queue ahead can never exceed what the book still shows there); once
it is gone, the rest of the trade fills us. A trade at a worse price than ours means the
whole level at our price traded, so we fill completely. Hedges take the recorded book from
the touch, level by level, at the taker fee. Acknowledgements and cancels take effect at once.

The venue keeps the recorded book as two plain dicts of size by tick, with no ordering: the
core keeps its own full book from the same events, and the venue only needs the size at our
prices (every trade) and the touch (every placement, every few seconds), so sorting on
demand costs far less than maintaining a second sorted book per message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

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
from engine.grid import ticks_to_price

_EPS_BASE = 1e-12


class _RecordedBook:
    """The recorded levels, size by tick per side; the touch is found on demand."""

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

    def to_ticks(self, price: float) -> int:
        return round(price / self.tick_size)

    def size_at(self, side: Side, ticks: int) -> float:
        return (self.bids if side is Side.BUY else self.asks).get(ticks, 0.0)

    def touch(self, side: Side) -> int | None:
        """Best bid (side BUY) or best ask (side SELL), in ticks."""
        if side is Side.BUY:
            return max(self.bids) if self.bids else None
        return min(self.asks) if self.asks else None

    def levels_from_touch(self, side: Side, limit: int) -> list[tuple[float, float]]:
        """The first `limit` levels of one side, best first, as (price, size)."""
        sizes = self.bids if side is Side.BUY else self.asks
        ticks = sorted(sizes, reverse=side is Side.BUY)[:limit]
        return [(ticks_to_price(t, self.tick_size), sizes[t]) for t in ticks]


@dataclass(slots=True)
class _Resting:
    order_id: str
    side: Side
    price: float
    ticks: int
    leaves_base: float
    queue_ahead_base: float


class ReplayVenue:
    """Steps through recorded events; `submit` reacts to our orders against the recorded book."""

    def __init__(
        self,
        tape: Iterator[BookUpdate | Trade],
        instrument: Instrument,
        *,
        maker_fee_pct: float,
        taker_fee_pct: float,
    ) -> None:
        self.instrument = instrument
        self.book = _RecordedBook(instrument.tick_size)
        self.maker_fee_pct = maker_fee_pct
        self.taker_fee_pct = taker_fee_pct
        self._tape = tape
        self._next: BookUpdate | Trade | None = next(tape, None)
        self._pending: deque[VenueEvent] = deque()
        self._orders: dict[str, _Resting] = {}
        self.position_base = 0.0
        self.cash_usd = 0.0
        self.first_ts_ns = 0 if self._next is None else self._next.ts_ns
        self.now_ns = self.first_ts_ns

    @property
    def next_ts_ns(self) -> int | None:
        if self._pending:
            return self.now_ns
        return None if self._next is None else self._next.ts_ns

    def resting_orders(self) -> list[tuple[str, Side, float, float]]:
        return [(o.order_id, o.side, o.price, o.leaves_base) for o in self._orders.values()]

    def step(self) -> list[VenueEvent]:
        """Our order results first (they happened at `now`), else the next recorded event."""
        if self._pending:
            events = list(self._pending)
            self._pending.clear()
            return events
        event = self._next
        if event is None:
            return []
        self._next = next(self._tape, None)
        self.now_ns = event.ts_ns
        if isinstance(event, BookUpdate):
            self.book.apply(event)
            return [event]
        if not self._orders:
            return [event]
        return [event, *self._match_trade(event)]

    def submit(self, action: Action, now_ns: int) -> None:
        out = self._pending
        if isinstance(action, PlaceQuote):
            out.append(self._place(action, now_ns))
        elif isinstance(action, CancelOrder):
            if self._orders.pop(action.order_id, None) is None:
                out.append(CancelRejected(now_ns, action.order_id, "unknown order"))
            else:
                out.append(OrderCanceled(now_ns, action.order_id))
        elif isinstance(action, CancelAll):
            out.extend(OrderCanceled(now_ns, order_id) for order_id in self._orders)
            self._orders.clear()
        elif isinstance(action, PlaceHedge):
            out.extend(self._take(action, now_ns))

    # ---- matching -----------------------------------------------------------------------------

    def _place(self, quote: PlaceQuote, now_ns: int) -> VenueEvent:
        ticks = self.book.to_ticks(quote.price)
        best = self.book.touch(quote.side.opposite)
        if best is not None and (ticks - best) * int(quote.side) >= 0:
            return OrderRejected(now_ns, quote.order_id, "post-only would cross")
        self._orders[quote.order_id] = _Resting(
            quote.order_id,
            quote.side,
            quote.price,
            ticks,
            quote.size_base,
            self.book.size_at(quote.side, ticks),
        )
        return OrderAccepted(now_ns, quote.order_id)

    def _match_trade(self, trade: Trade) -> list[VenueEvent]:
        fills: list[VenueEvent] = []
        trade_ticks = self.book.to_ticks(trade.price)
        for order in list(self._orders.values()):
            if order.side is trade.aggressor:
                continue
            # how far the trade went past our price, in ticks: > 0 traded through us
            through = (order.ticks - trade_ticks) * int(order.side)
            if through < 0:
                continue
            if through > 0:
                size = order.leaves_base
            else:
                ahead = min(order.queue_ahead_base, self.book.size_at(order.side, order.ticks))
                ahead -= trade.size_base
                order.queue_ahead_base = max(ahead, 0.0)
                if ahead >= 0:
                    continue
                size = min(-ahead, order.leaves_base)
            fills.append(self._fill(order, size, trade.ts_ns))
        return fills

    def _fill(self, order: _Resting, size_base: float, ts_ns: int) -> Fill:
        order.leaves_base -= size_base
        if order.leaves_base <= _EPS_BASE:
            order.leaves_base = 0.0
            del self._orders[order.order_id]
        fee = size_base * order.price * self.maker_fee_pct / 100.0
        self._book_fill(order.side, order.price, size_base, fee)
        return Fill(
            ts_ns, order.order_id, order.side, order.price, size_base, fee, True, order.leaves_base
        )

    def _take(self, hedge: PlaceHedge, now_ns: int) -> list[VenueEvent]:
        """Walk the opposite side of the recorded book from the touch; one fill per level."""
        events: list[VenueEvent] = []
        levels = self.book.levels_from_touch(hedge.side.opposite, 50)
        remaining = hedge.size_base
        for price, size in levels:
            if remaining <= _EPS_BASE:
                break
            take = min(size, remaining)
            remaining -= take
            leaves = remaining if remaining > _EPS_BASE else 0.0
            fee = take * price * self.taker_fee_pct / 100.0
            self._book_fill(hedge.side, price, take, fee)
            events.append(Fill(now_ns, hedge.order_id, hedge.side, price, take, fee, False, leaves))
        if remaining > _EPS_BASE:
            events.append(OrderCanceled(now_ns, hedge.order_id))
        return events

    def _book_fill(self, side: Side, price: float, size_base: float, fee_usd: float) -> None:
        self.position_base += int(side) * size_base
        self.cash_usd -= int(side) * size_base * price + fee_usd
