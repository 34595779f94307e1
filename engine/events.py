"""The vocabulary between venues, the quoter core and the console: events in, actions out, commands.

Everything here is a frozen dataclass with slots: cheap to build, immutable once built, typed.
Prices are in quote currency (USD), sizes in base units (BTC); the names say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

Level = tuple[float, float]
"""One book level: (price_usd, size_base)."""


class Side(IntEnum):
    """Order side; the value is the sign of the position change a fill causes."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


@dataclass(frozen=True, slots=True)
class Instrument:
    """What the venue allows: prices on a tick grid, sizes in whole lots."""

    symbol: str
    tick_size: float
    lot_size: float


# ---- market and order events (venue -> core) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """Book levels from the venue: a snapshot replaces the book, a delta sets levels (0 removes)."""

    ts_ns: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    is_snapshot: bool = True


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade; `aggressor` is the taker's side."""

    ts_ns: int
    price: float
    size_base: float
    aggressor: Side


@dataclass(frozen=True, slots=True)
class Fill:
    """One of our orders traded. `fee_usd` is what we paid: negative for a rebate received."""

    ts_ns: int
    order_id: str
    side: Side
    price: float
    size_base: float
    fee_usd: float
    is_maker: bool
    leaves_base: float = 0.0
    """Size still open on the order after this fill; 0 means the order is done."""
    trade_id: str = ""
    """The venue's id of the trade, where it gives one: a fill is booked once per id, across
    restarts too ("" on the embedded exchange, whose fills reach us exactly once)."""
    venue_mid: float | None = None
    """The mid the venue had when it filled us, where the venue knows it (a replay): the fill
    is marked against it rather than against the core's book when the news arrives, which is
    a latency later."""


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    ts_ns: int
    order_id: str


@dataclass(frozen=True, slots=True)
class OrderRejected:
    ts_ns: int
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CancelRejected:
    """The venue refused to cancel: the order may still be live, so the cancel must be retried."""

    ts_ns: int
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    """The order is gone from the venue (cancelled by us, expired, or an IOC remainder)."""

    ts_ns: int
    order_id: str


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """Perp funding: a long pays `rate * position * mark` when the rate is positive."""

    ts_ns: int
    rate: float
    mark_price: float


OrderEvent = Fill | OrderAccepted | OrderRejected | OrderCanceled | CancelRejected
VenueEvent = BookUpdate | Trade | OrderEvent | FundingPayment


# ---- actions (core -> venue) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceQuote:
    """A post-only limit order resting on the book."""

    order_id: str
    side: Side
    price: float
    size_base: float


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: str


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Cancel every resting order of ours on the symbol; `reason` is for the journal and alerts."""

    reason: str


@dataclass(frozen=True, slots=True)
class PlaceHedge:
    """A taker (immediate-or-cancel) order that reduces inventory."""

    order_id: str
    side: Side
    size_base: float
    reason: str


@dataclass(frozen=True, slots=True)
class ReplaceQuote:
    """Replace a resting quote of ours with `quote` on the same side in one venue request:
    the old one is cancelled and the new one placed at once, so the side never has two (and a
    requote costs one request, not two). Sent only to a venue that says it can
    (`replaces_quotes`); the venue answers for each order as it would for a cancel and a
    placement, and cancels the old one anyway if the new one is refused."""

    old_order_id: str
    quote: PlaceQuote


Action = PlaceQuote | CancelOrder | CancelAll | PlaceHedge | ReplaceQuote


# ---- operator commands (console -> core) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kill:
    """Kill switch: cancel everything and stop quoting until Resume."""

    reason: str = "operator kill switch"


@dataclass(frozen=True, slots=True)
class Resume:
    """Leave the killed state (or a pause) and quote again."""


@dataclass(frozen=True, slots=True)
class SetPaused:
    """Pause or unpause quoting; `paused=None` toggles. A pause pulls our quotes."""

    paused: bool | None = None


@dataclass(frozen=True, slots=True)
class Widen:
    """Add one manual widen step to the spread."""


@dataclass(frozen=True, slots=True)
class Narrow:
    """Take one manual widen step off the spread (never below zero)."""


@dataclass(frozen=True, slots=True)
class HedgeNow:
    """Hedge now: a fraction of inventory or a USD amount; neither means the setting's fraction."""

    fraction: float | None = None
    usd: float | None = None


@dataclass(frozen=True, slots=True)
class Flatten:
    """Close the whole position with a taker order."""


@dataclass(frozen=True, slots=True)
class SetAutoHedge:
    """Turn automatic hedging on or off; `enabled=None` toggles."""

    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class SetSetting:
    """Change a strategy or risk setting while the desk runs (`set NAME VALUE` in the palette).

    `value` is already typed and validated by the console (engine.config.apply_setting); the
    core validates it again with the same model, refuses a setting it cannot change while
    running, and uses the new value from the next quote on. Not saved to the config file."""

    section: str
    name: str
    value: float | int | bool | str


Command = (
    Kill | Resume | SetPaused | Widen | Narrow | HedgeNow | Flatten | SetAutoHedge | SetSetting
)
