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
