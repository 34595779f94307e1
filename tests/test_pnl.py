"""The P&L identity: the attribution terms add up to the change in equity, exactly."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import Side
from engine.pnl import PnlLedger, exact

GUIDE_MAKER_PCT = -0.025
GUIDE_TAKER_PCT = 0.025


def fee(notional_usd: float, pct: float) -> float:
    return notional_usd * pct / 100


def test_a_500_dollar_hedge_costs_12_and_a_half_cents():
    ledger = PnlLedger()
    ledger.mark(100_000.0)
    ledger.on_fill(
        side=Side.SELL,
        price=100_000.0,
        size_base=0.005,
        fee_usd=fee(500.0, GUIDE_TAKER_PCT),
        is_maker=False,
        mid=100_000.0,
    )
    assert ledger.terms().hedge_usd == pytest.approx(-0.125)
    assert ledger.terms().net_usd == pytest.approx(-0.125)


def test_round_trip_at_5_bps_earns_the_spread_plus_two_rebates():
    # buy $100 at 99,975, sell $100 at 100,025 around a 100,000 mid
    ledger = PnlLedger()
    size = 0.001
    ledger.on_fill(
        side=Side.BUY,
        price=99_975.0,
        size_base=size,
        fee_usd=fee(99.975, GUIDE_MAKER_PCT),
        is_maker=True,
        mid=100_000.0,
    )
    ledger.on_fill(
        side=Side.SELL,
        price=100_025.0,
        size_base=size,
        fee_usd=fee(100.025, GUIDE_MAKER_PCT),
        is_maker=True,
        mid=100_000.0,
    )
    terms = ledger.terms()
    assert terms.spread_usd == pytest.approx(0.05)  # $0.025 each side
    assert terms.rebates_usd == pytest.approx(0.05)  # 0.025% of $200
    assert terms.inventory_usd == 0.0
    assert ledger.position == 0


def test_inventory_term_is_position_times_mid_move():
    ledger = PnlLedger()
    ledger.on_fill(
        side=Side.BUY, price=100_000.0, size_base=0.01, fee_usd=0.0, is_maker=True, mid=100_000.0
    )
    ledger.mark(99_000.0)
    assert ledger.terms().inventory_usd == pytest.approx(-10.0)


def test_funding_charges_a_long_when_the_rate_is_positive():
    ledger = PnlLedger()
    ledger.on_fill(
        side=Side.BUY, price=100_000.0, size_base=0.01, fee_usd=0.0, is_maker=True, mid=100_000.0
    )
    ledger.on_funding(rate=0.0001, mark_price=100_000.0)
    assert ledger.terms().funding_usd == pytest.approx(-0.1)


def test_exact_reads_the_decimal_a_float_prints():
    assert exact(0.1) == Fraction(1, 10)
    assert exact(99_995.7) == Fraction(999_957, 10)
    with pytest.raises(ValueError):
        exact(float("nan"))


prices = st.integers(900_000, 1_100_000).map(lambda t: t / 10)  # $90,000-$110,000, tick 0.1
sizes = st.integers(1, 5_000).map(lambda lots: lots / 100_000)  # 0.00001-0.05 BTC
events = st.one_of(
    st.tuples(st.just("mark"), prices),
    st.tuples(st.just("fill"), st.sampled_from(Side), prices, sizes, st.booleans(), prices),
    st.tuples(st.just("funding"), st.floats(-0.001, 0.001), prices),
)


@settings(max_examples=300)
@given(st.lists(events, min_size=1, max_size=200))
def test_terms_sum_to_the_equity_change_for_any_event_sequence(sequence):
    ledger = PnlLedger()
    mid = 100_000.0
    for event in sequence:
        if event[0] == "mark":
            mid = event[1]
            ledger.mark(mid)
        elif event[0] == "fill":
            _, side, price, size, is_maker, mid = event
            pct = GUIDE_MAKER_PCT if is_maker else GUIDE_TAKER_PCT
            ledger.on_fill(
                side=side,
                price=price,
                size_base=size,
                fee_usd=fee(size * price, pct),
                is_maker=is_maker,
                mid=mid,
            )
        else:
            ledger.on_funding(rate=event[1], mark_price=event[2])
        ledger.mark(mid)
        # exact: starting equity is zero (no cash, no position)
        assert ledger.equity(mid) == ledger.net
    terms = ledger.terms()
    parts = (
        terms.spread_usd
        + terms.rebates_usd
        + terms.inventory_usd
        + terms.hedge_usd
        + terms.funding_usd
    )
    tolerance = 1e-9 * max(1.0, ledger.volume_usd / 1e6)
    assert abs(float(ledger.equity(mid)) - terms.net_usd) <= tolerance
    assert abs(parts - terms.net_usd) <= tolerance
