"""The guide's spread numbers, checked by hand."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.spread import lean_usd, quote_prices, spread_breakdown

GUIDE = dict(
    base_bps=5.0,
    vol_premium_coeff=0.05,
    max_inventory_usd=1000.0,
    inventory_premium_at_max_bps=5.0,
    manual_widen_bps=0.0,
    adverse_widen_bps=0.0,
    cap_bps=50.0,
)


def test_quiet_market_quotes_about_5_bps():
    quiet = spread_breakdown(vol_1h=0.001, inventory_usd=0.0, **GUIDE)  # 0.1%/h
    assert quiet.total_bps == pytest.approx(5.5)
    assert 5.0 <= quiet.total_bps < 6.0


def test_two_percent_hourly_vol_gives_15_bps_flat_and_20_at_max_inventory():
    flat = spread_breakdown(vol_1h=0.02, inventory_usd=0.0, **GUIDE)
    assert flat.vol_premium_bps == pytest.approx(10.0)
    assert flat.total_bps == pytest.approx(15.0)
    full = spread_breakdown(vol_1h=0.02, inventory_usd=-1000.0, **GUIDE)
    assert full.inventory_premium_bps == pytest.approx(5.0)
    assert full.total_bps == pytest.approx(20.0)


def test_inventory_premium_is_5_bps_at_1000_usd_and_half_at_500():
    assert spread_breakdown(vol_1h=None, inventory_usd=1000.0, **GUIDE).inventory_premium_bps == 5.0
    assert spread_breakdown(vol_1h=None, inventory_usd=500.0, **GUIDE).inventory_premium_bps == 2.5


def test_spread_is_capped_at_50_bps_and_says_so():
    wild = spread_breakdown(vol_1h=0.5, inventory_usd=0.0, **GUIDE)
    assert wild.total_bps == 50.0
    assert wild.capped
    assert wild.uncapped_bps > 50.0


def test_breaker_widen_takes_the_spread_to_the_cap():
    calm = spread_breakdown(vol_1h=0.0, inventory_usd=0.0, breaker_widen=True, **GUIDE)
    assert calm.breaker_widen_bps == 45.0
    assert calm.total_bps == 50.0


def test_lean_is_minus_inventory_ratio_times_half_spread_times_0_3():
    # long $500 of $1,000 max, half-spread $25: lean = -(0.5) * 25 * 0.3 = -$3.75
    assert lean_usd(500.0, 1000.0, 25.0, 0.3) == pytest.approx(-3.75)
    assert lean_usd(-1000.0, 1000.0, 25.0, 0.3) == pytest.approx(7.5)


def test_premium_and_lean_stop_growing_at_max_inventory():
    """The position cap ($2,000) lets inventory reach twice max inventory ($1,000): the premium
    stays at 5 bps and the lean at 30% of the half-spread past it."""
    for inventory in (2000.0, -2000.0):
        at_cap = spread_breakdown(vol_1h=None, inventory_usd=inventory, **GUIDE)
        assert at_cap.inventory_premium_bps == 5.0
    assert lean_usd(2000.0, 1000.0, 25.0, 0.3) == lean_usd(1000.0, 1000.0, 25.0, 0.3)
    assert lean_usd(-2000.0, 1000.0, 25.0, 0.3) == pytest.approx(7.5)
    short_at_cap = quote_prices(
        mid=100_000.0,
        total_bps=5.0,
        inventory_usd=-2000.0,
        max_inventory_usd=1000.0,
        lean_factor=1.0,
        tick_size=0.1,
    )
    # a full lean brings the bid to mid, no further
    assert short_at_cap.bid_ticks * 0.1 <= 100_000.0


def test_quotes_straddle_mid_and_lean_moves_both_down_when_long():
    flat = quote_prices(
        mid=100_000.0,
        total_bps=5.0,
        inventory_usd=0.0,
        max_inventory_usd=1000.0,
        lean_factor=0.3,
        tick_size=0.1,
    )
    assert (flat.bid_ticks, flat.ask_ticks) == (999_750, 1_000_250)  # 99,975.0 / 100,025.0
    long = quote_prices(
        mid=100_000.0,
        total_bps=5.0,
        inventory_usd=500.0,
        max_inventory_usd=1000.0,
        lean_factor=0.3,
        tick_size=0.1,
    )
    # lean -$3.75: bid 99,971.25 rounds down to 99,971.2; ask 100,021.25 rounds up to 100,021.3
    assert (long.bid_ticks, long.ask_ticks) == (999_712, 1_000_213)


@given(
    mid=st.floats(1.0, 1e6),
    total_bps=st.floats(0.0, 50.0),
    inventory=st.floats(-2000, 2000),
)
def test_bid_never_rounds_up_and_ask_never_rounds_down(mid, total_bps, inventory):
    tick = 0.1
    q = quote_prices(
        mid=mid,
        total_bps=total_bps,
        inventory_usd=inventory,
        max_inventory_usd=1000.0,
        lean_factor=0.3,
        tick_size=tick,
    )
    raw_bid = mid - q.half_spread_usd + q.lean_usd
    raw_ask = mid + q.half_spread_usd + q.lean_usd
    assert q.bid_ticks * tick <= raw_bid + 1e-6
    assert q.ask_ticks * tick >= raw_ask - 1e-6
    assert q.ask_ticks > q.bid_ticks


@given(
    vol=st.one_of(st.none(), st.floats(0.0, 10.0)),
    inventory=st.floats(-1e7, 1e7),
    manual=st.floats(0.0, 1000.0),
    adverse=st.floats(0.0, 1000.0),
    breaker=st.booleans(),
    cap=st.floats(1.0, 500.0),
)
def test_total_spread_never_exceeds_the_cap(vol, inventory, manual, adverse, breaker, cap):
    s = spread_breakdown(
        base_bps=5.0,
        vol_1h=vol,
        vol_premium_coeff=0.05,
        inventory_usd=inventory,
        max_inventory_usd=1000.0,
        inventory_premium_at_max_bps=5.0,
        manual_widen_bps=manual,
        adverse_widen_bps=adverse,
        cap_bps=cap,
        breaker_widen=breaker,
    )
    assert s.total_bps <= cap
    assert math.isfinite(s.total_bps)
