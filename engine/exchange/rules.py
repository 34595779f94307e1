"""Hyperliquid's price and size rules, and how the exchange prints numbers.

Prices: at most 5 significant figures and at most `6 - szDecimals` decimals; an integer price
is always valid. Sizes: at most `szDecimals` decimals. Orders below $10 of notional are refused.
Numbers go out as decimal strings without trailing zeros ("100001.0", "0.0147").
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MAX_DECIMALS = 6
SIG_FIGS = 5
MIN_NOTIONAL_USD = Decimal(10)
USDC = Decimal("0.000001")


def parse_decimal(text: object) -> Decimal | None:
    """A wire number (a decimal string; ints are tolerated) as a finite Decimal, else None."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        return None
    if isinstance(text, str) and len(text) > 40:
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or (value and not -12 <= value.adjusted() <= 12):
        return None  # nothing on this exchange is that large or that small
    return value


def decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def price_ok(px: Decimal, sz_decimals: int) -> bool:
    """Whether `px` is a valid perp price for an asset with `sz_decimals`."""
    if px <= 0:
        return False
    if px == px.to_integral_value():
        return True
    digits = len(px.normalize().as_tuple().digits)
    return digits <= SIG_FIGS and decimals(px) <= MAX_DECIMALS - sz_decimals


def size_ok(sz: Decimal, sz_decimals: int) -> bool:
    return sz > 0 and decimals(sz) <= sz_decimals


def wire(value: Decimal | float | int) -> str:
    """A number as Hyperliquid prints it: plain decimal, no exponent, no trailing zeros, and at
    least one decimal ("105055.0", "0.1428", "0.0"), as the recorded feed shows."""
    if not isinstance(value, Decimal):
        value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if value == 0:
        return "0.0"
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def usdc(value: Decimal) -> Decimal:
    """Rounded to USDC's 6 decimals, as the exchange books fees, funding and P&L."""
    return value.quantize(USDC, rounding=ROUND_HALF_UP)
