"""The immutable picture of the engine that the console renders; the screen computes none of it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.alerts import Alert
from engine.events import Level, Side
from engine.pnl import PnlTerms
from engine.spread import SpreadBreakdown


class EngineState(StrEnum):
    QUOTING = "QUOTING"
    PAUSED = "PAUSED"
    KILLED = "KILLED"


class Phase(StrEnum):
    """What the quoter is doing right now, as the header's state badge says it.

    `EngineState` is what the operator set (quoting, paused, killed); the phase is what is
    actually happening under it: a QUOTING engine may still be waiting for a book, warming up
    its volatility, holding quotes off a stale feed or a breaker, or have a side rejected.
    The core computes it with the same checks that decide whether to quote, so the badge can
    never say QUOTING while the engine holds its quotes back.
    """

    WAITING = "WAITING"
    """No two-sided book yet."""
    WARMING_UP = "WARMING UP"
    """Too few volatility samples to price a spread."""
    QUOTING = "QUOTING"
    ONE_SIDED = "ONE-SIDED"
    """One side not quoted: rejected by the venue for `risk.reject_streak_s` or more, or held
    at the position cap; `missing_sides` says which."""
    NOT_QUOTING = "NOT QUOTING"
    """Neither side quoted: both rejected, both at the cap, or the API rate budget spent."""
    PAUSED = "PAUSED"
    STALE_FEED = "STALE FEED"
    """No book update for `risk.stale_feed_s`: quotes pulled until the feed is back."""
    BREAKER = "BREAKER"
    """The volatility breaker stopped quoting (`risk.vol_breaker_action = "stop"`)."""
    KILLED = "KILLED"


@dataclass(frozen=True, slots=True)
class QuoteView:
    side: Side
    order_id: str
    price: float
    size_base: float
    leaves_base: float
    distance_bps: float | None
    """Distance from mid, positive away from the market (a bid below mid is positive)."""
    age_s: float
    state: str
    """'pending' (sent, not yet acknowledged) or 'resting'."""


@dataclass(frozen=True, slots=True)
class InventoryView:
    position_base: float
    inventory_usd: float
    max_inventory_usd: float
    hedge_threshold_usd: float
    position_cap_usd: float
    auto_hedge: bool
    hedge_in_flight: bool


@dataclass(frozen=True, slots=True)
class PnlView:
    terms: PnlTerms
    day_pnl_usd: float
    daily_loss_limit_usd: float
    fees_paid_usd: float
    volume_usd: float
    fills: int
    fill_rate: float | None
    markouts_bps: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    ts_ns: int
    symbol: str
    state: EngineState
    status: str
    """Why we are or are not quoting right now, in the operator's words."""
    mid: float | None
    market_spread_bps: float | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    bid_quote: QuoteView | None
    ask_quote: QuoteView | None
    inventory: InventoryView
    spread: SpreadBreakdown | None
    vol_1h: float | None
    pnl: PnlView
    alerts: tuple[Alert, ...]
    """Newest first."""
    api_calls_used: int
    api_calls_limit: int
    feed_age_s: float | None
    manual_widen_bps: float
    phase: Phase = Phase.QUOTING
    """The state badge: what is happening now (see `Phase`); `state` is what the operator set."""
    phase_detail: str = ""
    """The phase in the operator's words, without the badge's own word: for ONE-SIDED
    "bids rejected for 12 s (post-only would cross); next try in 4 s", for KILLED the reason,
    "" while quoting normally."""
    missing_sides: tuple[Side, ...] = ()
    """The sides not quoted (ONE-SIDED: one side, NOT QUOTING: both), else ()."""
