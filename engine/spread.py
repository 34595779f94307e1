"""The spread model: each term of the quoted spread, the inventory lean, prices on the tick grid."""

from __future__ import annotations

import math
from dataclasses import dataclass

_BPS = 10_000.0
# A price a hair under a tick boundary from float noise (x/0.1 = 999957.0000000001) must not
# round a whole tick the wrong way.
_TICK_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class SpreadBreakdown:
    """Each term of the full quoted spread (bid to ask), in bps of mid."""

    base_bps: float
    vol_premium_bps: float
    inventory_premium_bps: float
    manual_widen_bps: float
    adverse_widen_bps: float
    breaker_widen_bps: float
    """What the volatility circuit breaker added to reach the cap (0 when it is not acting)."""
    cap_bps: float
    total_bps: float

    @property
    def uncapped_bps(self) -> float:
        return (
            self.base_bps
            + self.vol_premium_bps
            + self.inventory_premium_bps
            + self.manual_widen_bps
            + self.adverse_widen_bps
            + self.breaker_widen_bps
        )

    @property
    def capped(self) -> bool:
        return self.uncapped_bps > self.cap_bps


def vol_premium_bps(vol_1h: float | None, coeff: float) -> float:
    """Premium for realized volatility: `coeff` bps of spread per bps of hourly vol.

    The guide's worked example (5 bps quiet; 15 bps flat at 2%/h) needs coeff = 0.05:
    2%/h is 200 bps of vol, and 0.05 * 200 = 10 bps on top of the 5 bps base.
    """
    if vol_1h is None:
        return 0.0
    return coeff * vol_1h * _BPS


def inventory_ratio(inventory_usd: float, max_inventory_usd: float) -> float:
    """Signed inventory as a share of max inventory, held within -1..1.

    Max inventory is where the premium and the lean reach their maximum, but the position cap
    (20% of capital: $2,000 by default) lets inventory run to twice it. Unbounded, the lean
    would then pass the half-spread: at the cap, lean_factor 1 moves a quote across mid.
    """
    return max(-1.0, min(inventory_usd / max_inventory_usd, 1.0))


def inventory_premium_bps(
    inventory_usd: float, max_inventory_usd: float, at_max_bps: float
) -> float:
    """The guide's inventory premium: `abs(inventory) / max_inventory * 5` bps, up to 5 bps."""
    return abs(inventory_ratio(inventory_usd, max_inventory_usd)) * at_max_bps


def spread_breakdown(
    *,
    base_bps: float,
    vol_1h: float | None,
    vol_premium_coeff: float,
    inventory_usd: float,
    max_inventory_usd: float,
    inventory_premium_at_max_bps: float,
    manual_widen_bps: float,
    adverse_widen_bps: float,
    cap_bps: float,
    breaker_widen: bool = False,
) -> SpreadBreakdown:
    """All spread terms and their capped total; `breaker_widen` pushes the total to the cap."""
    vol_bps = vol_premium_bps(vol_1h, vol_premium_coeff)
    inv_bps = inventory_premium_bps(inventory_usd, max_inventory_usd, inventory_premium_at_max_bps)
    uncapped = base_bps + vol_bps + inv_bps + manual_widen_bps + adverse_widen_bps
    breaker_bps = max(0.0, cap_bps - uncapped) if breaker_widen else 0.0
    return SpreadBreakdown(
        base_bps=base_bps,
        vol_premium_bps=vol_bps,
        inventory_premium_bps=inv_bps,
        manual_widen_bps=manual_widen_bps,
        adverse_widen_bps=adverse_widen_bps,
        breaker_widen_bps=breaker_bps,
        cap_bps=cap_bps,
        total_bps=min(uncapped + breaker_bps, cap_bps),
    )


def lean_usd(
    inventory_usd: float, max_inventory_usd: float, half_spread_usd: float, lean_factor: float
) -> float:
    """The guide's lean, applied to both quotes: `-(inventory / max_inventory) * half_spread * 0.3`,
    with the ratio held within -1..1.

    Long inventory moves both quotes down: a cheaper ask sells the inventory sooner, a lower
    bid buys less of it.
    """
    return -inventory_ratio(inventory_usd, max_inventory_usd) * half_spread_usd * lean_factor


@dataclass(frozen=True, slots=True)
class QuotePrices:
    """Where the model wants our bid and ask, in ticks and before any venue or risk checks."""

    bid_ticks: int
    ask_ticks: int
    half_spread_usd: float
    lean_usd: float


def quote_prices(
    *,
    mid: float,
    total_bps: float,
    inventory_usd: float,
    max_inventory_usd: float,
    lean_factor: float,
    tick_size: float,
) -> QuotePrices:
    """Bid and ask around mid, leaned against inventory; bids never round up, asks never down."""
    half = mid * total_bps / _BPS / 2.0
    lean = lean_usd(inventory_usd, max_inventory_usd, half, lean_factor)
    bid_ticks = math.floor((mid - half + lean) / tick_size + _TICK_EPS)
    ask_ticks = math.ceil((mid + half + lean) / tick_size - _TICK_EPS)
    if ask_ticks <= bid_ticks:  # a spread under one tick still quotes one tick wide
        ask_ticks = bid_ticks + 1
    return QuotePrices(
        bid_ticks=bid_ticks, ask_ticks=ask_ticks, half_spread_usd=half, lean_usd=lean
    )
