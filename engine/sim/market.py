"""The embedded exchange: one simulated perp market, its matching, and our account on it.

`SimMarket` is pure and deterministic: no I/O, no wall clock. Simulated time is integer
nanoseconds; `step()` advances to the next occurrence and returns the events it produced, all
stamped with its time. Occurrences, in priority order when they share a timestamp:

1. our actions (`submit`, effective `latency_ms` later) and injected takers (`inject_taker`),
   in the order they were submitted;
2. the book interval: the fair price moves one step, the background book is redrawn around
   it, our resting orders the new book crosses are filled, and a `BookUpdate` snapshot is
   published (every interval, changed or not; it includes our own resting orders, as a real
   venue's book does);
3. a background taker (Poisson arrivals) walks the book;
4. the hourly funding payment (when enabled), marked at the fair price.

Random streams are separate and derived from the seed (price path, book, takers, venue
rejects), so our orders never change the price path or the taker arrivals: two strategies
on one seed face the same market, and the same actions give the same event stream.

Fills:

- Takers walk the combined book (background levels plus our quotes) in price-time priority.
  Our quote joins the back of its price level: the background size displayed there when it
  arrives is ahead of it (`queue_ahead`). The queue ahead shrinks only when takers trade at
  that price, and is capped at the displayed size when the book is redrawn (a thinner level
  cannot hide more size ahead of us than it shows). Partial fills happen.
- A redraw whose opposite side reaches our price fills our order in full at our price as a
  maker: the price moved through us. This is where most adverse selection comes from.
- A share `informed_share` of takers know the fair price `informed_horizon_s` ahead and
  trade toward it; the rest pick a side 50/50.
- Hedges are taker IOCs: they walk the background book from the best price, one `Fill` per
  level at that level's price, taker fee on each; what the displayed book cannot fill is
  cancelled (`OrderCanceled`). They skip our own quotes (self-trade prevention leaves them
  resting). No `OrderAccepted` is sent for a hedge: fills or the cancel are its answer.
- What takers and hedges eat stays gone until the next redraw (at most one interval).

Calibration (defaults), stated against the trivial quoter of `engine.sim.drill` ($100 a side
at the book mid -+ N bps, cancelled and reposted every 3 s, nothing else):

- fair price: 0.2 / 0.35 / 1.5 %/h Brownian (quiet / normal / volatile; about a third, three
  fifths and a twentieth of the time) plus 20 jumps an hour of sd 0.05 % (5 bps) in normal,
  so normal totals ~0.42 %/h, BTC's usual hourly vol. Jumps fatten the tails: a Gaussian walk
  alone makes fills fall off a cliff between 2.5 and 5 bps, real markets do not.
- book: ~2 ticks touch spread, ~$5k at the touch, ~$184k within 2.5 bps of the fair price and
  ~$384k over the 20 levels (4.4 bps) a side; volatile is 40 % thinner.
- takers: 2 a second in normal (x0.7 quiet, x2 volatile), lognormal notional, median $3,000,
  log-sd 1.6 (mean ~$11k; 1 in 230 is above $200k and sweeps to 2.5 bps).

Measured by `bench/sim.py` (8 simulated hours, seeds 1-6): at -+2.5 bps, 330-930 fills
(median ~680) and $33k-93k volume, against the guide's hypothetical ~500 fills / $50k a day;
per hour that is ~80 fills in normal, ~25 in quiet and ~1,250 in volatile. At -+5 bps: 80-330
fills in 8 h (~15/h normal, ~7/h quiet, ~550/h volatile). About half the normal-regime fills come
from the price running through the quote, half from large takers sweeping to it. The
market alone runs 8 h in ~4 s on one core (~290k book updates, ~100k trades).
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import insort
from dataclasses import dataclass

from engine.events import (
    Action,
    BookUpdate,
    CancelAll,
    CancelOrder,
    CancelRejected,
    Fill,
    FundingPayment,
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
from engine.sim.background import BackgroundBook
from engine.sim.params import Regime, SimParams
from engine.sim.price import FairPricePath
from engine.sim.units import GridFloats

_NS_PER_S = 1_000_000_000
_HOUR_NS = 3600 * _NS_PER_S
_NEVER_NS = 1 << 62
_LOT_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class _Taker:
    """A market order from someone else (background flow, or injected by a test or a replay)."""

    side: Side
    lots: int


SELF = ""
"""The account of the in-process console: the one every single-account method speaks for."""


@dataclass(frozen=True, slots=True)
class LimitOrder:
    """A participant's limit order with a time in force, for multi-account callers (the local
    exchange): "Alo" is post-only (refused if it would cross), "Ioc" takes what it can at `ticks`
    or better and cancels the rest, "Gtc" takes what it can and rests the remainder."""

    order_id: str
    side: Side
    ticks: int
    lots: int
    tif: str


class Account:
    """One participant's money on the market: cash and position, in the venue's floats."""

    __slots__ = ("cash_usd", "position_base", "position_lots")

    def __init__(self, cash_usd: float, position_lots: int, position_base: float) -> None:
        self.cash_usd = cash_usd
        self.position_lots = position_lots
        self.position_base = position_base


class _RestingOrder:
    """A participant's order on the book."""

    __slots__ = (
        "account",
        "leaves_lots",
        "order_id",
        "price",
        "queue_ahead_lots",
        "seq",
        "side",
        "ticks",
    )

    def __init__(
        self,
        order_id: str,
        side: Side,
        ticks: int,
        price: float,
        lots: int,
        queue: int,
        seq: int,
        account: str = SELF,
    ) -> None:
        self.account = account
        self.order_id = order_id
        self.side = side
        self.ticks = ticks
        self.price = price
        self.leaves_lots = lots
        self.queue_ahead_lots = queue
        self.seq = seq


def _bid_key(order: _RestingOrder) -> tuple[int, int]:
    return (-order.ticks, order.seq)


def _ask_key(order: _RestingOrder) -> tuple[int, int]:
    return (order.ticks, order.seq)


class SimMarket:
    """A simulated BTC perp venue: prices, background book, takers, our orders, our account."""

    def __init__(self, params: SimParams) -> None:
        self.params = params
        self.instrument = Instrument(params.symbol, params.tick_size, params.lot_size)
        start = params.start_ns
        self.now_ns = start
        seed = params.seed
        self._taker_rng = random.Random(f"{seed}:takers")
        self._venue_rng = random.Random(f"{seed}:venue")
        self._fault_rng = random.Random(f"{seed}:faults")
        self._feed_gap_until_ns = 0
        self._next_feed_gap_ns = self._draw_feed_gap_ns(start)
        self._book_interval_ns = max(1, round(params.book_interval_s * _NS_PER_S))
        horizon_steps = round(params.informed_horizon_s / params.book_interval_s)
        self._path = FairPricePath(params, random.Random(f"{seed}:price"), horizon_steps)
        self._book = BackgroundBook(params, random.Random(f"{seed}:book"))
        self._prices = GridFloats(params.tick_size)
        self._sizes = GridFloats(params.lot_size)
        self._tick_size = params.tick_size
        self._lot_size = params.lot_size
        self._maker_fee = params.maker_fee_pct / 100.0
        self._taker_fee = params.taker_fee_pct / 100.0
        self._latency_ns = round(params.latency_ms * 1_000_000)
        self._taker_log_median = math.log(params.taker_median_usd)
        self._self = Account(
            params.start_cash_usd,
            round(params.start_position_base / params.lot_size),
            params.start_position_base,
        )
        self._accounts: dict[str, Account] = {SELF: self._self}
        self.outbox: list[tuple[str, VenueEvent, str]] = []
        """Private events of accounts other than SELF, in order: (account, event, note); the
        note says why an order was cancelled by the venue ("selfTrade") or is empty. SELF's
        private events stay in the lists `step()` returns, as they always have."""
        self._seq = 0
        self._orders: dict[str, _RestingOrder] = {}
        self._bids: list[_RestingOrder] = []  # best first: price desc, then time
        self._asks: list[_RestingOrder] = []  # best first: price asc, then time
        self._pending: list[tuple[int, int, tuple[str, Action] | _Taker]] = []
        self._book_steps = 0
        self._next_book_ns = start
        self._next_funding_ns = start + _HOUR_NS if params.funding_enabled else _NEVER_NS
        self._next_taker_ns = self._draw_taker_gap_ns(start)
        self._book.refresh(self._path.fair_usd, self._regime().depth_mult)

    # ---- reading ---------------------------------------------------------------------------------

    @property
    def next_ts_ns(self) -> int:
        """When the next occurrence happens (never before `now_ns`)."""
        ts = self._next_book_ns
        if self._next_taker_ns < ts:
            ts = self._next_taker_ns
        if self._next_funding_ns < ts:
            ts = self._next_funding_ns
        if self._pending and self._pending[0][0] <= ts:
            ts = self._pending[0][0]
        return ts

    @property
    def fair_mid(self) -> float:
        """The latent fair price now: what markouts are measured against (no venue shows it)."""
        return self._path.fair_usd

    @property
    def regime(self) -> str:
        """Name of the price regime in force now."""
        return self._path.regime.name

    @property
    def cash_usd(self) -> float:
        return self._self.cash_usd

    @property
    def position_base(self) -> float:
        return self._self.position_base

    def equity_usd(self, mark: float) -> float:
        return self.cash_usd + self.position_base * mark

    def resting_orders(self, account: str = SELF) -> list[tuple[str, Side, float, float]]:
        """An account's live orders as (order_id, side, price, leaves_base), oldest first."""
        sizes = self._sizes
        return [
            (o.order_id, o.side, o.price, sizes[o.leaves_lots])
            for o in self._orders.values()
            if o.account == account
        ]

    def account(self, name: str) -> Account:
        """A participant's account, opened empty on first use."""
        account = self._accounts.get(name)
        if account is None:
            account = self._accounts[name] = Account(0.0, 0, 0.0)
        return account

    def best_ticks(self) -> tuple[int | None, int | None]:
        """Best bid and ask, in ticks, over the background and every resting order."""
        return self._best_bid_ticks(), self._best_ask_ticks()

    def book_levels(
        self, depth: int
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """The combined book as it stands, best first, up to `depth` levels a side:
        (ticks, lots, order count), where the background at a level counts as one order."""
        return (
            self._levels_of(self._book.bid_ticks, self._book.bid_lots, self._bids, True, depth),
            self._levels_of(self._book.ask_ticks, self._book.ask_lots, self._asks, False, depth),
        )

    def _levels_of(
        self,
        level_ticks: list[int],
        level_lots: list[int],
        orders: list[_RestingOrder],
        is_bid: bool,
        depth: int,
    ) -> list[tuple[int, int, int]]:
        merged: dict[int, list[int]] = {}
        for ticks, lots in zip(level_ticks, level_lots, strict=True):
            if lots:
                merged[ticks] = [lots, 1]
        for order in orders:
            level = merged.setdefault(order.ticks, [0, 0])
            level[0] += order.leaves_lots
            level[1] += 1
        ordered = sorted(merged, reverse=is_bid)[:depth]
        return [(t, merged[t][0], merged[t][1]) for t in ordered]

    def queue_ahead_base(self, order_id: str) -> float:
        """Background size ahead of our order at its price (KeyError if it is not resting)."""
        return self._sizes[self._orders[order_id].queue_ahead_lots]

    # ---- input -----------------------------------------------------------------------------------

    def submit(self, action: Action, now_ns: int, account: str = SELF) -> None:
        """Send one of our actions; it takes effect at now_ns + latency (never in the past) and
        its results come out of `step()` (another account's private results: `outbox`)."""
        latency_ns = self._latency_ns
        spike = self.params.latency_spike_rate
        if spike and self._fault_rng.random() < spike:
            latency_ns = round(self.params.latency_spike_ms * 1_000_000)
        self._push(max(now_ns + latency_ns, self.now_ns), (account, action))

    def inject_taker(self, side: Side, size_base: float, now_ns: int) -> None:
        """Someone else's market order, at now_ns (no latency: it is not ours). For scripted
        scenarios and replays; it walks the combined book like any background taker."""
        lots = math.floor(size_base / self._lot_size + _LOT_EPS)
        if lots <= 0:
            raise ValueError(f"taker size {size_base!r} is below one lot ({self._lot_size})")
        self._push(max(now_ns, self.now_ns), _Taker(side, lots))

    def execute(self, action: Action | LimitOrder, account: str) -> list[VenueEvent]:
        """Process one action of `account` at `now_ns`, before anything else due then: for a
        caller that answers each request at once (the local exchange). Public events are
        returned; private ones go to `outbox`."""
        if account == SELF:
            raise ValueError("execute() is for other accounts; SELF submits")
        self.account(account)
        events: list[VenueEvent] = []
        if isinstance(action, LimitOrder):
            self._place_limit(action, account, self.now_ns, events)
        else:
            self._act(action, account, self.now_ns, events)
        return events

    def advance_to(self, ts_ns: int) -> list[VenueEvent]:
        """Step through every occurrence due up to `ts_ns` and set the clock there."""
        events: list[VenueEvent] = []
        while self.next_ts_ns <= ts_ns:
            events += self.step()
        if ts_ns > self.now_ns:
            self.now_ns = ts_ns
        return events

    def _push(self, ts_ns: int, item: tuple[str, Action] | _Taker) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (ts_ns, self._seq, item))

    # ---- the clock -------------------------------------------------------------------------------

    def step(self) -> list[VenueEvent]:
        """Advance to `next_ts_ns`, process exactly that occurrence, return its events."""
        ts = self.next_ts_ns
        self.now_ns = ts
        events: list[VenueEvent] = []
        if self._pending and self._pending[0][0] == ts:
            item = heapq.heappop(self._pending)[2]
            if isinstance(item, _Taker):
                self._take(item.side, item.lots, ts, events, None)
            else:
                self._act(item[1], item[0], ts, events)
        elif self._next_book_ns == ts:
            self._on_book_interval(ts, events)
        elif self._next_taker_ns == ts:
            self._on_background_taker(ts, events)
        else:
            self._on_funding(ts, events)
        return events

    def _regime(self) -> Regime:
        return self._path.regime

    # ---- the book interval ---------------------------------------------------------------------

    def _on_book_interval(self, ts: int, events: list[VenueEvent]) -> None:
        self._next_book_ns = ts + self._book_interval_ns
        book = self._book
        if self._book_steps:  # the path's present at t=0 is the start price, drawn in __init__
            fair = self._path.advance()
            book.refresh(fair, self._regime().depth_mult)
        self._book_steps += 1
        first_event = len(events)
        if self._bids:
            self._settle_resting(self._bids, True, book.top_ask_ticks, ts, events)
        if self._asks:
            self._settle_resting(self._asks, False, book.top_bid_ticks, ts, events)
        if ts >= self._next_feed_gap_ns:
            self._feed_gap_until_ns = ts + round(self.params.feed_gap_s * _NS_PER_S)
            self._next_feed_gap_ns = self._draw_feed_gap_ns(self._feed_gap_until_ns)
        if ts >= self._feed_gap_until_ns:  # during a feed gap the market moves unseen
            # the book that moved through our quotes goes out before the fills it caused
            events.insert(first_event, self._snapshot(ts))

    def _draw_feed_gap_ns(self, after_ns: int) -> int:
        rate = self.params.feed_gap_rate_per_hour
        if rate <= 0:
            return _NEVER_NS
        return after_ns + int(self._fault_rng.expovariate(rate) * _HOUR_NS)

    def _settle_resting(
        self,
        orders: list[_RestingOrder],
        is_bid: bool,
        opposite_top_ticks: int,
        ts: int,
        events: list[VenueEvent],
    ) -> None:
        """After a redraw: fill our orders the opposite side now reaches, cap the queues."""
        book = self._book
        done = False
        for order in orders:
            crossed = (
                order.ticks >= opposite_top_ticks if is_bid else order.ticks <= opposite_top_ticks
            )
            if crossed:
                # the price moved through us: the crowd on the other side traded into our quote
                lots = order.leaves_lots
                self._maker_fill(order, lots, ts, events)
                events.append(Trade(ts, order.price, self._sizes[lots], order.side.opposite))
                done = True
                continue
            if order.queue_ahead_lots:
                shown = book.lots_at(is_bid, order.ticks)
                if shown < order.queue_ahead_lots:
                    order.queue_ahead_lots = shown
        if done:
            orders[:] = [o for o in orders if o.leaves_lots]

    def _snapshot(self, ts: int, walked: bool = False) -> BookUpdate:
        """The published book: fresh after a redraw, what the shape says; `walked`, what a
        taker's walk left of it (levels it emptied are gone)."""
        book = self._book
        prices = self._prices
        bid_prices = [prices[t] for t in book.bid_ticks]
        ask_prices = [prices[t] for t in book.ask_ticks]
        if walked:
            sizes = self._sizes
            bid_sizes = [sizes[lots] for lots in book.bid_lots]
            ask_sizes = [sizes[lots] for lots in book.ask_lots]
        else:
            bid_sizes = book.bid_sizes_base
            ask_sizes = book.ask_sizes_base
        if self._bids:
            bid_prices, bid_sizes = self._with_ours(bid_prices, bid_sizes, self._bids, True)
        if self._asks:
            ask_prices, ask_sizes = self._with_ours(ask_prices, ask_sizes, self._asks, False)
        if walked:
            bid_prices, bid_sizes = _shown(bid_prices, bid_sizes)
            ask_prices, ask_sizes = _shown(ask_prices, ask_sizes)
        return BookUpdate(
            ts,
            tuple(zip(bid_prices, bid_sizes, strict=True)),
            tuple(zip(ask_prices, ask_sizes, strict=True)),
            True,
        )

    def _with_ours(
        self, prices: list[float], sizes: list[float], ours: list[_RestingOrder], is_bid: bool
    ) -> tuple[list[float], list[float]]:
        """One side of the published book with our resting orders added (a venue's book shows
        everyone's orders, ours included); still `book_levels` deep."""
        book = self._book
        level_lots = book.bid_lots if is_bid else book.ask_lots
        n_levels = self.params.book_levels
        sizes = sizes.copy()
        inserted = 0
        n_ours = len(ours)
        k = n_ours - 1
        while k >= 0:  # worst price first, so the indexes of better prices stay valid
            order = ours[k]
            lots = order.leaves_lots
            k -= 1
            while k >= 0 and ours[k].ticks == order.ticks:  # our orders sharing a price
                lots += ours[k].leaves_lots
                k -= 1
            index, exact = book.position(is_bid, order.ticks)
            if index >= n_levels:
                continue
            if exact:
                sizes[index] = self._sizes[level_lots[index] + lots]
            else:
                prices.insert(index, order.price)
                sizes.insert(index, self._sizes[lots])
                inserted += 1
        if inserted:
            del prices[n_levels:]
            del sizes[n_levels:]
        return prices, sizes

    # ---- takers --------------------------------------------------------------------------------

    def _draw_taker_gap_ns(self, ts: int) -> int:
        # the rate of the regime in force when the previous taker came; regimes last minutes,
        # takers come every half second, so the lag is invisible
        rate = self.params.taker_rate_per_s * self._regime().taker_rate_mult
        if rate <= 0.0:
            return _NEVER_NS
        return ts + 1 + int(self._taker_rng.expovariate(rate) * _NS_PER_S)

    def _on_background_taker(self, ts: int, events: list[VenueEvent]) -> None:
        rng = self._taker_rng
        fair = self._path.fair_usd
        self._next_taker_ns = self._draw_taker_gap_ns(ts)
        notional_usd = rng.lognormvariate(self._taker_log_median, self.params.taker_size_sigma)
        informed = rng.random() < self.params.informed_share
        coin = rng.random()
        lots = int(notional_usd / fair / self._lot_size)
        if lots <= 0:
            return
        if informed:
            future = self._path.future_fair_usd
            if future == fair:
                return
            side = Side.BUY if future > fair else Side.SELL
            # it trades only prices better than the future fair price: a stale quote of ours
            # on the wrong side of it is exactly what it is looking for
            limit_ticks = future / self.params.tick_size
            lots = int(lots * self.params.informed_size_mult)
            self._take(side, lots, ts, events, None, limit_ticks)
            return
        side = Side.SELL if coin < self._regime().sell_share else Side.BUY
        self._take(side, lots, ts, events, None)

    def _take(
        self,
        side: Side,
        lots: int,
        ts: int,
        events: list[VenueEvent],
        taker: tuple[str, str] | None,
        limit_ticks: float | None = None,
    ) -> int:
        """Walk the book against an aggressor of `side` for `lots`; return the lots left over.

        With `limit_ticks` the walk stops at the first level not strictly better than it (a
        buyer takes only prices below it, a seller only prices above it).

        Background takers (`taker` None) meet every resting order in price-time priority. A
        participant's taker order (`taker` = (account, order_id)) meets the background and other
        accounts' orders, is filled as a taker at each level, and never trades with its own
        account's orders: SELF's are skipped and left resting (the console's hedges); another
        account's own order is cancelled when the walk reaches it in price-time order, and the
        walk goes on (Hyperliquid's self-trade prevention: the resting order is cancelled, no
        fee). An own order the walk does not reach (behind what it took) stays.
        """
        book = self._book
        if side is Side.BUY:
            level_ticks, level_lots, ours, is_bid = book.ask_ticks, book.ask_lots, self._asks, False
        else:
            level_ticks, level_lots, ours, is_bid = book.bid_ticks, book.bid_lots, self._bids, True
        stp: str | None = None  # the account whose own orders the walk cancels on reaching them
        if taker is None:
            ours_walked = ours
        elif taker[0] == SELF:
            ours_walked = [o for o in ours if o.account != SELF] if ours else ours
        else:
            ours_walked = ours
            stp = taker[0]
        self_hits: list[_RestingOrder] = []
        first_event = len(events)
        n_levels = len(level_ticks)
        n_ours = len(ours_walked)
        prices, sizes = self._prices, self._sizes
        remaining = lots
        i = j = 0
        any_done = False
        while remaining:
            while i < n_levels and not level_lots[i]:
                i += 1
            if i < n_levels:
                ticks = level_ticks[i]
                if j < n_ours:
                    our_ticks = ours_walked[j].ticks
                    if (our_ticks > ticks) if is_bid else (our_ticks < ticks):
                        ticks = our_ticks
            elif j < n_ours:
                ticks = ours_walked[j].ticks
            else:
                break  # the displayed book is exhausted
            if limit_ticks is not None and (
                ticks <= limit_ticks if is_bid else ticks >= limit_ticks
            ):
                break
            shown = level_lots[i] if i < n_levels and level_ticks[i] == ticks else 0
            traded = 0
            background_done = 0
            while j < n_ours and ours_walked[j].ticks == ticks:
                order = ours_walked[j]
                j += 1
                if not remaining:
                    continue
                queue = order.queue_ahead_lots
                ahead = (queue if queue < shown else shown) - background_done
                if ahead > 0:
                    take = ahead if ahead < remaining else remaining
                    background_done += take
                    remaining -= take
                if remaining and order.account == stp:  # reached our own order: cancel it
                    self_hits.append(order)
                    continue
                if remaining:
                    take = order.leaves_lots if order.leaves_lots < remaining else remaining
                    remaining -= take
                    traded += take
                    self._maker_fill(order, take, ts, events)
                    any_done = any_done or not order.leaves_lots
            if remaining and shown > background_done:
                take = shown - background_done
                take = take if take < remaining else remaining
                background_done += take
                remaining -= take
            if background_done:  # only ever taken from `shown`, i.e. level i
                level_lots[i] -= background_done
                for order in ours_walked[j - 1 :: -1] if j else ():
                    if order.ticks != ticks:
                        break
                    if order.leaves_lots and order.queue_ahead_lots:
                        order.queue_ahead_lots = max(0, order.queue_ahead_lots - background_done)
            traded += background_done
            if not traded:  # a level holding only the taker's own orders, now cancelled
                continue
            price = prices[ticks]
            if taker is not None:
                self._taker_fill(taker[0], taker[1], side, price, traded, remaining, ts, events)
            events.append(Trade(ts, price, sizes[traded], side))
        if any_done:
            ours[:] = [o for o in ours if o.leaves_lots]
        if self_hits:
            gone = {id(o) for o in self_hits}
            ours[:] = [o for o in ours if id(o) not in gone]
            for order in self_hits:
                del self._orders[order.order_id]
                self._emit(order.account, OrderCanceled(ts, order.order_id), None, "selfTrade")
        if taker is not None:
            for order in ours:  # the taker ate background in front of resting orders
                if order.queue_ahead_lots:
                    shown = book.lots_at(is_bid, order.ticks)
                    if shown < order.queue_ahead_lots:
                        order.queue_ahead_lots = shown
        self._book_before_our_fills(events, first_event, ts)
        return remaining

    def _book_before_our_fills(self, events: list[VenueEvent], first: int, ts: int) -> None:
        """A walk that filled quotes of ours: the book as the walk left it goes out before those
        fills, as a venue's matching implies (the market moved through our price, then we heard
        of our fill). The core then marks the fill against that book and prices its refill off
        it, instead of off the book the walk just ate (a refill that would cross)."""
        if ts < self._feed_gap_until_ns:  # the market moves unseen: so does this
            return
        for index in range(first, len(events)):
            event = events[index]
            if isinstance(event, Fill) and event.is_maker:
                events.insert(index, self._snapshot(ts, walked=True))
                return

    # ---- fills and the account ------------------------------------------------------------------

    def _emit(
        self, account: str, event: VenueEvent, events: list[VenueEvent] | None, note: str = ""
    ) -> None:
        """A private event: SELF's into the step's list, another account's into `outbox`."""
        if account == SELF and events is not None:
            events.append(event)
        else:
            self.outbox.append((account, event, note))

    def _maker_fill(
        self, order: _RestingOrder, lots: int, ts: int, events: list[VenueEvent]
    ) -> None:
        order.leaves_lots -= lots
        size_base = self._sizes[lots]
        price = order.price
        fee_usd = size_base * price * self._maker_fee
        self._book_fill(order.account, order.side, lots, size_base, price, fee_usd)
        fill = Fill(ts, order.order_id, order.side, price, size_base, fee_usd, True,
                    self._sizes[order.leaves_lots])  # fmt: skip
        self._emit(order.account, fill, events)
        if not order.leaves_lots:
            del self._orders[order.order_id]

    def _taker_fill(
        self,
        account: str,
        order_id: str,
        side: Side,
        price: float,
        lots: int,
        leaves_lots: int,
        ts: int,
        events: list[VenueEvent],
    ) -> None:
        size_base = self._sizes[lots]
        fee_usd = size_base * price * self._taker_fee
        self._book_fill(account, side, lots, size_base, price, fee_usd)
        fill = Fill(ts, order_id, side, price, size_base, fee_usd, False, self._sizes[leaves_lots])
        self._emit(account, fill, events)

    def _book_fill(
        self, account: str, side: Side, lots: int, size_base: float, price: float, fee_usd: float
    ) -> None:
        """cash -= side * size * price + fee (a negative fee, a rebate, adds cash)."""
        acct = self._self if account == SELF else self._accounts[account]
        acct.position_lots += side * lots
        position_lots = acct.position_lots
        acct.position_base = (
            self._sizes[position_lots] if position_lots >= 0 else -self._sizes[-position_lots]
        )
        acct.cash_usd -= side * size_base * price + fee_usd

    def _on_funding(self, ts: int, events: list[VenueEvent]) -> None:
        self._next_funding_ns = ts + _HOUR_NS
        rate = self.params.funding_rate_per_hour
        mark = self._path.fair_usd
        # a long pays rate * position * mark when the rate is positive (events.FundingPayment)
        payment = FundingPayment(ts, rate, mark)
        for name, acct in self._accounts.items():
            acct.cash_usd -= acct.position_base * mark * rate
            if name != SELF:
                self.outbox.append((name, payment, ""))
        events.append(payment)

    # ---- actions ---------------------------------------------------------------------------------

    def _act(self, action: Action, account: str, ts: int, events: list[VenueEvent]) -> None:
        if isinstance(action, PlaceQuote):
            self._place_quote(action, account, ts, events)
        elif isinstance(action, CancelOrder):
            order = self._orders.get(action.order_id)
            if order is None or order.account != account:
                self._emit(account, CancelRejected(ts, action.order_id, "unknown order"), events)
                return
            fail = self.params.cancel_fail_rate
            if fail and self._fault_rng.random() < fail:
                reason = "simulated cancel failure"
                self._emit(account, CancelRejected(ts, action.order_id, reason), events)
                return
            del self._orders[action.order_id]
            (self._bids if order.side is Side.BUY else self._asks).remove(order)
            self._emit(account, OrderCanceled(ts, order.order_id), events)
        elif isinstance(action, CancelAll):
            self._cancel_all(account, ts, events)
        elif isinstance(action, PlaceHedge):
            self._place_hedge(action, account, ts, events)
        else:  # pragma: no cover - the Action union is closed
            raise TypeError(f"not a venue action: {action!r}")

    def _cancel_all(self, account: str, ts: int, events: list[VenueEvent], note: str = "") -> None:
        gone = [o for o in self._orders.values() if o.account == account]
        for order in gone:
            self._emit(account, OrderCanceled(ts, order.order_id), events, note)
            del self._orders[order.order_id]
        if len(gone) == len(self._bids) + len(self._asks):
            self._bids.clear()
            self._asks.clear()
        elif gone:
            self._bids[:] = [o for o in self._bids if o.account != account]
            self._asks[:] = [o for o in self._asks if o.account != account]

    def cancel_everything(self, note: str) -> list[tuple[str, str]]:
        """The venue cancels every resting order of every participant account (as a network
        upgrade does; SELF, the console's account, is not a participant and keeps its orders);
        each account hears `OrderCanceled` with `note` in `outbox`. Returns what was cancelled."""
        gone = [(o.account, o.order_id) for o in self._orders.values() if o.account != SELF]
        for account in {a for a, _ in gone}:
            self._cancel_all(account, self.now_ns, [], note)
        return gone

    def _reject(
        self, account: str, order_id: str, reason: str, ts: int, events: list[VenueEvent]
    ) -> None:
        self._emit(account, OrderRejected(ts, order_id, reason), events)

    def _admit(self, order_id: str, size_base: float) -> int | str:
        """The lots of a new order, or why the venue refuses it."""
        lots = math.floor(size_base / self._lot_size + _LOT_EPS)
        return self._admit_lots(order_id, lots, size_base)

    def _admit_lots(self, order_id: str, lots: int, size_base: float) -> int | str:
        if order_id in self._orders:
            return "duplicate order id"
        if lots <= 0:
            return f"size {size_base!r} is below one lot ({self._lot_size})"
        rate = self.params.reject_rate
        if rate and self._venue_rng.random() < rate:
            return "simulated reject"
        return lots

    def _best_bid_ticks(self) -> int | None:
        best = self._book.best_bid_ticks()
        if self._bids and (best is None or self._bids[0].ticks > best):
            best = self._bids[0].ticks
        return best

    def _best_ask_ticks(self) -> int | None:
        best = self._book.best_ask_ticks()
        if self._asks and (best is None or self._asks[0].ticks < best):
            best = self._asks[0].ticks
        return best

    def _place_quote(
        self, action: PlaceQuote, account: str, ts: int, events: list[VenueEvent]
    ) -> None:
        order_id = action.order_id
        ticks = round(action.price / self._tick_size)
        if abs(ticks * self._tick_size - action.price) > self._tick_size * 1e-6:
            reason = f"price {action.price!r} is off the {self._tick_size} tick grid"
            self._reject(account, order_id, reason, ts, events)
            return
        lots = self._admit(order_id, action.size_base)
        if isinstance(lots, str):
            self._reject(account, order_id, lots, ts, events)
            return
        self._post(account, order_id, action.side, ticks, lots, ts, events)

    def _post(
        self,
        account: str,
        order_id: str,
        side: Side,
        ticks: int,
        lots: int,
        ts: int,
        events: list[VenueEvent],
    ) -> None:
        """Rest a post-only order, or refuse it if it would cross."""
        is_bid = side is Side.BUY
        if is_bid:
            best_ask = self._best_ask_ticks()
            if best_ask is not None and ticks >= best_ask:
                self._reject(account, order_id, "post-only would cross", ts, events)
                return
        else:
            best_bid = self._best_bid_ticks()
            if best_bid is not None and ticks <= best_bid:
                self._reject(account, order_id, "post-only would cross", ts, events)
                return
        self._rest(account, order_id, side, ticks, lots)
        self._emit(account, OrderAccepted(ts, order_id), events)

    def _rest(self, account: str, order_id: str, side: Side, ticks: int, lots: int) -> None:
        is_bid = side is Side.BUY
        self._seq += 1
        order = _RestingOrder(
            order_id, side, ticks, self._prices[ticks], lots, self._book.lots_at(is_bid, ticks),
            self._seq, account,
        )  # fmt: skip
        self._orders[order_id] = order
        if is_bid:
            insort(self._bids, order, key=_bid_key)
        else:
            insort(self._asks, order, key=_ask_key)

    def _place_hedge(
        self, action: PlaceHedge, account: str, ts: int, events: list[VenueEvent]
    ) -> None:
        order_id = action.order_id
        lots = self._admit(order_id, action.size_base)
        if isinstance(lots, str):
            self._reject(account, order_id, lots, ts, events)
            return
        if self._take(action.side, lots, ts, events, (account, order_id)):
            # the IOC remainder the book could not fill
            self._emit(account, OrderCanceled(ts, order_id), events)

    def _place_limit(
        self, order: LimitOrder, account: str, ts: int, events: list[VenueEvent]
    ) -> None:
        order_id = order.order_id
        lots = self._admit_lots(order_id, order.lots, self._sizes[max(order.lots, 0)])
        if isinstance(lots, str):
            self._reject(account, order_id, lots, ts, events)
            return
        if order.tif == "Alo":
            self._post(account, order_id, order.side, order.ticks, lots, ts, events)
            return
        if order.tif not in ("Ioc", "Gtc"):
            raise ValueError(f"unknown time in force {order.tif!r}")
        limit = order.ticks + (0.5 if order.side is Side.BUY else -0.5)
        left = self._take(order.side, lots, ts, events, (account, order_id), limit)
        if not left:
            return
        if order.tif == "Ioc":
            self._emit(account, OrderCanceled(ts, order_id), events)
            return
        self._rest(account, order_id, order.side, order.ticks, left)
        self._emit(account, OrderAccepted(ts, order_id), events)


def _shown(prices: list[float], sizes: list[float]) -> tuple[list[float], list[float]]:
    """The levels of one side that still hold something."""
    kept = [(price, size) for price, size in zip(prices, sizes, strict=True) if size > 0]
    return [price for price, _ in kept], [size for _, size in kept]
