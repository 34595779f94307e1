"""Hyperliquid's price and size grid (client side), in Decimal: no float reaches the wire.

A price is valid when it is an integer, or when it has at most 5 significant figures and at
most `max_decimals - sz_decimals` decimals (max_decimals 6 for perps, 8 for spot). So between
10^e and 10^(e+1) the valid prices are the multiples of one tick,

    tick = min(1, max(10^(e-4), 10^-(max_decimals - sz_decimals))),

(1 from 10,000 up: 5 significant figures leave no decimals there, and integers are always
valid). A size is valid with at most `sz_decimals` decimals. Quotes are rounded away from the
touch: bids down, asks up; sizes down. Orders below $10 of notional are refused by the venue.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Context, Decimal

MIN_NOTIONAL = Decimal(10)
WIRE_MAX_DECIMALS = 8  # the SDK's float_to_wire refuses values that need more

Number = Decimal | int | str | float

# Quantizing needs as many digits as the coefficient has; 28 (the default) is not always enough.
_CTX = Context(prec=60)
_ONE = Decimal(1)


def to_decimal(value: Number) -> Decimal:
    """A finite Decimal; a float is read from its shortest repr (0.1 is 0.1, not 0.1000...055)."""
    if isinstance(value, float):
        value = repr(value)
    result = value if isinstance(value, Decimal) else Decimal(value)
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def wire(value: Decimal | int) -> str:
    """The wire string: no exponent, no trailing zeros, "0" for any zero (never "-0").

    The same strings as the SDK's float_to_wire for the same values; like it, refuses a value
    that needs more than 8 decimals.
    """
    text = format(to_decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
        if len(text.partition(".")[2]) > WIRE_MAX_DECIMALS:
            raise ValueError(f"more than {WIRE_MAX_DECIMALS} decimals: {value}")
    if text == "-0":
        text = "0"
    return text


class Grid:
    """One instrument's grid, from `meta`'s szDecimals (max_decimals 6 for perps, 8 for spot)."""

    __slots__ = ("_lot", "_min_tick", "max_decimals", "price_decimals", "sz_decimals")

    def __init__(self, sz_decimals: int, max_decimals: int = 6) -> None:
        if not 0 <= sz_decimals <= max_decimals:
            raise ValueError(f"sz_decimals {sz_decimals} outside 0..{max_decimals}")
        self.sz_decimals = sz_decimals
        self.max_decimals = max_decimals
        self.price_decimals = max_decimals - sz_decimals
        self._min_tick = _ONE.scaleb(-self.price_decimals)
        self._lot = _ONE.scaleb(-sz_decimals)

    def __repr__(self) -> str:
        return f"Grid(sz_decimals={self.sz_decimals}, max_decimals={self.max_decimals})"

    def tick(self, px: Number) -> Decimal:
        """The price step at px (> 0): between 10^e and 10^(e+1), the grid is its multiples."""
        px = to_decimal(px)
        if px <= 0:
            raise ValueError(f"price must be positive: {px}")
        if px >= 10_000:
            return _ONE
        return max(_ONE.scaleb(px.adjusted() - 4), self._min_tick)

    def tick_changes_near(self, px: Number, band: Number = "0.2") -> tuple[Decimal, Decimal] | None:
        """(tick below, tick above) when the tick is not the same from px * (1 - band) to
        px / (1 - band), else None. The engine quotes on one tick: a coin whose price may
        cross a power of ten (where the step changes) in a session cannot be quoted exactly."""
        px, band = to_decimal(px), to_decimal(band)
        low, high = self.tick(px * (1 - band)), self.tick(px / (1 - band))
        return None if low == high else (low, high)

    def price_ok(self, px: Number) -> bool:
        """Whether the venue accepts px as a price (positive, on the grid)."""
        px = to_decimal(px)
        if px <= 0:
            return False
        if px == px.to_integral_value():
            return True
        return _CTX.remainder(px, self.tick(px)) == 0

    def price_bid(self, px: Number) -> Decimal:
        """The largest valid price <= px (a bid rounded away from the touch).

        0 when px is below the smallest price on the grid (no bid is possible there).
        """
        px = to_decimal(px)
        if px <= 0:
            raise ValueError(f"price must be positive: {px}")
        if px < self._min_tick:
            return Decimal(0)
        # 10^e is on the grid of its decade (it is a multiple of the tick): floor never leaves it.
        return px.quantize(self.tick(px), rounding=ROUND_FLOOR, context=_CTX)

    def price_ask(self, px: Number) -> Decimal:
        """The smallest valid price >= px (an ask rounded away from the touch)."""
        px = to_decimal(px)
        if px <= 0:
            raise ValueError(f"price must be positive: {px}")
        if px < self._min_tick:
            return self._min_tick
        # Rounding up may reach 10^(e+1), which is on the grid too.
        return px.quantize(self.tick(px), rounding=ROUND_CEILING, context=_CTX)

    def size_ok(self, sz: Number) -> bool:
        sz = to_decimal(sz)
        return sz > 0 and _CTX.remainder(sz, self._lot) == 0

    def size(self, sz: Number) -> Decimal:
        """sz rounded down (toward zero) to whole lots of 10^-sz_decimals."""
        return to_decimal(sz).quantize(self._lot, rounding=ROUND_DOWN, context=_CTX)

    wire = staticmethod(wire)

    @staticmethod
    def min_notional_ok(px: Number, sz: Number) -> bool:
        """Whether px * sz reaches the venue's $10 minimum order value."""
        return to_decimal(px) * to_decimal(sz) >= MIN_NOTIONAL
