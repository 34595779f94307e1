"""The venue's grid: prices on whole ticks, sizes in whole lots, printed without float noise."""

from __future__ import annotations

import math
from decimal import Decimal

_EPS = 1e-9


def decimals_of(step: float) -> int:
    """Decimals a value on this grid needs: 0.1 -> 1, 0.25 -> 2, 1e-05 -> 5, 1.0 -> 0."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # a finite step
    return max(0, -exponent)


def floor_lots(size_base: float, lot_size: float) -> float:
    """The largest whole number of lots not above `size_base` (never rounds a size up)."""
    if size_base <= 0:
        return 0.0
    lots = math.floor(size_base / lot_size + _EPS)
    return round(lots * lot_size, decimals_of(lot_size))


def ticks_to_price(ticks: int, tick_size: float) -> float:
    return round(ticks * tick_size, decimals_of(tick_size))
