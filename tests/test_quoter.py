"""The quoter core against the guide's own numbers, and its invariants."""

import math

import pytest
from desk import Desk
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.alerts import Severity
from engine.events import (
    CancelAll,
    CancelOrder,
    Flatten,
    HedgeNow,
    Kill,
    Narrow,
    PlaceQuote,
    Resume,
    SetAutoHedge,
    SetPaused,
    Side,
    Widen,
)
from engine.snapshot import EngineState


def alerts_of(desk: Desk, control: str) -> list[str]:
    return [a.message for a in desk.quoter.alerts if a.control == control]


def test_waits_for_volatility_before_quoting():
    desk = Desk()
    desk.tick()
    assert desk.resting == {}
    assert "warming up" in desk.quoter.snapshot(desk.now_ns).status


def test_quiet_market_quotes_5_bps_around_mid_with_100_dollars_a_side():
    desk = Desk()
    desk.warm_up()
    bid, ask = desk.quote(Side.BUY), desk.quote(Side.SELL)
    assert bid is not None and ask is not None
    assert (bid.price, ask.price) == (99_975.0, 100_025.0)
    assert bid.size_base == ask.size_base == 0.001  # $100 at $100,000
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.spread.total_bps == pytest.approx(5.0)
    assert snap.bid_quote.distance_bps == pytest.approx(2.5)


def test_refreshes_every_3_seconds_regardless_of_fills():
    desk = Desk()
    desk.warm_up()
    first = {o.order_id for o in desk.resting.values()}
    desk.tick(dt_s=1.0)
    assert {o.order_id for o in desk.resting.values()} == first
    actions = desk.tick(dt_s=2.0)
    assert sum(isinstance(a, CancelOrder) for a in actions) == 2
    assert sum(isinstance(a, PlaceQuote) for a in actions) == 2
    assert not first & {o.order_id for o in desk.resting.values()}


def test_hedge_fires_at_800_dollars_and_sells_400_of_an_800_long():
    desk = Desk(strategy={"quote_size_usd": 800.0})
    desk.warm_up()
    desk.fill(Side.BUY)  # 0.008 BTC: $800 at the $100,000 mid
    assert len(desk.hedges) == 1
    hedge = desk.hedges[0]
    assert hedge.side is Side.SELL
    assert hedge.size_base == pytest.approx(0.004)  # $400
    assert desk.quoter.position_base == pytest.approx(0.004)


def test_no_hedge_below_80_percent_of_max_inventory():
    desk = Desk(strategy={"quote_size_usd": 790.0})
    desk.warm_up()
    desk.fill(Side.BUY)
    assert desk.hedges == []


def test_auto_hedge_off_holds_the_inventory_and_hedge_now_sells_half():
    desk = Desk(strategy={"quote_size_usd": 800.0, "auto_hedge": False})
    desk.warm_up()
    desk.fill(Side.BUY)
    assert desk.hedges == []
    desk.command(HedgeNow())
    assert desk.hedges[-1].size_base == pytest.approx(0.004)
    desk.command(SetAutoHedge())
    assert desk.quoter.auto_hedge


def test_hedge_now_in_usd_and_flatten_close_the_position():
    desk = Desk(strategy={"quote_size_usd": 700.0})
    desk.warm_up()
    desk.fill(Side.SELL)  # short 0.007
    desk.command(HedgeNow(usd=200.0))
    assert desk.hedges[-1].side is Side.BUY
    assert desk.hedges[-1].size_base == pytest.approx(0.002)
    desk.command(Flatten())
    assert desk.quoter.position_base == 0


def test_the_position_cap_is_20_percent_of_capital_and_stops_the_side_that_adds():
    desk = Desk(
        strategy={"quote_size_usd": 1000.0, "auto_hedge": False, "max_inventory_usd": 5000.0}
    )
    assert desk.quoter.position_cap_usd == 2000.0
    desk.warm_up()
    desk.fill(Side.BUY)  # ~$1,000 long; next bid is cut to fit under $2,000
    bid = desk.quote(Side.BUY)
    assert bid is not None
    assert desk.quoter.position_base * bid.price + bid.size_base * bid.price <= 2000.0 + 1e-9
    desk.fill(Side.BUY)  # now at the cap
    assert desk.quote(Side.BUY) is None
    assert desk.quote(Side.SELL) is not None
    assert any("not quoting the bid" in m for m in alerts_of(desk, "position cap"))


def test_kill_switch_fires_at_minus_300_on_10000_of_capital():
    desk = Desk(
        strategy={"quote_size_usd": 2000.0, "auto_hedge": False, "max_inventory_usd": 5000.0},
        risk={"vol_breaker_pct_per_hour": 1000.0},
    )
    desk.warm_up()
    desk.fill(Side.BUY)  # 0.02 BTC at 99,950 (10 bps spread from the inventory premium)
    terms = desk.quoter.ledger.terms()
    earned = terms.spread_usd + terms.rebates_usd  # what the fill itself made
    # a mid where day P&L is -$299: still trading
    safe_mid = round(100_000.0 - (299.0 + earned) / 0.02, 1)
    desk.tick(safe_mid)
    assert desk.quoter.state is EngineState.QUOTING
    desk.tick(round(100_000.0 - (301.0 + earned) / 0.02, 1))
    assert desk.quoter.state is EngineState.KILLED
    assert desk.resting == {}
    alert = next(a for a in desk.quoter.alerts if a.control == "kill switch")
    assert alert.severity is Severity.CRITICAL
    assert alert.threshold == -300.0
    assert alert.value == pytest.approx(-301.0, abs=0.05)
    # no quote goes out while killed, and resume is refused while the day is past the limit
    desk.tick()
    assert desk.resting == {}
    desk.command(Resume())
    assert desk.quoter.state is EngineState.KILLED
    assert any("resume refused" in m for m in alerts_of(desk, "daily loss"))


def alternating_mids(vol_1h: float, seconds: int, start: float = 100_000.0) -> list[float]:
    """Mids whose 1 s log returns alternate +x, -x so that realized vol is `vol_1h` per hour."""
    x = vol_1h / 60.0
    return [start * math.exp(x) if i % 2 else start for i in range(seconds)]


def test_volatility_breaker_widens_to_50_bps_above_5_percent_per_hour():
    desk = Desk()
    for mid in alternating_mids(0.06, 20):
        desk.tick(round(mid, 1))
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.vol_1h == pytest.approx(0.06, rel=0.01)
    assert snap.spread.total_bps == 50.0
    assert snap.spread.breaker_widen_bps > 0
    assert alerts_of(desk, "vol breaker")


def test_volatility_breaker_stays_off_at_4_percent_per_hour():
    desk = Desk()
    for mid in alternating_mids(0.04, 20):
        desk.tick(round(mid, 1))
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.spread.breaker_widen_bps == 0
    assert snap.spread.total_bps == pytest.approx(5 + 0.05 * 400, rel=0.02)  # 25 bps


def test_volatility_breaker_can_stop_quoting_instead():
    desk = Desk(risk={"vol_breaker_action": "stop"})
    for mid in alternating_mids(0.06, 20):
        desk.tick(round(mid, 1))
    assert desk.resting == {}
    assert "breaker" in desk.quoter.snapshot(desk.now_ns).status


def test_fill_rate_above_90_percent_widens_and_jitters():
    desk = Desk(risk={"fill_rate_min_quotes": 20})
    desk.warm_up()
    for _ in range(12):  # fill both sides of 12 quote pairs: 24 quotes, all filled
        desk.fill(Side.BUY)
        desk.fill(Side.SELL)
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.pnl.fill_rate == 1.0
    assert snap.spread.adverse_widen_bps == 5.0
    assert any("fill rate" in m for m in alerts_of(desk, "adverse selection"))


def test_fill_rate_under_90_percent_does_not_widen():
    desk = Desk(risk={"fill_rate_min_quotes": 20})
    desk.warm_up()
    for _ in range(40):  # quotes mostly refreshed away unfilled
        desk.tick(dt_s=3.0)
    assert desk.quoter.fill_rate.fill_rate == 0.0
    assert desk.quoter.snapshot(desk.now_ns).spread.adverse_widen_bps == 0.0


def test_kill_cancels_everything_and_resume_quotes_again():
    desk = Desk()
    desk.warm_up()
    actions = desk.command(Kill())
    assert any(isinstance(a, CancelAll) for a in actions)
    assert desk.resting == {}
    desk.tick(dt_s=5)
    assert desk.resting == {}
    assert desk.quoter.snapshot(desk.now_ns).state is EngineState.KILLED
    desk.command(Resume())
    assert desk.quoter.state is EngineState.QUOTING
    assert desk.quote(Side.BUY) and desk.quote(Side.SELL)


def test_pause_pulls_quotes_and_unpause_brings_them_back():
    desk = Desk()
    desk.warm_up()
    desk.command(SetPaused())
    assert desk.quoter.state is EngineState.PAUSED
    assert desk.resting == {}
    desk.tick(dt_s=5)
    assert desk.resting == {}
    desk.command(SetPaused())
    assert desk.quoter.state is EngineState.QUOTING
    assert len(desk.resting) == 2


def test_widen_and_narrow_move_the_manual_term_one_step_and_requote_at_once():
    desk = Desk()
    desk.warm_up()
    desk.command(Widen())
    assert desk.quoter.manual_widen_bps == 2.0
    bid = desk.quote(Side.BUY)
    assert bid is not None and bid.price == 99_965.0  # 7 bps wide: 3.5 bps = $35 below mid
    desk.command(Narrow())
    desk.command(Narrow())
    assert desk.quoter.manual_widen_bps == 0.0


def test_an_error_cancels_all_and_kills():
    desk = Desk()
    desk.warm_up()
    desk.execute(desk.quoter.on_error("venue timeout", desk.now_ns))
    assert desk.quoter.state is EngineState.KILLED
    assert desk.resting == {}
    assert "venue timeout" in desk.quoter.kill_reason


def test_rate_limit_warns_at_80_percent_and_throttles_at_the_limit():
    desk = Desk(risk={"rate_limit_calls": 20, "rate_limit_window_s": 60})
    desk.warm_up()
    for _ in range(10):
        desk.tick(dt_s=3.0)
    assert alerts_of(desk, "rate limit")
    assert desk.quoter.budget.used(desk.now_ns) <= 20


def test_a_crossed_or_malformed_book_is_rejected_with_an_alert():
    desk = Desk()
    desk.warm_up()
    from engine.events import BookUpdate

    bad = BookUpdate(desk.now_ns, ((100_010.0, 1.0),), ((99_990.0, 1.0),), is_snapshot=True)
    assert desk.quoter.on_book(bad, desk.now_ns) == []
    assert alerts_of(desk, "feed")
    assert desk.quoter.book.mid == 100_000.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["buy", "sell", "move", "wait"]), st.integers(-200, 200)),
        min_size=5,
        max_size=60,
    ),
    st.floats(100.0, 3000.0),
)
def test_our_quoting_never_takes_the_position_past_its_cap(script, quote_usd):
    desk = Desk(
        strategy={"quote_size_usd": quote_usd, "auto_hedge": False, "max_inventory_usd": 5000.0},
        risk={"vol_breaker_pct_per_hour": 1000.0, "daily_loss_limit_pct": 100.0},
    )
    desk.warm_up()
    cap = desk.quoter.position_cap_usd
    for op, delta in script:
        if op in ("buy", "sell"):
            side = Side.BUY if op == "buy" else Side.SELL
            order = desk.quote(side)
            if order is not None:
                desk.fill(side)
                assert abs(desk.quoter.position_base) * order.price <= cap * (1 + 1e-9)
        elif op == "move":
            desk.tick(round(desk.mid + delta * 0.1, 1), dt_s=0.5)
        else:
            desk.tick(dt_s=3.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["buy", "sell", "move", "hedge", "half"]), st.integers(-500, 500)
        ),
        min_size=5,
        max_size=60,
    )
)
def test_pnl_terms_add_up_to_the_equity_change_through_the_core(script):
    desk = Desk(risk={"vol_breaker_pct_per_hour": 1000.0, "daily_loss_limit_pct": 100.0})
    desk.warm_up()
    for op, delta in script:
        if op in ("buy", "sell"):
            side = Side.BUY if op == "buy" else Side.SELL
            if desk.quote(side) is not None:
                desk.fill(side, size_base=0.0005 if op == "buy" and delta > 0 else None)
        elif op == "move":
            desk.tick(round(desk.mid + delta * 0.1, 1), dt_s=0.7)
        elif op == "hedge":
            desk.command(Flatten())
        else:
            desk.command(HedgeNow(fraction=0.5))
        ledger = desk.quoter.ledger
        ledger.mark(desk.mid)
        assert ledger.equity(desk.mid) == ledger.net  # exact


def test_the_venue_position_wins_on_reconcile_with_an_alert_and_no_pnl_jump():
    desk = Desk()
    desk.warm_up()
    net_before = desk.quoter.ledger.net
    desk.quoter.reconcile(0.005, desk.now_ns)
    assert desk.quoter.position_base == 0.005
    assert alerts_of(desk, "reconcile")
    ledger = desk.quoter.ledger
    assert ledger.net == net_before
    assert ledger.equity(desk.mid) == ledger.net
    desk.quoter.reconcile(0.005, desk.now_ns)  # equal: nothing to say
    assert len(alerts_of(desk, "reconcile")) == 1


def requote(quoter, command, now):
    """Send `command`, answer its cancels at once; return the replacement placements."""
    from engine.events import OrderCanceled

    places = []
    for action in quoter.on_command(command, now):
        if isinstance(action, PlaceQuote):
            places.append(action)
        elif isinstance(action, CancelOrder):
            answer = quoter.on_order_update(OrderCanceled(now, action.order_id), now)
            places += [a for a in answer if isinstance(a, PlaceQuote)]
    return places


def test_a_placement_that_lands_after_the_kill_is_cancelled_again():
    from engine.events import OrderAccepted

    desk = Desk()
    desk.warm_up()
    quoter, now = desk.quoter, desk.now_ns
    late = requote(quoter, Widen(), now)
    assert len(late) == 2, "the widen reposts both quotes once the old ones are gone"
    assert any(isinstance(a, CancelAll) for a in quoter.on_command(Kill(), now))
    # the new quotes reach the venue after its cancel-all: the core cancels each again
    for order in late:
        again = quoter.on_order_update(OrderAccepted(now, order.order_id), now)
        assert again == [CancelOrder(order.order_id)]


def test_a_cancel_that_overtakes_its_placement_waits_for_the_accept():
    from engine.events import CancelRejected, OrderAccepted, OrderCanceled

    desk = Desk()
    desk.warm_up()
    quoter, now = desk.quoter, desk.now_ns
    placed = requote(quoter, Widen(), now)
    order_id = placed[0].order_id
    cancels = [a for a in quoter.on_command(Narrow(), now) if isinstance(a, CancelOrder)]
    assert CancelOrder(order_id) in cancels
    assert quoter.on_order_update(CancelRejected(now, order_id, "unknown order"), now) == []
    assert quoter.on_order_update(OrderAccepted(now, order_id), now) == [CancelOrder(order_id)]
    quoter.on_order_update(OrderCanceled(now, order_id), now)
    assert quoter.working_order(order_id) is None
    assert order_id not in {
        v.order_id for v in (quoter.snapshot(now).bid_quote, quoter.snapshot(now).ask_quote) if v
    }
