"""The quoter core: the guide's market-making cycle as a pure state machine, events in, actions out.

No I/O, no clock reads, no asyncio: every handler takes the event and the current time in
nanoseconds and returns the actions the shell must carry out. The live runner and the backtest
feed it the same way, so the same inputs always give the same decisions.

Orders:

- One working quote per side, counting orders in flight: a side gets a new `PlaceQuote` only
  when no quote order of ours on that side is still tracked (sent and not yet confirmed gone
  by a fill to zero, `OrderCanceled` or `OrderRejected`). A refresh sends the cancels; each
  replacement goes when its cancel's answer arrives, or at the next event or timer tick after.
- A quote never crosses or touches our own working quote on the other side (a bid's ticks stay
  below every working ask of ours, an ask's above every working bid); a side that cannot be
  placed waits.
- Rejects back off per side: 0.5 s after the first, doubling per consecutive reject up to
  `risk.reject_backoff_max_s`; an accept on that side ends the streak. One alert when a streak
  starts; once it has lasted `risk.reject_streak_s` the status reads ONE-SIDED (one side) or
  NOT QUOTING (both), with one alert, and one more when quoting is two-sided again.
- Order ids are `{order_id_prefix}q{n}` for quotes and `{order_id_prefix}h{n}` for hedges.
- A venue that does not answer is chased, never guessed at: a quote with no answer after 10 s
  is cancelled (and keeps holding its side: "unknown order" may only mean the placement is
  still on its way), a cancel with no answer is sent again (then the kill switch), a hedge
  with no answer is alerted and blocks new hedges. An order is never forgotten while the
  venue has not said where it is (a forgotten order that then executes is a double hedge or
  a second quote on a side); after 120 s of silence a critical alert says which side or hedge
  is held and why. An accept for an order we do not track is cancelled at once.
- Orders of ours an earlier session left at the venue (`cancel_foreign`) are tracked like our
  own until the venue confirms them gone: their fills are ours, and they hold their side.

The rate budget (`self.budget`, a sliding window of `risk.rate_limit_calls` calls per
`risk.rate_limit_window_s`):

- Every call the core emits is spent on the budget when it is emitted: placements, hedges,
  cancels, re-cancels of orders accepted after we cancelled them, cancel retries, cancel-alls.
- Placements, hedges and refresh cancels go out only if they fit under the limit less the
  cancel reserve (`budget.reserve`: max(2, 5% of the limit)). Otherwise they are held back: a
  refresh is skipped (the old quotes stay and the refresh stays due), a missing quote waits,
  a held auto-hedge or loss-limit flatten is alerted once and retried by the timer, an
  operator hedge or flatten that cannot go is refused with an alert saying when it could.
- Risk-reducing cancels (retries of refused cancels, re-cancels of late accepts, quotes pulled
  for a block reason: stale feed, pause, stopped by the breaker) may use the reserve but never
  go past the limit; when even that is full they stay queued in the core and the timer sends
  them as room frees up.
- Only `CancelAll` (the kill switch, an unhandled error, shutdown) may go past the limit: it
  is the cancel of last resort. It is still spent, so it delays everything else.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from dataclasses import dataclass

from engine.adverse import FillRateMonitor, Markouts
from engine.alerts import Alert, Severity
from engine.book import Book, BookError
from engine.config import (
    ConfigError,
    RiskSettings,
    StrategySettings,
    resolve_setting,
    setting_text,
    with_setting,
)
from engine.events import (
    Action,
    BookUpdate,
    CancelAll,
    CancelOrder,
    CancelRejected,
    Command,
    Fill,
    Flatten,
    FundingPayment,
    HedgeNow,
    Instrument,
    Kill,
    Narrow,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    ReplaceQuote,
    Resume,
    SetAutoHedge,
    SetPaused,
    SetSetting,
    Side,
    Trade,
    VenueEvent,
    Widen,
)
from engine.grid import decimals_of, floor_lots, ticks_to_price
from engine.pnl import PnlLedger
from engine.ratelimit import RateBudget
from engine.snapshot import (
    EngineSnapshot,
    EngineState,
    InventoryView,
    Phase,
    PnlView,
    QuoteView,
)
from engine.spread import SpreadBreakdown, quote_prices, spread_breakdown
from engine.volatility import RealizedVol

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S
_MAX_ALERTS = 200
# After a reject, wait this long before trying that side again, doubling per consecutive reject
# on that side (up to risk.reject_backoff_max_s), so a market that keeps moving through our
# post-only price, or a venue that refuses everything, cannot burn the rate budget.
_REJECT_BACKOFF_S = 0.5
_SIDES = (Side.BUY, Side.SELL)
_SIDE_NAMES = {Side.BUY: "bids", Side.SELL: "asks"}
_ORDER_ID_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,16}")
# A cancel the venue refuses is retried at once this many times; then the kill switch sends
# the venue-wide cancel-all, which does not depend on one order's state.
_MAX_CANCEL_RETRIES = 3
# No venue takes this long to answer an order or a cancel: past it, the order is chased.
_ANSWER_TIMEOUT_NS = 10 * _NS_PER_S
# An order with no answer at all for this long gets a critical alert (it is still never
# forgotten: only the venue can say where it is).
_SILENT_ALERT_NS = 120 * _NS_PER_S
_AUTO_HEDGE = "auto-hedge"
_LOSS_FLATTEN = "loss-limit flatten"
# Hedges the core sends on its own: held back by the budget, they are retried, not refused.
_RETRIED_HEDGES = (_AUTO_HEDGE, _LOSS_FLATTEN)
# After a loss kill, a position still left (a hedge refused or filled in part, a quote filled
# before the cancel-all reached it) is flattened again, waiting 1 s, then 2, 4... between sends
# so that a venue refusing hedges is not asked 4 times a second.
_FLATTEN_RETRY_S = 1.0


@dataclass(slots=True)
class _Order:
    """One of our orders from the moment we send it until the venue says it is gone."""

    order_id: str
    side: Side
    price: float
    size_base: float
    leaves_base: float
    sent_ns: int
    is_hedge: bool
    ticks: int = 0
    accepted: bool = False
    unwanted: bool = False
    """We want it gone (cancel sent, queued, or covered by the kill switch's cancel-all)."""
    cancel_out: bool = False
    """A CancelOrder for it is out and unanswered."""
    cancel_sent: bool = False
    """A cancel or cancel-all covering it has gone to the venue at least once."""
    filled_any: bool = False
    cancel_retries: int = 0
    cancel_out_ns: int = 0
    """When the CancelOrder now out was sent."""
    chased: bool = False
    """No answer came in time: a cancel has been sent to find out."""
    silent_alerted: bool = False
    """The long-silence critical alert has been raised for it."""
    replaces: str | None = None
    """The quote this one replaces in one request (ReplaceQuote), until that one is gone."""


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    """An order the core still tracks (sent, not yet confirmed gone), as the message gate sees
    it. For a hedge, `price` is the mid when it was sent (a hedge has no limit price)."""

    order_id: str
    side: Side
    price: float
    size_base: float
    leaves_base: float
    is_hedge: bool
    accepted: bool
    cancel_sent: bool
    sent_ns: int


def _held(sides: tuple[Side, ...], detail: str) -> tuple[Phase, str, str, tuple[Side, ...]]:
    """The phase of quotes held on `sides` (ONE-SIDED, or NOT QUOTING for both): (phase,
    status line, detail, sides)."""
    phase = Phase.NOT_QUOTING if len(sides) == 2 else Phase.ONE_SIDED
    return phase, f"{phase}: {detail}", detail, sides


class Quoter:
    """Owns the book, volatility, inventory, P&L, risk state and our orders for one symbol."""

    def __init__(
        self,
        strategy: StrategySettings,
        risk: RiskSettings,
        instrument: Instrument,
        *,
        seed: int = 0,
        ladder_levels: int = 10,
        order_id_prefix: str = "",
    ) -> None:
        if not isinstance(order_id_prefix, str) or not _ORDER_ID_PREFIX.fullmatch(order_id_prefix):
            raise ValueError(
                f"order_id_prefix must be at most 16 characters of A-Z a-z 0-9 _ -, "
                f"got {order_id_prefix!r}"
            )
        self.order_id_prefix = order_id_prefix
        self.strategy = strategy
        self.risk = risk
        self.instrument = instrument
        self.ladder_levels = ladder_levels
        self.book = Book(instrument.tick_size)
        self.vol = RealizedVol(
            sample_interval_s=strategy.vol_sample_interval_s,
            window_s=strategy.vol_window_s,
            estimator=strategy.vol_estimator,
            ewma_halflife_s=strategy.vol_ewma_halflife_s,
            min_samples=strategy.vol_min_samples,
        )
        self.ledger = PnlLedger()
        self.fill_rate = FillRateMonitor(risk.fill_rate_window_quotes, risk.fill_rate_min_quotes)
        self.markouts = Markouts()
        self.budget = RateBudget(
            risk.rate_limit_calls, risk.rate_limit_window_s, risk.rate_limit_warn_pct
        )
        self.state = EngineState.QUOTING
        self.manual_widen_bps = 0.0
        self.auto_hedge = strategy.auto_hedge
        self.replace_quotes = False
        """The venue replaces a quote in one request (`ReplaceQuote`): a refresh then swaps
        each resting quote for its successor at once instead of cancel, wait, place. The shell
        sets it from the venue; the embedded exchange does not."""
        self.alerts: deque[Alert] = deque(maxlen=_MAX_ALERTS)
        """The newest alerts, for the screen; the counts below cover the whole session."""
        self.alert_counts: dict[str, int] = {}
        self.first_alert_ns: dict[str, int] = {}
        self.kill_reason = ""

        self._rng = random.Random(seed)
        self._orders: dict[str, _Order] = {}
        self._quote_ids: dict[Side, str | None] = {Side.BUY: None, Side.SELL: None}
        """The quote we want working on each side (None while it is being replaced)."""
        self._busy: dict[Side, str | None] = {Side.BUY: None, Side.SELL: None}
        """The one quote order per side the venue may still hold, wanted or being cancelled."""
        self._cancel_queue: dict[str, None] = {}
        """Risk-reducing cancels waiting for room in the rate budget, oldest first."""
        self._cap_retry_ns: dict[Side, int] = {Side.BUY: 0, Side.SELL: 0}
        self._reject_until_ns: dict[Side, int] = {Side.BUY: 0, Side.SELL: 0}
        self._reject_count: dict[Side, int] = {Side.BUY: 0, Side.SELL: 0}
        self._reject_since_ns: dict[Side, int | None] = {Side.BUY: None, Side.SELL: None}
        self._reject_reason: dict[Side, str] = {Side.BUY: "", Side.SELL: ""}
        self._streak_sides: tuple[Side, ...] = ()
        """The sides whose reject streak has lasted reject_streak_s, as last alerted."""
        self._hedge_id: str | None = None
        self._flattening = False
        """The daily loss limit killed with risk.loss_kill_flatten on: what position is left is
        flattened until the operator resumes."""
        self._flatten_sends = 0
        self._flatten_next_ns = 0
        self._next_refresh_ns = 0
        self._seq = 0
        self._last_book_ns: int | None = None
        self._day: int | None = None
        self._day_start_net_usd = 0.0
        # risk controls remember whether they are acting, so each raises one alert per change
        self._breaker_on = False
        self._adverse_on = False
        self._cap_blocked = {Side.BUY: False, Side.SELL: False}
        self._rate_warned = False
        self._throttled = False
        self._cancels_held = False
        self._hedge_held = False
        self._stale = False

    # ---- derived numbers ----------------------------------------------------------------------

    @property
    def capital_usd(self) -> float:
        return self.strategy.capital_usd

    @property
    def position_cap_usd(self) -> float:
        return self.capital_usd * self.risk.position_cap_pct / 100.0

    @property
    def hedge_threshold_usd(self) -> float:
        return self.strategy.max_inventory_usd * self.strategy.hedge_threshold_pct / 100.0

    @property
    def daily_loss_limit_usd(self) -> float:
        return self.capital_usd * self.risk.daily_loss_limit_pct / 100.0

    @property
    def position_base(self) -> float:
        return self.ledger.position_base

    def inventory_usd(self) -> float:
        mid = self.book.mid
        return 0.0 if mid is None else self.ledger.position_base * mid

    def day_pnl_usd(self) -> float:
        return self.ledger.net_usd_at(self.book.mid) - self._day_start_net_usd

    def adverse_widen_bps(self) -> float:
        return self.risk.adverse_widen_bps if self._adverse_on else 0.0

    def spread_now(self) -> SpreadBreakdown:
        return spread_breakdown(
            base_bps=self.strategy.base_spread_bps,
            vol_1h=self.vol.vol_1h,
            vol_premium_coeff=self.strategy.vol_premium_coeff,
            inventory_usd=self.inventory_usd(),
            max_inventory_usd=self.strategy.max_inventory_usd,
            inventory_premium_at_max_bps=self.strategy.inventory_premium_bps,
            manual_widen_bps=self.manual_widen_bps,
            adverse_widen_bps=self.adverse_widen_bps(),
            cap_bps=self.strategy.max_spread_bps,
            breaker_widen=self._breaker_on and self.risk.vol_breaker_action == "widen",
        )

    # ---- restart ------------------------------------------------------------------------------

    def restore(
        self, ledger: PnlLedger, day_start_net_usd: float, kill_reason: str | None, now_ns: int
    ) -> None:
        """Carry on from a journal: the same inventory and P&L, the same day, still killed if
        the kill switch had fired (a restart must never be a way around it)."""
        self.ledger = ledger
        self._day = now_ns // _NS_PER_DAY
        self._day_start_net_usd = day_start_net_usd
        if kill_reason is not None:
            self.state = EngineState.KILLED
            self.kill_reason = kill_reason
            self._alert(
                now_ns,
                Severity.CRITICAL,
                "kill switch",
                f"restarted KILLED ({kill_reason}): no quote until the operator resumes",
            )

    def reconcile(self, venue_position_base: float, now_ns: int) -> None:
        """The venue's position wins over ours; any difference is adopted at mid and alerted."""
        ours = self.ledger.position_base
        if abs(venue_position_base - ours) < self.instrument.lot_size / 2:
            return
        mid = self.book.mid
        if mid is None:
            raise ValueError("reconcile needs a two-sided book to mark the difference")
        self.ledger.reconcile(venue_position_base, mid)
        self._alert(
            now_ns,
            Severity.WARNING,
            "reconcile",
            f"venue position {venue_position_base:g} differs from ours "
            f"{ours:g}: adopted the venue's",
            value=venue_position_base,
            threshold=ours,
        )

    def book_missed_fill(self, fill: Fill, now_ns: int) -> None:
        """A fill an earlier session's order made while perpdesk was down, found at the venue
        at start: booked at its own price and fee (the mid then is unknown: none is assumed, so
        the market's move to that price goes to the inventory term), and said."""
        self._book(fill, mid=None)
        side = "bought" if fill.side is Side.BUY else "sold"
        self._alert(
            now_ns,
            Severity.WARNING,
            "restart",
            f"filled while perpdesk was down, booked from the venue: {side} {fill.size_base:g} "
            f"at {fill.price:g} (order {fill.order_id}, trade {fill.trade_id or '?'})",
        )

    # ---- event entry points -------------------------------------------------------------------

    def on_event(self, event: VenueEvent, now_ns: int) -> list[Action]:
        """Dispatch any venue event to its handler."""
        if isinstance(event, BookUpdate):
            return self.on_book(event, now_ns)
        if isinstance(event, Fill):
            return self.on_fill(event, now_ns)
        if isinstance(event, Trade):
            return []
        if isinstance(event, FundingPayment):
            return self.on_funding(event, now_ns)
        return self.on_order_update(event, now_ns)

    def on_book(self, update: BookUpdate, now_ns: int) -> list[Action]:
        try:
            self.book.apply(update)
        except BookError as exc:
            self._alert(now_ns, Severity.WARNING, "feed", f"book update rejected: {exc}")
            return []
        self._last_book_ns = now_ns
        mid = self.book.mid
        if mid is not None:
            self.vol.on_mid(mid, now_ns)
            self.markouts.on_mid(mid, now_ns)
        if self._stale:
            self._stale = False
            self._alert(
                now_ns, Severity.INFO, "stale feed", "book updates are back; quoting resumes"
            )
        if self.ledger.position_base:
            # The loss limit is checked on every mark, not only on the timer: a fast market
            # must not carry us past it between two timer ticks.
            actions = self._check_daily_loss(now_ns)
            if actions:
                return actions
        if mid is None and self.state is EngineState.QUOTING:
            # A book gone one-sided pulls our quotes now: _maintain_quotes would leave them up
            # to the next refresh, 3 s away, as its fast paths come before its block check
            # (a kill, a pause, a stale feed and the breaker pull them when they start).
            return self._pull_quotes(now_ns)
        return self._maintain_quotes(now_ns)

    def _book(self, fill: Fill, mid: float | None) -> None:
        self.ledger.on_fill(
            side=fill.side,
            price=fill.price,
            size_base=fill.size_base,
            fee_usd=fill.fee_usd,
            is_maker=fill.is_maker,
            mid=mid,
        )

    def on_fill(self, fill: Fill, now_ns: int) -> list[Action]:
        mid = self.book.mid if fill.venue_mid is None else fill.venue_mid
        self._book(fill, mid)
        order = self._orders.get(fill.order_id)
        if order is None:
            self._alert(
                now_ns,
                Severity.WARNING,
                "orders",
                f"fill for unknown order {fill.order_id}: booked into inventory",
            )
        else:
            order.filled_any = True
            order.leaves_base = fill.leaves_base
            if not order.accepted:
                order.accepted = True  # a fill proves the venue took it
                if not order.is_hedge:
                    self._reject_streak_over(order.side, now_ns)
            if fill.leaves_base <= 0:
                self._finish(order, now_ns)
        if fill.is_maker:
            self.markouts.on_fill(now_ns, fill.side, fill.price, mid)
        # The position changed: sides held back by the cap get another look.
        self._cap_retry_ns[Side.BUY] = self._cap_retry_ns[Side.SELL] = 0
        actions = self._check_daily_loss(now_ns)
        if self.state is not EngineState.KILLED:
            actions += self._auto_hedge(now_ns)
            actions += self._maintain_quotes(now_ns)
        else:
            actions += self._flatten_rest(now_ns)
        return actions

    def on_order_update(
        self, event: OrderAccepted | OrderRejected | OrderCanceled | CancelRejected, now_ns: int
    ) -> list[Action]:
        order = self._orders.get(event.order_id)
        if order is None:
            if isinstance(event, OrderAccepted):
                return self._accepted_unknown(event.order_id, now_ns)
            return []
        if isinstance(event, OrderAccepted):
            if order.is_hedge:
                order.accepted = True
                return []
            if not order.accepted:
                order.accepted = True
                self._reject_streak_over(order.side, now_ns)
            if order.unwanted and not order.cancel_out:
                # The placement landed after our cancel overtook it, or after the kill
                # switch's cancel-all reached the venue: it is live and unwanted, cancel it.
                return self._request_cancel(order, now_ns)
            return []
        if isinstance(event, CancelRejected):
            order.cancel_out = False
            if not order.accepted:
                # The cancel overtook its own placement (which may still be on its way): the
                # order keeps its side, and a late accept re-cancels it.
                return []
            if not order.unwanted or order.is_hedge:
                return []  # a cancel we never sent: nothing to retry
            return self._retry_cancel(order, event.reason, now_ns)
        if isinstance(event, OrderRejected):
            if order.is_hedge:
                self._alert(
                    now_ns,
                    Severity.WARNING,
                    "orders",
                    f"hedge {order.order_id} rejected: {event.reason}",
                )
            else:
                self._quote_rejected(order, event.reason, now_ns)
            self._finish(order, now_ns, rested=False)
            return self._maintain_quotes(now_ns)
        self._finish(order, now_ns)
        return self._maintain_quotes(now_ns)

    def _retry_cancel(self, order: _Order, reason: str, now_ns: int) -> list[Action]:
        """A refused cancel leaves a live order we no longer want: retry, then cancel-all."""
        order.cancel_retries += 1
        if order.cancel_retries > _MAX_CANCEL_RETRIES:
            return self._kill(
                now_ns,
                f"cancel of {order.order_id} refused {order.cancel_retries} times ({reason})",
            )
        self._alert(
            now_ns,
            Severity.WARNING,
            "orders",
            f"cancel of {order.order_id} refused ({reason}); retry "
            f"{order.cancel_retries} of {_MAX_CANCEL_RETRIES}",
        )
        return self._request_cancel(order, now_ns)

    # ---- cancels and the rate budget ----------------------------------------------------------

    def _request_cancel(self, order: _Order, now_ns: int) -> list[Action]:
        """A risk-reducing cancel: it may use the budget's reserve, never go past the limit;
        when it cannot go now it waits in the queue for the timer."""
        order.unwanted = True
        if self._quote_ids[order.side] == order.order_id:
            self._quote_ids[order.side] = None
        if not order.cancel_out:
            self._cancel_queue[order.order_id] = None
        return self._flush_cancels(now_ns)

    def _flush_cancels(self, now_ns: int) -> list[Action]:
        """Send queued cancels, oldest first, as far as the hard limit allows."""
        queue = self._cancel_queue
        if not queue:
            return []
        room = self.budget.room(now_ns)
        actions: list[Action] = []
        for order_id in list(queue):
            order = self._orders.get(order_id)
            if order is None or order.cancel_out:
                del queue[order_id]
                continue
            if room <= 0:
                break
            del queue[order_id]
            order.cancel_out = order.cancel_sent = True
            order.cancel_out_ns = now_ns
            actions.append(CancelOrder(order_id))
            room -= 1
        if actions:
            self.budget.spend(now_ns, len(actions))
        if queue and not self._cancels_held:
            used = self.budget.used(now_ns)
            self._alert(
                now_ns,
                Severity.WARNING,
                "rate limit",
                f"{len(queue)} cancel(s) wait for room: {used} of {self.budget.limit} calls "
                f"used in {self.risk.rate_limit_window_s:g} s",
                value=used,
                threshold=self.budget.limit,
            )
            self._cancels_held = True
        return actions

    def _note_throttle(self, now_ns: int) -> None:
        if self._throttled:
            return
        self._throttled = True
        used = self.budget.used(now_ns)
        self._alert(
            now_ns,
            Severity.WARNING,
            "rate limit",
            f"throttling: {used} of {self.budget.limit} calls used in "
            f"{self.risk.rate_limit_window_s:g} s (the last {self.budget.reserve} kept for "
            f"cancels); quotes held back",
            value=used,
            threshold=self.budget.limit,
        )

    # ---- reject streaks -----------------------------------------------------------------------

    def _quote_rejected(self, order: _Order, reason: str, now_ns: int) -> None:
        side = order.side
        count = self._reject_count[side] + 1
        self._reject_count[side] = count
        self._reject_reason[side] = reason
        backoff_s = min(
            _REJECT_BACKOFF_S * 2.0 ** min(count - 1, 60), self.risk.reject_backoff_max_s
        )
        self._reject_until_ns[side] = now_ns + int(backoff_s * _NS_PER_S)
        if count == 1:
            # One alert when a streak starts, worded as a single reject always was; later
            # rejects only count into the streak.
            self._reject_since_ns[side] = now_ns
            self._alert(
                now_ns,
                Severity.WARNING,
                "orders",
                f"{side.name.lower()} quote {order.order_id} rejected: {reason}",
            )
        self._check_reject_streaks(now_ns)

    def _reject_streak_over(self, side: Side, now_ns: int) -> None:
        """An accept on `side`: its backoff and streak end."""
        if not self._reject_count[side]:
            return
        self._reject_count[side] = 0
        self._reject_since_ns[side] = None
        self._reject_until_ns[side] = 0
        self._check_reject_streaks(now_ns)

    def _long_streaks(self, now_ns: int) -> tuple[Side, ...]:
        streak_ns = self.risk.reject_streak_s * _NS_PER_S
        return tuple(
            s
            for s in _SIDES
            if (since := self._reject_since_ns[s]) is not None and now_ns - since >= streak_ns
        )

    def _streak_text(self, sides: tuple[Side, ...], now_ns: int) -> tuple[str, float]:
        """The status line for reject streaks on `sides`, and how long (s) they have lasted."""
        detail, lasted_s = self._streak_detail(sides, now_ns)
        return _held(sides, detail)[1], lasted_s

    def _streak_detail(self, sides: tuple[Side, ...], now_ns: int) -> tuple[str, float]:
        """Which sides are rejected, for how long, why and when we try again (the status line
        without its ONE-SIDED / NOT QUOTING word), and how long (s) the streaks have lasted."""
        lasted_s = min((now_ns - (self._reject_since_ns[s] or now_ns)) / _NS_PER_S for s in sides)
        next_s = max(0.0, min(self._reject_until_ns[s] - now_ns for s in sides) / _NS_PER_S)
        tail = f"for {int(lasted_s)} s"
        nxt = f"next try in {math.ceil(next_s)} s"
        if len(sides) == 2:
            reasons = {self._reject_reason[s] for s in sides}
            reason = (
                reasons.pop()
                if len(reasons) == 1
                else "; ".join(f"{_SIDE_NAMES[s]}: {self._reject_reason[s]}" for s in sides)
            )
            return f"both sides rejected {tail} ({reason}); {nxt}", lasted_s
        side = sides[0]
        return f"{_SIDE_NAMES[side]} rejected {tail} ({self._reject_reason[side]}); {nxt}", lasted_s

    def _check_reject_streaks(self, now_ns: int) -> None:
        """One alert each time the set of sides in a long reject streak changes."""
        sides = self._long_streaks(now_ns)
        if sides == self._streak_sides:
            return
        before = self._streak_sides
        self._streak_sides = sides
        threshold = self.risk.reject_streak_s
        if not sides:
            back = " and ".join(_SIDE_NAMES[s] for s in before)
            self._alert(
                now_ns,
                Severity.INFO,
                "rejects",
                f"{back} accepted again: quoting is two-sided again",
                threshold=threshold,
            )
            return
        text, lasted_s = self._streak_text(sides, now_ns)
        severity = Severity.CRITICAL if len(sides) == 2 else Severity.WARNING
        self._alert(now_ns, severity, "rejects", text, value=lasted_s, threshold=threshold)

    def on_funding(self, event: FundingPayment, now_ns: int) -> list[Action]:
        self.ledger.on_funding(rate=event.rate, mark_price=event.mark_price)
        return self._check_daily_loss(now_ns)

    def on_timer(self, now_ns: int) -> list[Action]:
        """Periodic checks the market does not trigger: day roll, limits, breaker, stale feed."""
        self._roll_day(now_ns)
        actions = self._check_daily_loss(now_ns)
        actions += self._chase_silent_orders(now_ns)
        actions += self._flush_cancels(now_ns)
        if self.state is EngineState.KILLED:
            return actions + self._flatten_rest(now_ns)
        self._check_reject_streaks(now_ns)
        self._check_vol_breaker(now_ns)
        actions += self._check_stale_feed(now_ns)
        self._check_rate_budget(now_ns)
        actions += self._auto_hedge(now_ns)
        actions += self._maintain_quotes(now_ns)
        return actions

    def _chase_silent_orders(self, now_ns: int) -> list[Action]:
        """Orders whose placement or cancel has had no answer for too long: a quote is
        cancelled (it keeps its side until the venue says where it is), a cancel is sent
        again, a hedge is alerted; after `_SILENT_ALERT_NS` of silence a critical alert says
        what stays held. Nothing is forgotten: only the venue can say where an order is."""
        actions: list[Action] = []
        for order in list(self._orders.values()):
            if order.cancel_out and now_ns - order.cancel_out_ns > _ANSWER_TIMEOUT_NS:
                order.cancel_out = False
                actions += self._retry_cancel(order, "no answer to the cancel", now_ns)
            elif not order.accepted and not order.filled_any:
                age_ns = now_ns - order.sent_ns
                if age_ns > _SILENT_ALERT_NS and not order.silent_alerted:
                    order.silent_alerted = True
                    held = "new hedges" if order.is_hedge else f"the {_SIDE_NAMES[order.side]}"
                    self._alert(
                        now_ns,
                        Severity.CRITICAL,
                        "orders",
                        f"{order.order_id}: no answer from the venue in "
                        f"{_SILENT_ALERT_NS // _NS_PER_S} s; {held} stay held until it answers",
                    )
                elif age_ns > _ANSWER_TIMEOUT_NS and not order.chased:
                    order.chased = True
                    seconds = _ANSWER_TIMEOUT_NS // _NS_PER_S
                    if order.is_hedge:  # an IOC cannot be cancelled: wait for its answer
                        self._alert(
                            now_ns,
                            Severity.WARNING,
                            "orders",
                            f"no answer for hedge {order.order_id} in {seconds} s: no new "
                            "hedge until it has one",
                        )
                    else:
                        self._alert(
                            now_ns,
                            Severity.WARNING,
                            "orders",
                            f"no answer for {order.side.name.lower()} quote {order.order_id} "
                            f"in {seconds} s: cancelling it; its side waits for an answer",
                        )
                        if not order.cancel_out:
                            actions += self._request_cancel(order, now_ns)
            if self.state is EngineState.KILLED and actions and isinstance(actions[-1], CancelAll):
                break  # the retries ran out: the kill switch's cancel-all covers the rest
        return actions

    def _accepted_unknown(self, order_id: str, now_ns: int) -> list[Action]:
        """The venue accepted an order we do not track: it is not ours to keep, cancel it."""
        self._alert(
            now_ns,
            Severity.WARNING,
            "orders",
            f"venue accepted {order_id}, which is not one of our working orders: cancelling it",
        )
        self.budget.spend(now_ns)
        return [CancelOrder(order_id)]

    def cancel_foreign(
        self, order_id: str, side: Side, price: float, leaves_base: float, now_ns: int
    ) -> list[Action]:
        """An order of ours the venue holds that this session did not send (left by a crashed
        session): track it until the venue confirms it gone, so its fills are booked and its
        side is held, and cancel it."""
        if order_id in self._orders:
            return []
        order = _Order(
            order_id,
            side,
            price,
            leaves_base,
            leaves_base,
            now_ns,
            is_hedge=False,
            ticks=round(price / self.instrument.tick_size),
            accepted=True,
        )
        self._orders[order_id] = order
        if self._busy[side] is None:
            self._busy[side] = order_id
        return self._request_cancel(order, now_ns)

    def on_error(self, message: str, now_ns: int) -> list[Action]:
        """An unhandled error in a shell or venue call: cancel everything and stop."""
        return self._kill(now_ns, f"unhandled error: {message}")

    def on_command(self, command: Command, now_ns: int) -> list[Action]:
        if isinstance(command, Kill):
            return self._kill(now_ns, command.reason)
        if isinstance(command, Resume):
            return self._resume(now_ns)
        if isinstance(command, SetPaused):
            return self._set_paused(now_ns, command.paused)
        if isinstance(command, Widen | Narrow):
            step = self.strategy.manual_widen_step_bps
            before = self.manual_widen_bps
            self.manual_widen_bps = max(
                0.0, before + (step if isinstance(command, Widen) else -step)
            )
            self._alert(
                now_ns,
                Severity.INFO,
                "operator",
                f"manual widen {before:g} -> {self.manual_widen_bps:g} bps",
                value=self.manual_widen_bps,
            )
            self._next_refresh_ns = now_ns  # requote at the new spread now, not in 3 s
            return self._maintain_quotes(now_ns)
        if isinstance(command, SetAutoHedge):
            self.auto_hedge = not self.auto_hedge if command.enabled is None else command.enabled
            self._alert(
                now_ns,
                Severity.INFO,
                "operator",
                f"auto-hedge {'on' if self.auto_hedge else 'off'}",
            )
            return self._auto_hedge(now_ns)
        if isinstance(command, Flatten):
            return self._hedge(now_ns, fraction=1.0, usd=None, reason="operator flatten")
        if isinstance(command, HedgeNow):
            fraction = command.fraction
            if fraction is None and command.usd is None:
                fraction = self.strategy.hedge_fraction
            return self._hedge(now_ns, fraction=fraction, usd=command.usd, reason="operator hedge")
        if isinstance(command, SetSetting):
            return self._set_setting(command, now_ns)
        raise TypeError(f"unknown command {command!r}")

    def _set_setting(self, command: SetSetting, now_ns: int) -> list[Action]:
        """A strategy or risk setting changed while running: checked by the config file's own
        model, then in force from the next quote, hedge and check on."""
        dotted = f"{command.section}.{command.name}"
        try:
            section, name = resolve_setting(dotted)
            current = self.strategy if section == "strategy" else self.risk
            updated = with_setting(current, section, name, command.value)
        except ConfigError as err:
            self._alert(
                now_ns, Severity.WARNING, "operator", f"set refused: {'; '.join(err.problems)}"
            )
            return []
        if isinstance(updated, StrategySettings):
            self.strategy = updated
        else:
            self.risk = updated
        before, after = getattr(current, name), getattr(updated, name)
        # Derived numbers (hedge threshold, position cap, loss limit) are properties of the
        # settings; these two live in objects the core built from them at start.
        self.budget.warn_pct = self.risk.rate_limit_warn_pct
        self.fill_rate.min_quotes = self.risk.fill_rate_min_quotes
        self._alert(
            now_ns,
            Severity.INFO,
            "operator",
            # the new value first: a narrow alert line cuts the end, never the value
            f"{dotted} now {setting_text(after)} (was {setting_text(before)}; not saved)",
        )
        actions = self._check_daily_loss(now_ns)  # a lower loss limit may be crossed already
        if self.state is EngineState.KILLED:
            return actions
        self._next_refresh_ns = now_ns  # requote with the new value now, not at the next refresh
        return actions + self._auto_hedge(now_ns) + self._maintain_quotes(now_ns)

    # ---- state changes ------------------------------------------------------------------------

    def _kill(
        self, now_ns: int, reason: str, value: float | None = None, threshold: float | None = None
    ) -> list[Action]:
        self.state = EngineState.KILLED
        self.kill_reason = reason
        self._mark_all_cancelled()
        self._alert(
            now_ns,
            Severity.CRITICAL,
            "kill switch",
            f"KILLED: {reason}; all orders cancelled, quoting stopped",
            value=value,
            threshold=threshold,
        )
        self.budget.spend(now_ns)  # the cancel of last resort: it may go past the limit
        return [CancelAll(reason)]

    def _resume(self, now_ns: int) -> list[Action]:
        if self.state is EngineState.KILLED:
            day_pnl = self.day_pnl_usd()
            if day_pnl <= -self.daily_loss_limit_usd:
                self._alert(
                    now_ns,
                    Severity.CRITICAL,
                    "daily loss",
                    f"resume refused: day P&L ${day_pnl:,.2f} is past the daily loss "
                    f"limit -${self.daily_loss_limit_usd:,.2f} until the next UTC day",
                    value=day_pnl,
                    threshold=-self.daily_loss_limit_usd,
                )
                return []
        was = self.state
        self.state = EngineState.QUOTING
        self.kill_reason = ""
        self._flattening = False
        self._next_refresh_ns = now_ns
        if was is not EngineState.QUOTING:
            self._alert(now_ns, Severity.INFO, "operator", f"resumed quoting (was {was.value})")
        return self._maintain_quotes(now_ns)

    def _set_paused(self, now_ns: int, paused: bool | None) -> list[Action]:
        if self.state is EngineState.KILLED:
            self._alert(
                now_ns,
                Severity.WARNING,
                "operator",
                "pause ignored: the kill switch is on; resume first",
            )
            return []
        if paused is None:
            paused = self.state is EngineState.QUOTING
        if paused:
            self.state = EngineState.PAUSED
            self._alert(now_ns, Severity.INFO, "operator", "quoting paused; quotes pulled")
            return self._pull_quotes(now_ns)
        return self._resume(now_ns)

    # ---- quoting ------------------------------------------------------------------------------

    def _block_reason(self, now_ns: int) -> str | None:
        """Why we must not quote right now, or None."""
        block = self._block(now_ns)
        return None if block is None else block[1]

    def _block(self, now_ns: int) -> tuple[Phase, str, str] | None:
        """Why we must not quote right now, or None: the header's phase, the status line, and
        the phase's detail (the status line without what the badge already says)."""
        if self.state is EngineState.KILLED:
            return Phase.KILLED, f"killed: {self.kill_reason}", self.kill_reason
        if self.state is EngineState.PAUSED:
            return Phase.PAUSED, "paused by operator", "by operator: quotes pulled"
        if self.book.mid is None:
            return Phase.WAITING, "waiting for a two-sided book", "for a two-sided book"
        if self._stale:
            return Phase.STALE_FEED, "feed stale: quotes pulled", "no book update: quotes pulled"
        if self.vol.vol_1h is None:
            count = f"{self.vol.samples}/{self.strategy.vol_min_samples}"
            status = f"warming up volatility ({count} samples)"
            return Phase.WARMING_UP, status, f"vol samples {count}"
        if self._breaker_on and self.risk.vol_breaker_action == "stop":
            vol = self.vol.vol_1h
            return (
                Phase.BREAKER,
                "volatility breaker: quoting stopped",
                f"volatility {vol * 100:.2f}%/h > {self.risk.vol_breaker_pct_per_hour:g}%/h: "
                "quoting stopped",
            )
        return None

    def _maintain_quotes(self, now_ns: int) -> list[Action]:
        """Keep one bid and one ask working: cancel both every refresh, place a side once no
        order of ours is left on it."""
        if self.state is not EngineState.QUOTING:
            return []
        refresh = now_ns >= self._next_refresh_ns
        busy = self._busy
        if not refresh and busy[Side.BUY] is not None and busy[Side.SELL] is not None:
            return []  # the common case, once per market message: nothing to do, nothing built
        if (
            not refresh
            and not self._free_side(Side.BUY, now_ns)
            and not self._free_side(Side.SELL, now_ns)
        ):
            return []
        if self._block_reason(now_ns) is not None:
            return self._pull_quotes(now_ns)
        actions: list[Action] = self._refresh(now_ns) if refresh else []
        free = [s for s in _SIDES if self._free_side(s, now_ns)]
        if not free:
            return actions
        places = self._new_quotes(now_ns, free)
        if not places:
            return actions
        room = self.budget.room(now_ns, reserve=True)
        if room < len(places):
            self._note_throttle(now_ns)
            places = places[: max(room, 0)]
            if not places:
                return actions
        for place in places:
            self._track_quote(place, now_ns)
        self.budget.spend(now_ns, len(places))
        actions += places
        return actions

    def _free_side(self, side: Side, now_ns: int) -> bool:
        """No order of ours on `side`, and neither a reject backoff nor the cap holds it."""
        return (
            self._busy[side] is None
            and now_ns >= self._reject_until_ns[side]
            and now_ns >= self._cap_retry_ns[side]
        )

    def _refresh(self, now_ns: int) -> list[Action]:
        """Stale-quote protection: cancel the working quotes; each side is replaced when its
        cancel is answered. Skipped (and kept due) while the budget has no room for the cancels
        and their replacements."""
        live = [s for s in _SIDES if self._quote_ids[s] is not None]
        if live and self.budget.room(now_ns, reserve=True) < 2 * len(live):
            self._note_throttle(now_ns)
            return []
        self._next_refresh_ns = now_ns + self._refresh_interval_ns()
        replacing = self._replacements(now_ns, live) if self.replace_quotes else {}
        actions: list[Action] = []
        for side in live:
            order_id = self._quote_ids[side]
            assert order_id is not None
            self._quote_ids[side] = None
            order = self._orders[order_id]
            order.unwanted = True
            if not order.cancel_out:
                order.cancel_out = order.cancel_sent = True
                order.cancel_out_ns = now_ns
                self._cancel_queue.pop(order_id, None)
                place = replacing.get(side)
                if place is None:
                    actions.append(CancelOrder(order_id))
                else:
                    self._track_quote(place, now_ns, replaces=order_id)
                    actions.append(ReplaceQuote(order_id, place))
        self.budget.spend(now_ns, len(actions))
        return actions

    def _replacements(self, now_ns: int, live: list[Side]) -> dict[Side, PlaceQuote]:
        """On a venue that replaces in one request: the new quote for each live side whose
        quote rests (accepted, no cancel out), that nothing else holds back, and that has room
        under the position cap for a whole quote beside the one it replaces (near the cap a
        side is cancelled, then placed once the old quote is gone, as on any venue: the old
        one may still fill until the venue takes it, and the new one is sized after it)."""
        mid = self.book.mid
        if mid is None:
            return {}
        lot = self.instrument.lot_size
        whole = floor_lots(self.strategy.quote_size_usd / mid, lot)
        sides = []
        for side in live:
            order_id = self._quote_ids[side]
            order = self._orders.get(order_id) if order_id is not None else None
            if (
                order is not None and order.accepted and not order.cancel_out
                and now_ns >= self._reject_until_ns[side] and now_ns >= self._cap_retry_ns[side]
                and self._cap_room(side, order.price) >= whole + lot
            ):  # fmt: skip
                sides.append(side)
        if not sides:
            return {}
        return {place.side: place for place in self._new_quotes(now_ns, sides)}

    def _track_quote(self, place: PlaceQuote, now_ns: int, replaces: str | None = None) -> None:
        """A quote we are sending: it holds its side from now on."""
        side = place.side
        self._orders[place.order_id] = _Order(
            place.order_id,
            side,
            place.price,
            place.size_base,
            place.size_base,
            now_ns,
            is_hedge=False,
            ticks=round(place.price / self.instrument.tick_size),
            replaces=replaces,
        )
        self._quote_ids[side] = self._busy[side] = place.order_id

    def _refresh_interval_ns(self) -> int:
        interval_s = self.strategy.refresh_interval_s
        if self._adverse_on and self.risk.adverse_jitter_s > 0:
            # The guide's answer to being picked off: a small random delay in quote timing.
            interval_s += self._rng.uniform(0.0, self.risk.adverse_jitter_s)
        return int(interval_s * _NS_PER_S)

    def _new_quotes(self, now_ns: int, sides: list[Side]) -> list[PlaceQuote]:
        mid = self.book.mid
        assert mid is not None
        spread = self.spread_now()
        prices = quote_prices(
            mid=mid,
            total_bps=spread.total_bps,
            inventory_usd=self.inventory_usd(),
            max_inventory_usd=self.strategy.max_inventory_usd,
            lean_factor=self.strategy.lean_factor,
            tick_size=self.instrument.tick_size,
        )
        places: list[PlaceQuote] = []
        for side in sides:
            if side is Side.BUY:
                ticks = prices.bid_ticks
                best_ask = self.book.best_ask_ticks
                if best_ask is not None:
                    ticks = min(ticks, best_ask - 1)  # post-only: never cross the book
            else:
                ticks = prices.ask_ticks
                best_bid = self.book.best_bid_ticks
                if best_bid is not None:
                    ticks = max(ticks, best_bid + 1)
            if ticks <= 0:
                continue
            # Never cross or touch our own working quote on the other side (one being cancelled
            # may still be live): that side waits for it to go.
            opposite = [
                o.ticks for o in self._orders.values() if o.side is not side and not o.is_hedge
            ]
            if opposite and (
                (ticks >= min(opposite)) if side is Side.BUY else (ticks <= max(opposite))
            ):
                continue
            price = ticks_to_price(ticks, self.instrument.tick_size)
            size = self._quote_size(now_ns, side, price, mid)
            if size <= 0:
                self._cap_retry_ns[side] = self._next_refresh_ns
                continue
            places.append(PlaceQuote(self._next_id("q"), side, price, size))
        return places

    def _quote_size(self, now_ns: int, side: Side, price: float, mid: float) -> float:
        """The quote size, cut so that a full fill of every open order on this side stays
        inside the position cap (20% of capital per direction by default)."""
        lot = self.instrument.lot_size
        size = floor_lots(self.strategy.quote_size_usd / mid, lot)
        position_room = floor_lots(
            self.position_cap_usd / price - int(side) * self.ledger.position_base, lot
        )
        # The alert follows the position alone, with hysteresis (back only once a whole quote
        # fits again), so orders in flight at a refresh cannot make it flap.
        at_cap = position_room < lot
        if at_cap != self._cap_blocked[side] and (at_cap or position_room >= size):
            self._cap_blocked[side] = at_cap
            side_name = "bid" if side is Side.BUY else "ask"
            inventory = self.inventory_usd()
            if at_cap:
                self._alert(
                    now_ns,
                    Severity.WARNING,
                    "position cap",
                    f"not quoting the {side_name}: inventory ${inventory:,.0f} is at the "
                    f"cap ${self.position_cap_usd:,.0f}",
                    value=inventory,
                    threshold=int(side) * self.position_cap_usd,
                )
            else:
                self._alert(
                    now_ns,
                    Severity.INFO,
                    "position cap",
                    f"quoting the {side_name} again: inventory ${inventory:,.0f}",
                    value=inventory,
                    threshold=int(side) * self.position_cap_usd,
                )
        return min(size, max(self._cap_room(side, price, position_room), 0.0))

    def _cap_room(self, side: Side, price: float, position_room: float | None = None) -> float:
        """What one more quote on `side` at `price` may be under the position cap, once every
        open order on this side (one being cancelled may still fill) has filled."""
        lot = self.instrument.lot_size
        if position_room is None:
            position_room = floor_lots(
                self.position_cap_usd / price - int(side) * self.ledger.position_base, lot
            )
        in_flight = sum(
            o.leaves_base for o in self._orders.values() if o.side is side and not o.is_hedge
        )
        return floor_lots(position_room - in_flight, lot)

    def _pull_quotes(self, now_ns: int) -> list[Action]:
        """Pull our working quotes for a block reason (stale feed, pause, breaker): cancels
        that reduce risk, so they may use the budget's reserve."""
        for side in _SIDES:
            order_id = self._quote_ids[side]
            if order_id is None:
                continue
            self._quote_ids[side] = None
            order = self._orders[order_id]
            order.unwanted = True
            if not order.cancel_out:
                self._cancel_queue[order_id] = None
        return self._flush_cancels(now_ns)

    def _mark_all_cancelled(self) -> None:
        """The kill switch's cancel-all covers every quote the venue holds; one still in flight
        is cancelled again when its accept arrives."""
        for order in self._orders.values():
            if not order.is_hedge:
                order.unwanted = order.cancel_sent = True
        self._cancel_queue.clear()
        self._quote_ids[Side.BUY] = self._quote_ids[Side.SELL] = None

    def _finish(self, order: _Order, now_ns: int, rested: bool = True) -> None:
        """The order is gone from the venue: forget it and score it."""
        self._orders.pop(order.order_id, None)
        self._cancel_queue.pop(order.order_id, None)
        if order.is_hedge:
            if self._hedge_id == order.order_id:
                self._hedge_id = None
            return
        if self._quote_ids[order.side] == order.order_id:
            self._quote_ids[order.side] = None
        if self._busy[order.side] == order.order_id:
            self._busy[order.side] = None
            if order.replaces in self._orders:  # refused, and the quote it replaced is not
                self._busy[order.side] = order.replaces  # gone yet: that one holds the side
        if rested:
            self.fill_rate.on_quote_done(order.filled_any)
            self._check_adverse(now_ns)

    def _next_id(self, kind: str) -> str:
        self._seq += 1
        return f"{self.order_id_prefix}{kind}{self._seq}"

    # ---- hedging ------------------------------------------------------------------------------

    def _auto_hedge(self, now_ns: int) -> list[Action]:
        """At 80% of max inventory, a taker order for half of it (the guide's numbers)."""
        if not self.auto_hedge or self._hedge_id is not None or self.state is EngineState.KILLED:
            return []
        if abs(self.inventory_usd()) < self.hedge_threshold_usd:
            return []
        return self._hedge(
            now_ns, fraction=self.strategy.hedge_fraction, usd=None, reason=_AUTO_HEDGE
        )

    def _flatten_rest(self, now_ns: int) -> list[Action]:
        """After a loss kill that flattens, the position left once no hedge is in flight: a
        hedge the venue refused or filled in part, a quote that filled before the cancel-all
        reached it. Each send after the first waits twice as long as the one before."""
        if not self._flattening or self._hedge_id is not None or now_ns < self._flatten_next_ns:
            return []
        if abs(self.ledger.position_base) < self.instrument.lot_size / 2 or self.book.mid is None:
            return []
        actions = self._hedge(now_ns, fraction=1.0, usd=None, reason=_LOSS_FLATTEN)
        if actions:
            wait_s = min(
                _FLATTEN_RETRY_S * 2.0**self._flatten_sends, self.risk.reject_backoff_max_s
            )
            self._flatten_next_ns = now_ns + int(wait_s * _NS_PER_S)
            self._flatten_sends += 1
        return actions

    def _hedge(
        self, now_ns: int, *, fraction: float | None, usd: float | None, reason: str
    ) -> list[Action]:
        if self._hedge_id is not None:
            self._alert(
                now_ns,
                Severity.WARNING,
                "hedge",
                f"{reason} skipped: hedge {self._hedge_id} still in flight",
            )
            return []
        position = self.ledger.position_base
        mid = self.book.mid
        if position == 0 or mid is None:
            if reason != _AUTO_HEDGE:
                self._alert(now_ns, Severity.INFO, "hedge", f"{reason}: nothing to hedge")
            return []
        lot = self.instrument.lot_size
        if fraction is not None:
            size = abs(position) if fraction >= 1.0 else floor_lots(abs(position) * fraction, lot)
        else:
            assert usd is not None
            size = floor_lots(min(usd / mid, abs(position)), lot)
        size = round(size, decimals_of(lot))
        if size <= 0:
            return []
        side = Side.SELL if position > 0 else Side.BUY
        if self.budget.room(now_ns, reserve=True) < 1:
            self._hedge_held_back(now_ns, reason, side, size * mid)
            return []
        order_id = self._next_id("h")
        self._hedge_id = order_id
        self._orders[order_id] = _Order(order_id, side, mid, size, size, now_ns, is_hedge=True)
        inventory = position * mid
        self._alert(
            now_ns,
            Severity.INFO,
            "hedge",
            f"{reason}: {side.name.lower()} ${size * mid:,.2f} of "
            f"${abs(inventory):,.2f} {'long' if position > 0 else 'short'}",
            value=inventory,
            threshold=self.hedge_threshold_usd,
        )
        self.budget.spend(now_ns)
        return [PlaceHedge(order_id, side, size, reason)]

    def _hedge_held_back(self, now_ns: int, reason: str, side: Side, usd: float) -> None:
        """No room in the budget: a hedge the core sends on its own (auto-hedge, loss-limit
        flatten) is alerted once and retried by the timer; an operator's hedge or flatten is
        refused, saying when it could go."""
        if reason in _RETRIED_HEDGES:
            if self._hedge_held:
                return
            self._hedge_held = True
        wait_s = self.budget.free_in_ns(now_ns, 1, reserve=True) / _NS_PER_S
        used = self.budget.used(now_ns)
        then = (
            "retried as soon as there is room"
            if reason in _RETRIED_HEDGES
            else f"not sent; try again in {math.ceil(wait_s)} s"
        )
        self._alert(
            now_ns,
            Severity.WARNING,
            "hedge",
            f"{reason} ({side.name.lower()} ${usd:,.2f}) held back: {used} of "
            f"{self.budget.limit} API calls used in {self.risk.rate_limit_window_s:g} s; {then}",
            value=used,
            threshold=self.budget.limit,
        )

    # ---- risk controls ------------------------------------------------------------------------

    def _roll_day(self, now_ns: int) -> None:
        day = now_ns // _NS_PER_DAY
        if day != self._day:
            if self._day is not None:
                self._day_start_net_usd = self.ledger.net_usd_at(self.book.mid)
            self._day = day

    def _check_daily_loss(self, now_ns: int) -> list[Action]:
        if self.state is EngineState.KILLED:
            return self._loss_while_killed(now_ns)
        day_pnl = self.day_pnl_usd()
        limit = self.daily_loss_limit_usd
        if day_pnl > -limit:
            return []
        actions = self._kill(
            now_ns,
            f"daily loss limit: day P&L ${day_pnl:,.2f} <= -${limit:,.2f} "
            f"({self.risk.daily_loss_limit_pct:g}% of capital)",
            value=day_pnl,
            threshold=-limit,
        )
        # Cancelling the quotes alone leaves the position to keep losing: a crash would carry
        # the day on to twice the limit. The operator's own kill stays cancel-only.
        self._flattening = self.risk.loss_kill_flatten
        self._flatten_sends = self._flatten_next_ns = 0
        return actions + self._flatten_rest(now_ns)

    def _loss_while_killed(self, now_ns: int) -> list[Action]:
        """Killed for another reason (the operator's `k`, an error) with a position left: the
        loss limit still holds. Crossing it flattens, once, as the loss kill would have."""
        if self._flattening or not self.risk.loss_kill_flatten or not self.ledger.position_base:
            return []
        day_pnl = self.day_pnl_usd()
        if day_pnl > -self.daily_loss_limit_usd:
            return []
        self._alert(
            now_ns,
            Severity.CRITICAL,
            "kill switch",
            f"daily loss limit crossed while killed ({self.kill_reason}): flattening the "
            f"position, day P&L ${day_pnl:,.2f}",
            value=day_pnl,
            threshold=-self.daily_loss_limit_usd,
        )
        self._flattening = True
        self._flatten_sends = self._flatten_next_ns = 0
        return self._flatten_rest(now_ns)

    def _check_vol_breaker(self, now_ns: int) -> None:
        vol = self.vol.vol_1h
        limit = self.risk.vol_breaker_pct_per_hour / 100.0
        on = vol is not None and vol > limit
        if on == self._breaker_on:
            return
        self._breaker_on = on
        self._next_refresh_ns = now_ns  # requote at once at the new width (or pull quotes)
        vol_pct = 0.0 if vol is None else vol * 100
        if on:
            action = (
                "spread widened to the cap"
                if self.risk.vol_breaker_action == "widen"
                else "quoting stopped"
            )
            self._alert(
                now_ns,
                Severity.CRITICAL,
                "vol breaker",
                f"volatility {vol_pct:.2f}%/h > {self.risk.vol_breaker_pct_per_hour:g}%/h: "
                f"{action}",
                value=vol_pct,
                threshold=self.risk.vol_breaker_pct_per_hour,
            )
        else:
            self._alert(
                now_ns,
                Severity.INFO,
                "vol breaker",
                f"volatility back to {vol_pct:.2f}%/h: normal quoting",
                value=vol_pct,
                threshold=self.risk.vol_breaker_pct_per_hour,
            )

    def _check_stale_feed(self, now_ns: int) -> list[Action]:
        if self._last_book_ns is None or self._stale:
            return []
        age_s = (now_ns - self._last_book_ns) / _NS_PER_S
        if age_s <= self.risk.stale_feed_s:
            return []
        self._stale = True
        self._alert(
            now_ns,
            Severity.WARNING,
            "stale feed",
            f"no book update for {age_s:.1f} s (> {self.risk.stale_feed_s:g} s): quotes pulled",
            value=age_s,
            threshold=self.risk.stale_feed_s,
        )
        return self._pull_quotes(now_ns)

    def _check_rate_budget(self, now_ns: int) -> None:
        warn = self.budget.is_warning(now_ns)
        if warn and not self._rate_warned:
            used = self.budget.used(now_ns)
            self._alert(
                now_ns,
                Severity.WARNING,
                "rate limit",
                f"{used} of {self.budget.limit} API calls used in the last "
                f"{self.risk.rate_limit_window_s:g} s (warn at "
                f"{self.risk.rate_limit_warn_pct:g}%)",
                value=used,
                threshold=self.budget.limit,
            )
        self._rate_warned = warn
        budget = self.budget
        if not warn and budget.used(now_ns) <= 0.9 * (budget.limit - budget.reserve):
            # Hysteresis: the held-back alerts may speak again once use is well below what
            # placements may use, not each time one call slips through a full budget.
            self._throttled = self._hedge_held = False
            self._cancels_held = bool(self._cancel_queue)

    def _check_adverse(self, now_ns: int) -> None:
        rate = self.fill_rate.fill_rate
        limit = self.risk.adverse_fill_rate_pct / 100.0
        on = rate is not None and rate >= limit  # the guide's "90%+ of your quotes filling"
        if on == self._adverse_on:
            return
        self._adverse_on = on
        rate_pct = 0.0 if rate is None else rate * 100
        if on:
            self._alert(
                now_ns,
                Severity.WARNING,
                "adverse selection",
                f"fill rate {rate_pct:.0f}% >= {self.risk.adverse_fill_rate_pct:g}%: "
                f"spread +{self.risk.adverse_widen_bps:g} bps, quote timing jittered",
                value=rate_pct,
                threshold=self.risk.adverse_fill_rate_pct,
            )
        else:
            self._alert(
                now_ns,
                Severity.INFO,
                "adverse selection",
                f"fill rate back to {rate_pct:.0f}%: adverse widen off",
                value=rate_pct,
                threshold=self.risk.adverse_fill_rate_pct,
            )

    def raise_alert(self, now_ns: int, severity: Severity, control: str, message: str) -> None:
        """An alert from outside the core (a shell, the message gate), shown like the rest."""
        self._alert(now_ns, severity, control, message)

    def _alert(
        self,
        now_ns: int,
        severity: Severity,
        control: str,
        message: str,
        value: float | None = None,
        threshold: float | None = None,
    ) -> None:
        self.alerts.append(Alert(now_ns, severity, control, message, value, threshold))
        self.alert_counts[control] = self.alert_counts.get(control, 0) + 1
        self.first_alert_ns.setdefault(control, now_ns)

    # ---- the picture for the console ----------------------------------------------------------

    def quoted_prices(self) -> tuple[float, float] | None:
        """(bid, ask) of our live quotes when both sides are working, else None."""
        bid_id, ask_id = self._quote_ids[Side.BUY], self._quote_ids[Side.SELL]
        if bid_id is None or ask_id is None:
            return None
        return self._orders[bid_id].price, self._orders[ask_id].price

    def status(self, now_ns: int) -> str:
        """The header's line: why we are not quoting, a side rejected for reject_streak_s or
        more (ONE-SIDED / NOT QUOTING), or 'quoting'."""
        return self.phase(now_ns)[1]

    def phase(self, now_ns: int) -> tuple[Phase, str, str, tuple[Side, ...]]:
        """The header's state badge: (phase, status line, the phase's detail, the sides the
        venue keeps rejecting). From the same checks that decide whether to quote."""
        block = self._block(now_ns)
        if block is not None:
            return (*block, ())
        sides = self._long_streaks(now_ns)
        if sides:
            return _held(sides, self._streak_detail(sides, now_ns)[0])
        # held back by our own limits: the position cap on a side, or the rate budget
        capped = tuple(side for side in _SIDES if self._cap_blocked[side])
        if capped:
            names = " and ".join("bids" if side is Side.BUY else "asks" for side in capped)
            return _held(capped, f"{names} held: the position is at its cap")
        if self._throttled:
            return _held(_SIDES, "quotes held back: the API rate budget is spent")
        return Phase.QUOTING, "quoting", "", ()

    def working_order(self, order_id: str) -> WorkingOrder | None:
        """An order the core still tracks (sent, not yet confirmed gone), or None."""
        order = self._orders.get(order_id)
        return None if order is None else _view(order)

    def working_orders(self) -> tuple[WorkingOrder, ...]:
        """Every order the core still tracks, oldest first."""
        return tuple(_view(o) for o in self._orders.values())

    def resting_quote_count(self) -> int:
        """Quotes that are live or may still be at the venue (sent, not yet confirmed gone)."""
        return sum(1 for o in self._orders.values() if not o.is_hedge)

    def snapshot(self, now_ns: int) -> EngineSnapshot:
        book = self.book
        mid = book.mid
        if mid is not None:
            self.ledger.mark(mid)
        bids, asks = book.top(self.ladder_levels)
        terms = self.ledger.terms()
        phase, status, phase_detail, missing_sides = self.phase(now_ns)
        return EngineSnapshot(
            ts_ns=now_ns,
            symbol=self.instrument.symbol,
            state=self.state,
            status=status,
            mid=mid,
            market_spread_bps=book.spread_bps,
            bids=bids,
            asks=asks,
            bid_quote=self._quote_view(Side.BUY, mid, now_ns),
            ask_quote=self._quote_view(Side.SELL, mid, now_ns),
            inventory=InventoryView(
                position_base=self.ledger.position_base,
                inventory_usd=self.inventory_usd(),
                max_inventory_usd=self.strategy.max_inventory_usd,
                hedge_threshold_usd=self.hedge_threshold_usd,
                position_cap_usd=self.position_cap_usd,
                auto_hedge=self.auto_hedge,
                hedge_in_flight=self._hedge_id is not None,
            ),
            spread=self.spread_now() if mid is not None else None,
            vol_1h=self.vol.vol_1h,
            pnl=PnlView(
                terms=terms,
                day_pnl_usd=terms.net_usd - self._day_start_net_usd,
                daily_loss_limit_usd=self.daily_loss_limit_usd,
                fees_paid_usd=self.ledger.fees_paid_usd,
                volume_usd=self.ledger.volume_usd,
                fills=self.ledger.fills,
                fill_rate=self.fill_rate.fill_rate,
                markouts_bps=tuple(self.markouts.mean_bps().items()),
            ),
            alerts=tuple(reversed(self.alerts)),
            api_calls_used=self.budget.used(now_ns),
            api_calls_limit=self.budget.limit,
            feed_age_s=None
            if self._last_book_ns is None
            else (now_ns - self._last_book_ns) / _NS_PER_S,
            manual_widen_bps=self.manual_widen_bps,
            phase=phase,
            phase_detail=phase_detail,
            missing_sides=missing_sides,
        )

    def _quote_view(self, side: Side, mid: float | None, now_ns: int) -> QuoteView | None:
        order_id = self._quote_ids[side]
        order = self._orders.get(order_id) if order_id is not None else None
        if order is None:
            return None
        distance = None if mid is None else int(side) * (mid - order.price) / mid * 1e4
        return QuoteView(
            side=side,
            order_id=order.order_id,
            price=order.price,
            size_base=order.size_base,
            leaves_base=order.leaves_base,
            distance_bps=distance,
            age_s=(now_ns - order.sent_ns) / _NS_PER_S,
            state="resting" if order.accepted else "pending",
        )


def _view(order: _Order) -> WorkingOrder:
    return WorkingOrder(
        order_id=order.order_id,
        side=order.side,
        price=order.price,
        size_base=order.size_base,
        leaves_base=order.leaves_base,
        is_hedge=order.is_hedge,
        accepted=order.accepted,
        cancel_sent=order.cancel_sent,
        sent_ns=order.sent_ns,
    )
