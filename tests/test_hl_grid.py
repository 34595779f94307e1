"""Hyperliquid's price and size grid, client side: the documented examples, and properties
checked against two oracles written from the reference (section 5): the documentation's rule
(5 significant figures, max_decimals - szDecimals decimals, integers always valid) counted on
the digits, and the SDK's rounding recipe (examples/rounding.py) in floats, with the SDK's own
float_to_wire for the wire strings."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal

import pytest
from hyperliquid.utils.signing import float_to_wire
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.venues.hyperliquid.grid import Grid, wire

# --- oracles, independent of the implementation ---


def doc_valid(px: Decimal, sz_decimals: int, max_decimals: int = 6) -> bool:
    """The documentation's rule, on the digits."""
    if px <= 0:
        return False
    px = px.normalize()
    _, digits, exponent = px.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:  # an integer
        return True
    sig_figs = len(digits)  # normalized: no trailing zeros; leading zeros are not digits here
    decimals = -exponent
    return sig_figs <= 5 and decimals <= max_decimals - sz_decimals


def sdk_round(px: float, sz_decimals: int, max_decimals: int = 6) -> float:
    """The SDK's recipe: integers above 100,000, else 5 significant figures then the decimals."""
    if px > 100_000:
        return round(px)
    return round(float(f"{px:.5g}"), max_decimals - sz_decimals)


def sdk_valid(px: Decimal, sz_decimals: int, max_decimals: int = 6) -> bool:
    """A price is valid when the SDK's rounding leaves it alone."""
    return px > 0 and sdk_round(float(px), sz_decimals, max_decimals) == float(px)


def nearest_below(px: Decimal, sz_decimals: int, max_decimals: int = 6) -> Decimal:
    """The largest valid price <= px, by brute force: the nearest valid q has its last digit
    at some 10^k, and then px floored to 10^k is q (same decade) or a power of ten above it."""
    candidates = [Decimal(0)]
    for k in range(-(max_decimals - sz_decimals), 16):
        step = Decimal(1).scaleb(k)
        candidates.append((px // step) * step)  # px > 0: truncation is floor
        if step <= px:
            candidates.append(step)
    return max(c for c in candidates if c == 0 or doc_valid(c, sz_decimals, max_decimals))


def nearest_above(px: Decimal, sz_decimals: int, max_decimals: int = 6) -> Decimal:
    candidates = []
    for k in range(-(max_decimals - sz_decimals), 16):
        step = Decimal(1).scaleb(k)
        candidates.append((px / step).to_integral_value(rounding=ROUND_CEILING) * step)
        if step >= px:
            candidates.append(step)
    return min(c for c in candidates if doc_valid(c, sz_decimals, max_decimals))


# --- the documentation's examples ---


@pytest.mark.parametrize(
    ("px", "sz_decimals", "ok"),
    [
        ("1234.5", 0, True),
        ("1234.56", 0, False),
        ("0.001234", 0, True),
        ("0.0012345", 0, False),
        ("0.01234", 1, True),
        ("0.012345", 1, False),
        ("123456", 5, True),
        ("12345.6", 0, False),
        ("100000", 5, True),
        ("99999", 5, True),
        ("10000.5", 0, False),
        ("0.1", 5, True),
        ("0.05", 5, False),
    ],
)
def test_documented_examples(px: str, sz_decimals: int, ok: bool):
    assert Grid(sz_decimals).price_ok(px) is ok
    assert doc_valid(Decimal(px), sz_decimals) is ok
    assert sdk_valid(Decimal(px), sz_decimals) is ok


def test_rounding_examples():
    btc = Grid(5)  # one decimal at most
    assert btc.price_bid("100001.7") == 100001 and btc.price_ask("100001.7") == 100002
    assert btc.price_bid("99999.5") == 99999 and btc.price_ask("99999.5") == 100000
    assert btc.price_bid("12345.6") == 12345 and btc.price_ask("12345.6") == 12346
    assert btc.price_bid("1234.56") == Decimal("1234.5")
    assert btc.price_ask("1234.56") == Decimal("1234.6")
    assert btc.price_bid("0.05") == 0 and btc.price_ask("0.05") == Decimal("0.1")
    doge = Grid(0)
    assert doge.price_bid("0.0012345") == Decimal("0.001234")
    assert doge.price_ask("0.0012345") == Decimal("0.001235")
    assert doge.price_ask("9.99995") == 10
    assert doge.price_bid(Decimal("0.123456789")) == Decimal("0.12345")
    assert btc.size("0.123456789") == Decimal("0.12345")
    assert Grid(2).size("3.999") == Decimal("3.99")
    assert Grid(0).size("7.9") == 7


def test_floats_are_read_from_their_repr():
    # Decimal(0.1) is 0.1000000000000000055...; an ask on it must not step up a tick.
    assert Grid(0).price_ask(0.1) == Decimal("0.1")
    assert Grid(0).price_bid(0.3) == Decimal("0.3")


def test_tick():
    g = Grid(2)  # 4 decimals at most
    assert g.tick("0.5") == Decimal("0.0001")  # the decimals bind (5 sig figs would allow 0.00001)
    assert g.tick("1.5") == Decimal("0.0001")
    assert g.tick("15") == Decimal("0.001")
    assert g.tick("1500") == Decimal("0.1")
    assert g.tick("15000") == 1
    assert g.tick("1500000") == 1  # integers are always valid


def test_sizes_and_min_notional():
    g = Grid(3)
    assert g.size_ok("1.001") and not g.size_ok("1.0001") and not g.size_ok("0")
    assert Grid.min_notional_ok("100000", "0.0001")
    assert not Grid.min_notional_ok("100000", "0.00009")
    assert Grid.min_notional_ok(Decimal("2.5"), 4)


def test_bad_arguments():
    with pytest.raises(ValueError):
        Grid(7)
    with pytest.raises(ValueError):
        Grid(-1)
    with pytest.raises(ValueError):
        Grid(3).price_bid("0")
    with pytest.raises(ValueError):
        Grid(3).price_ask("-1")
    with pytest.raises(ValueError):
        Grid(3).price_bid("NaN")
    with pytest.raises(ValueError):
        wire(Decimal("Infinity"))
    assert not Grid(3).price_ok("-5")


# --- wire strings ---


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("100000", "100000"),
        ("1E+5", "100000"),
        ("1234.50", "1234.5"),
        ("0.00000001", "0.00000001"),
        ("-0.000", "0"),
        ("0", "0"),
        ("-1.10", "-1.1"),
        ("12.0", "12"),
    ],
)
def test_wire_examples(value: str, text: str):
    assert wire(Decimal(value)) == text
    assert Grid(3).wire(Decimal(value)) == text


def test_wire_refuses_more_than_8_decimals():
    with pytest.raises(ValueError):
        wire(Decimal("0.000000001"))
    assert wire(Decimal("0.1000000000")) == "0.1"  # trailing zeros do not count


@given(
    st.decimals(min_value="-10000000", max_value="10000000", places=8, allow_nan=False,
                allow_infinity=False)
)  # fmt: skip
def test_wire_matches_the_sdk(value: Decimal):
    f = float(value)
    assume(Decimal(repr(f)) == value)  # the float is this value
    expected = float_to_wire(f)
    if expected == "-0":  # the SDK leaves -0.0 as "-0"; we send "0"
        expected = "0"
    assert wire(value) == expected


# --- properties of the rounding ---

max_decimals = st.sampled_from([6, 8])


@st.composite
def grid_and_price(draw: st.DrawFn) -> tuple[int, int, Decimal]:
    md = draw(max_decimals)
    szd = draw(st.integers(0, 5 if md == 6 else 7))
    mantissa = draw(st.integers(1, 10**9))
    exponent = draw(st.integers(-12, 2))
    return szd, md, Decimal(mantissa).scaleb(exponent)


@settings(max_examples=500)
@given(grid_and_price())
def test_bid_is_the_nearest_valid_price_at_or_below(case: tuple[int, int, Decimal]):
    szd, md, px = case
    bid = Grid(szd, md).price_bid(px)
    assert bid <= px
    assert bid == nearest_below(px, szd, md)
    if bid > 0:
        assert doc_valid(bid, szd, md) and Grid(szd, md).price_ok(bid)


@settings(max_examples=500)
@given(grid_and_price())
def test_ask_is_the_nearest_valid_price_at_or_above(case: tuple[int, int, Decimal]):
    szd, md, px = case
    ask = Grid(szd, md).price_ask(px)
    assert ask >= px
    assert ask == nearest_above(px, szd, md)
    assert doc_valid(ask, szd, md) and Grid(szd, md).price_ok(ask)


@settings(max_examples=500)
@given(grid_and_price())
def test_validity_agrees_with_both_oracles(case: tuple[int, int, Decimal]):
    szd, md, px = case
    ours = Grid(szd, md).price_ok(px)
    assert ours == doc_valid(px, szd, md)
    if len(px.normalize().as_tuple().digits) <= 15:  # floats hold the value exactly enough
        assert ours == sdk_valid(px, szd, md)


@settings(max_examples=300)
@given(grid_and_price())
def test_a_valid_price_is_a_fixed_point(case: tuple[int, int, Decimal]):
    szd, md, px = case
    g = Grid(szd, md)
    if g.price_ok(px):
        assert g.price_bid(px) == px == g.price_ask(px)
    else:
        assert g.price_bid(px) < px < g.price_ask(px)


@settings(max_examples=300)
@given(
    st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False),
    st.integers(0, 5),
)
def test_what_the_sdk_rounds_to_is_on_our_grid(px: float, szd: int):
    rounded = sdk_round(px, szd)
    assume(rounded > 0)
    value = Decimal(repr(float(rounded)))
    g = Grid(szd)
    assert g.price_ok(value)
    assert g.price_bid(value) == value == g.price_ask(value)
    assert g.wire(g.price_bid(value)) == float_to_wire(float(rounded))


@given(
    st.decimals(min_value="0", max_value="1000000", places=10, allow_nan=False),
    st.integers(0, 8),
)
def test_size_rounds_down_to_whole_lots(sz: Decimal, szd: int):
    g = Grid(szd, 8)
    lots = g.size(sz)
    lot = Decimal(1).scaleb(-szd)
    assert lots <= sz < lots + lot
    assert lots % lot == 0
    assert lots == Decimal(math.floor(sz / lot)) * lot


@given(grid_and_price(), st.decimals(min_value="0.00001", max_value="1000", places=5))
def test_outputs_are_decimals_and_wire_strings_read_back(case, sz):
    szd, md, px = case
    g = Grid(szd, md)
    for value in (g.price_bid(px), g.price_ask(px), g.size(sz)):
        assert type(value) is Decimal
        text = g.wire(value)
        assert "e" not in text.lower() and Decimal(text) == value
        assert not ("." in text and text.endswith("0"))


@pytest.mark.parametrize(
    ("px", "sz_decimals", "changes"),
    [
        ("98000", 5, None),  # BTC: whole dollars at any price from $10,000
        ("12500", 5, None),
        ("11000", 5, ("0.1", "1")),  # 20% lower is under $10,000: dimes there
        ("3000", 4, None),  # ETH: $0.1 from $1,000 to $9,999.9
        ("150", 2, None),  # SOL: $0.01 from $100
        ("110", 2, ("0.001", "0.01")),
        ("0.5", 0, None),
        ("9", 0, ("0.0001", "0.001")),  # within 20% of $10
    ],
)
def test_a_price_near_a_change_of_step_is_named(
    px: str, sz_decimals: int, changes: tuple[str, str] | None
) -> None:
    found = Grid(sz_decimals).tick_changes_near(px)
    assert found == (None if changes is None else tuple(Decimal(c) for c in changes))
