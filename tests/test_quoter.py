"""The quoter core against the guide's own numbers, and its invariants."""

import math
import re
from collections import Counter

import pytest
from desk import Desk, S, book_at
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.alerts import Severity
from engine.config import RiskSettings, StrategySettings
from engine.events import (
    Action,
    CancelAll,
    CancelOrder,
    Flatten,
    HedgeNow,
    Kill,
    Narrow,
    OrderCanceled,
    OrderRejected,
    PlaceHedge,
    PlaceQuote,
    ReplaceQuote,
    Resume,
    SetAutoHedge,
    SetPaused,
    Side,
    Widen,
)
from engine.quoter import Quoter, WorkingOrder
from engine.sim.market import SimMarket
from engine.sim.params import SimParams
from engine.snapshot import EngineState, Phase


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


def test_on_a_replacing_venue_a_refresh_swaps_each_quote_in_one_action():
    desk = Desk()
    desk.quoter.replace_quotes = True
    desk.warm_up()
    first = {o.order_id for o in desk.resting.values()}
    used = desk.quoter.budget.used(desk.now_ns)
    actions = desk.tick(dt_s=3.0)
    replaces = [a for a in actions if isinstance(a, ReplaceQuote)]
    assert {r.old_order_id for r in replaces} == first
    assert not [a for a in actions if isinstance(a, CancelOrder | PlaceQuote)]
    assert set(desk.resting) == {r.quote.order_id for r in replaces}
    assert {r.quote.side for r in replaces} == {Side.BUY, Side.SELL}
    assert desk.quoter.budget.used(desk.now_ns) - used == 2  # one call each, not two


def test_a_refused_replacement_leaves_its_side_to_the_old_quote_until_that_is_gone():
    """The venue refused the new quote and still holds the old one (it cancels it next): no
    other quote goes on that side until the old one is confirmed gone, never two at once."""
    desk = Desk()
    desk.quoter.replace_quotes = True
    desk.warm_up()
    old_bid = desk.quote(Side.BUY)
    assert old_bid is not None
    desk.now_ns += 3 * S
    actions = desk.quoter.on_book(book_at(desk.mid, desk.now_ns), desk.now_ns)
    (replace,) = [a for a in actions if isinstance(a, ReplaceQuote) and a.quote.side is Side.BUY]
    assert replace.old_order_id == old_bid.order_id
    now = desk.now_ns
    out = desk.quoter.on_order_update(
        OrderRejected(
            now, replace.quote.order_id, "Post only order would have immediately matched"
        ),
        now,
    )
    for later in (0, 5, 30):  # past the post-only backoff too
        out += desk.quoter.on_book(book_at(desk.mid, now + later * S), now + later * S)
        out += desk.quoter.on_timer(now + later * S)
    assert not [a for a in out if isinstance(a, PlaceQuote | ReplaceQuote) and _side(a) is Side.BUY]
    now += 31 * S
    out = desk.quoter.on_order_update(OrderCanceled(now, old_bid.order_id), now)
    out += desk.quoter.on_book(book_at(desk.mid, now), now)
    assert [a for a in out if isinstance(a, PlaceQuote) and a.side is Side.BUY]


def test_near_the_position_cap_a_replacing_venue_still_cancels_then_places_that_side():
    """With room under the cap for one more quote but not two, the bid is not replaced (the
    successor would be sized beside the old one, which may still fill): it is cancelled, and
    placed whole once the old one is gone; the ask, far from its cap, is replaced."""
    desk = Desk(strategy={"auto_hedge": False})
    desk.quoter.replace_quotes = True
    desk.warm_up()
    desk.quoter.reconcile(0.0185, desk.now_ns)  # long $1,850 of the $2,000 cap
    desk.tick()
    actions = desk.tick(dt_s=3.0)
    assert [a.quote.side for a in actions if isinstance(a, ReplaceQuote)] == [Side.SELL]
    bid_cancels = [a for a in actions if isinstance(a, CancelOrder)]
    assert len(bid_cancels) == 1
    new_bids = [a for a in actions if isinstance(a, PlaceQuote) and a.side is Side.BUY]
    assert [b.size_base for b in new_bids] == [0.001]  # a whole $100 quote, not a sliver


def test_near_the_position_cap_a_new_quote_is_sized_from_the_position_after_the_cancel():
    """A refresh's cancel and the new quote on that side never go in the same batch: the old
    quote can fill until the venue confirms the cancel, so the new one is sized from the
    position once that answer is in, fills that came before it included."""
    from engine.events import Fill

    desk = Desk(strategy={"auto_hedge": False})
    desk.warm_up()
    desk.quoter.reconcile(0.019, desk.now_ns)  # long $1,900 of the $2,000 cap
    desk.tick(dt_s=3.0)
    bid = desk.quote(Side.BUY)
    assert bid is not None and bid.size_base == 0.001
    quoter, now = desk.quoter, desk.now_ns + 3 * S
    batch = quoter.on_book(book_at(desk.mid, now), now) + quoter.on_timer(now)
    assert CancelOrder(bid.order_id) in batch
    assert not [a for a in batch if isinstance(a, PlaceQuote) and a.side is Side.BUY]
    fill = Fill(now, bid.order_id, Side.BUY, bid.price, 0.0005, 0.0, True, 0.0005)
    assert not [a for a in quoter.on_fill(fill, now) if isinstance(a, PlaceQuote)]
    after = quoter.on_order_update(OrderCanceled(now, bid.order_id), now)
    (new_bid,) = [a for a in after if isinstance(a, PlaceQuote) and a.side is Side.BUY]
    # what is left under the cap at 0.0195 long, not the whole quote that fitted before
    assert 0 < new_bid.size_base < 0.001
    assert (0.0195 + new_bid.size_base) * new_bid.price <= 2000.0


def _side(action: PlaceQuote | ReplaceQuote) -> Side:
    return action.side if isinstance(action, PlaceQuote) else action.quote.side


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
    # the header's badge says so: one-sided, the bid held at the cap, never QUOTING
    phase, _, detail, sides = desk.quoter.phase(desk.now_ns)
    assert phase is Phase.ONE_SIDED and sides == (Side.BUY,) and "cap" in detail


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


def loss_desk(**risk: object) -> Desk:
    """A desk long 0.02 BTC ($2,000) with no auto-hedge, one tick above the daily loss limit."""
    desk = Desk(
        strategy={"quote_size_usd": 2000.0, "auto_hedge": False, "max_inventory_usd": 5000.0},
        risk={"vol_breaker_pct_per_hour": 1000.0, **risk},
    )
    desk.warm_up()
    desk.fill(Side.BUY)
    return desk


def past_the_limit(desk: Desk) -> float:
    """A mid where the day P&L of `loss_desk`'s position is about -$301."""
    terms = desk.quoter.ledger.terms()
    return round(100_000.0 - (301.0 + terms.spread_usd + terms.rebates_usd) / 0.02, 1)


def test_the_daily_loss_kill_also_flattens_the_position_with_the_taker_hedge():
    desk = loss_desk()
    assert desk.quoter.risk.loss_kill_flatten
    actions = desk.tick(past_the_limit(desk))
    assert desk.quoter.state is EngineState.KILLED
    kill = next(i for i, a in enumerate(actions) if isinstance(a, CancelAll))
    hedges = [(i, a) for i, a in enumerate(actions) if isinstance(a, PlaceHedge)]
    assert [(h.side, h.size_base) for _, h in hedges] == [(Side.SELL, 0.02)]
    assert hedges[0][0] > kill  # the quotes are cancelled first
    assert desk.quoter.position_base == 0
    assert any("loss-limit flatten" in m for m in alerts_of(desk, "hedge"))
    desk.tick(dt_s=5.0)  # flat and killed: nothing more goes out
    assert len(desk.hedges) == 1 and desk.resting == {}
    desk.tick(dt_s=86_400.0)  # the next UTC day: the operator may resume
    desk.command(Resume())
    desk.warm_up()
    desk.fill(Side.BUY)
    desk.tick(dt_s=5.0)
    assert desk.quoter.state is EngineState.QUOTING
    assert len(desk.hedges) == 1  # resumed: no flatten left over from the kill


def test_with_loss_kill_flatten_off_the_daily_loss_kill_only_cancels():
    desk = loss_desk(loss_kill_flatten=False)
    desk.tick(past_the_limit(desk))
    desk.tick(dt_s=5.0)
    assert desk.quoter.state is EngineState.KILLED
    assert desk.hedges == []
    assert desk.quoter.position_base == pytest.approx(0.02)


def test_the_operators_kill_key_stays_cancel_only():
    desk = loss_desk()
    actions = desk.command(Kill())
    desk.tick(dt_s=5.0)
    assert any(isinstance(a, CancelAll) for a in actions)
    assert desk.hedges == []
    assert desk.quoter.position_base == pytest.approx(0.02)


def test_killed_by_the_operator_the_loss_limit_still_flattens_when_crossed():
    """`k` leaves the position (cancel-only); if the market then carries the day past the loss
    limit, the position is flattened as the loss kill would have, once, with an alert."""
    desk = loss_desk()
    desk.command(Kill())
    assert desk.hedges == []
    desk.tick(past_the_limit(desk))
    assert [(h.side, h.size_base) for h in desk.hedges] == [(Side.SELL, 0.02)]
    assert desk.quoter.position_base == pytest.approx(0.0)
    assert [a for a in alerts_of(desk, "kill switch") if "crossed while killed" in a]
    desk.tick(past_the_limit(desk) - 100)
    assert len(desk.hedges) == 1


def test_a_loss_kill_flattens_again_what_a_refused_hedge_and_a_late_fill_leave():
    """The kill's hedge is refused: it is sent again after 1 s. A quote the cancel-all had not
    reached fills after that: flattened too, 2 s after the last send (the waits double)."""
    from engine.events import Fill

    desk = loss_desk()
    quoter = desk.quoter
    ask = desk.quote(Side.SELL)
    assert ask is not None
    now = desk.now_ns + S
    actions = quoter.on_book(book_at(past_the_limit(desk), now), now)
    (hedge,) = [a for a in actions if isinstance(a, PlaceHedge)]
    assert quoter.on_order_update(OrderRejected(now, hedge.order_id, "no liquidity"), now) == []
    assert not [a for a in quoter.on_timer(now + S // 2) if isinstance(a, PlaceHedge)]
    (again,) = [a for a in quoter.on_timer(now + S) if isinstance(a, PlaceHedge)]
    assert (again.side, again.size_base) == (Side.SELL, 0.02)
    quoter.on_fill(Fill(now + S, again.order_id, Side.SELL, 99_000.0, 0.02, 0.0, False), now + S)
    assert quoter.position_base == 0
    late = Fill(now + 2 * S, ask.order_id, Side.SELL, ask.price, 0.005, 0.0, True, 0.015)
    assert not [a for a in quoter.on_fill(late, now + 2 * S) if isinstance(a, PlaceHedge)]
    (rest,) = [a for a in quoter.on_timer(now + 3 * S) if isinstance(a, PlaceHedge)]
    assert (rest.side, rest.size_base) == (Side.BUY, 0.005)


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


def test_a_one_sided_book_pulls_the_quotes_at_once():
    """Not at the next refresh, up to 3 s later: both sides are working, so the fast path for
    'nothing to do' must not run before the check that we may quote at all."""
    from engine.events import BookUpdate

    desk = Desk()
    desk.warm_up()
    working = {o.order_id for o in desk.resting.values()}
    assert len(working) == 2
    now = desk.now_ns + S // 10  # no refresh due
    bids_only = BookUpdate(now, book_at(desk.mid, now).bids, (), is_snapshot=True)
    actions = desk.quoter.on_book(bids_only, now)
    assert {a.order_id for a in actions if isinstance(a, CancelOrder)} == working
    assert desk.quoter.status(now) == "waiting for a two-sided book"


def test_a_fill_rate_of_exactly_90_percent_is_adverse_selection():
    """The guide's sign is "90%+ of your quotes filling": 18 of the last 20 is already it."""
    desk = Desk(risk={"fill_rate_window_quotes": 20, "fill_rate_min_quotes": 20})
    desk.warm_up()
    desk.tick(dt_s=3.0)  # one refresh: two quotes done unfilled
    monitor = desk.quoter.fill_rate
    assert (monitor.total_quotes, monitor.total_filled) == (2, 0)
    for _ in range(9):
        assert desk.quoter.adverse_widen_bps() == 0.0
        desk.fill(Side.BUY)
        desk.fill(Side.SELL)
    assert monitor.fill_rate == 0.9
    assert desk.quoter.adverse_widen_bps() == 5.0
    assert any("fill rate 90% >= 90%" in m for m in alerts_of(desk, "adverse selection"))


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
    # quotes held back: the badge says NOT QUOTING and why, never QUOTING
    phase, _, detail, _ = desk.quoter.phase(desk.now_ns)
    assert phase is Phase.NOT_QUOTING and "rate budget" in detail
    assert any("quotes held back" in m for m in alerts_of(desk, "rate limit"))


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


# ---- order ids ---------------------------------------------------------------------------------


def test_order_ids_carry_the_session_prefix_and_default_to_none():
    desk = Desk(strategy={"quote_size_usd": 800.0}, order_id_prefix="s7-Ab_")
    desk.warm_up()
    desk.fill(Side.BUY)  # $800 long: the auto-hedge fires
    ids = [a.order_id for a in desk.sent if isinstance(a, PlaceQuote | PlaceHedge)]
    assert ids and all(re.fullmatch(r"s7-Ab_[qh]\d+", i) for i in ids), ids
    assert any(i.startswith("s7-Ab_h") for i in ids)
    plain = Desk()
    plain.warm_up()
    assert [a.order_id for a in plain.sent if isinstance(a, PlaceQuote)] == ["q1", "q2"]


@pytest.mark.parametrize("prefix", ["has space", "x" * 17, "semi;colon", "\u00e9t\u00e9", "a/b"])
def test_a_bad_order_id_prefix_is_refused(prefix):
    with pytest.raises(ValueError, match="order_id_prefix"):
        Quoter(StrategySettings(), RiskSettings(), Desk().quoter.instrument, order_id_prefix=prefix)


# ---- one working quote per side, and never crossing our own -----------------------------------


def test_a_refresh_cancels_first_and_replaces_each_side_when_its_cancel_is_answered():
    desk = Desk()
    desk.warm_up()
    quoter, now = desk.quoter, desk.now_ns
    old = {o.side: o.order_id for o in desk.resting.values()}
    actions = quoter.on_command(Widen(), now)
    assert sorted(a.order_id for a in actions if isinstance(a, CancelOrder)) == sorted(old.values())
    assert not [a for a in actions if isinstance(a, PlaceQuote)], "no quote before the cancel lands"
    assert quoter.resting_quote_count() == 2
    answer = quoter.on_order_update(OrderCanceled(now, old[Side.SELL]), now)
    assert [(type(a), a.side) for a in answer] == [(PlaceQuote, Side.SELL)]
    answer = quoter.on_order_update(OrderCanceled(now, old[Side.BUY]), now)
    assert [(type(a), a.side) for a in answer] == [(PlaceQuote, Side.BUY)]


def test_a_bid_never_crosses_our_own_ask_after_a_large_move():
    desk = Desk()
    desk.warm_up()
    ask = desk.quote(Side.SELL)
    assert ask is not None and ask.price == 100_025.0
    desk.now_ns += S // 10  # before the refresh: the ask stays
    desk.mid = 101_000.0
    desk.execute(desk.quoter.on_book(book_at(101_000.0, desk.now_ns), desk.now_ns))
    actions = desk.fill(Side.BUY)  # the bid is gone; its replacement would sit above our ask
    assert not [a for a in actions if isinstance(a, PlaceQuote) and a.side is Side.BUY]
    assert desk.quote(Side.BUY) is None
    assert desk.quoter.working_order(ask.order_id) is not None
    desk.tick(dt_s=3.0)  # the refresh cancels the stale ask; both sides come back, uncrossed
    bid, ask = desk.quote(Side.BUY), desk.quote(Side.SELL)
    assert bid is not None and ask is not None
    assert bid.price < 101_000.0 < ask.price


class Drive:
    """The core against the embedded exchange, driven by hand like engine.backtest, recording
    every action with the time it was sent and checking after every venue step."""

    def __init__(self, params: SimParams, risk: RiskSettings | None = None) -> None:
        self.market = SimMarket(params)
        self.quoter = Quoter(
            StrategySettings(), risk or RiskSettings(), self.market.instrument, seed=params.seed
        )
        self.sent: list[tuple[int, Action]] = []
        self.max_resting = {Side.BUY: 0, Side.SELL: 0}
        self.max_working = {Side.BUY: 0, Side.SELL: 0}
        self.timer_ticks = 0
        self.two_sided_ticks = 0

    def submit(self, actions: list[Action], now_ns: int) -> None:
        for action in actions:
            self.sent.append((now_ns, action))
            self.market.submit(action, now_ns)

    def run(self, hours: float, resume_after_s: float | None = None) -> None:
        market, quoter = self.market, self.quoter
        start = market.next_ts_ns
        end = start + int(hours * 3600 * S)
        next_timer = start
        killed_at = None
        while market.next_ts_ns <= end:
            ts = market.next_ts_ns
            while next_timer <= ts:
                # sampled before the timer acts: everything up to now has been answered
                self.timer_ticks += 1
                self.two_sided_ticks += quoter.quoted_prices() is not None
                self.submit(quoter.on_timer(next_timer), next_timer)
                if resume_after_s is not None and quoter.state is EngineState.KILLED:
                    killed_at = next_timer if killed_at is None else killed_at
                    if next_timer - killed_at >= resume_after_s * S:
                        self.submit(quoter.on_command(Resume(), next_timer), next_timer)
                        killed_at = None
                next_timer += S // 4
            for event in market.step():
                self.submit(quoter.on_event(event, event.ts_ns), event.ts_ns)
            resting = Counter(side for _, side, _, _ in market.resting_orders())
            working = Counter(o.side for o in quoter.working_orders() if not o.is_hedge)
            for side in (Side.BUY, Side.SELL):
                self.max_resting[side] = max(self.max_resting[side], resting[side])
                self.max_working[side] = max(self.max_working[side], working[side])

    def count(self, kind: type) -> int:
        return sum(isinstance(a, kind) for _, a in self.sent)


def test_latency_spikes_never_leave_more_than_one_quote_a_side():
    drive = Drive(SimParams(seed=4, latency_ms=300.0, latency_spike_rate=0.05,
                            latency_spike_ms=3000.0))  # fmt: skip
    drive.run(hours=0.5)
    assert drive.max_resting == {Side.BUY: 1, Side.SELL: 1}  # at the venue
    assert drive.max_working == {Side.BUY: 1, Side.SELL: 1}  # counting orders in flight
    assert drive.count(PlaceQuote) > 500  # still quoting: ~2 every 3 s
    # a refresh leaves each side empty for a cancel's round trip (0.6 s of every 3 s here)
    assert drive.two_sided_ticks > 0.7 * drive.timer_ticks


def test_zero_latency_replaces_quotes_in_the_same_instant_and_never_stalls():
    drive = Drive(SimParams(seed=4, latency_ms=0.0))
    drive.run(hours=0.25)
    refreshes = 0.25 * 3600 / 3
    assert drive.count(PlaceQuote) >= 2 * 0.95 * refreshes
    assert drive.two_sided_ticks > 0.98 * drive.timer_ticks
    assert drive.max_resting == {Side.BUY: 1, Side.SELL: 1}


# ---- reject streaks ----------------------------------------------------------------------------


def ticks_for(desk: Desk, seconds: float, dt_s: float = 0.25) -> None:
    for _ in range(round(seconds / dt_s)):
        desk.tick(dt_s=dt_s)


def placed_at(desk: Desk, side: Side, since: tuple[int, int]) -> list[float]:
    """Seconds from `since` (a time and an index into desk.sent_at) of each placement."""
    since_ns, first = since
    return [
        (ts - since_ns) / S
        for ts, a in desk.sent_at[first:]
        if isinstance(a, PlaceQuote) and a.side is side
    ]


def mark(desk: Desk) -> tuple[int, int]:
    return desk.now_ns, len(desk.sent_at)


def reject_alerts(desk: Desk) -> list[tuple[Severity, str, float | None, float | None]]:
    """The streak-start alerts ('... rejected: reason') and the streak alerts."""
    return [
        (a.severity, a.message, a.value, a.threshold)
        for a in desk.quoter.alerts
        if a.control == "rejects" or (a.control == "orders" and "quote" in a.message)
    ]


def test_rejects_back_off_exponentially_and_a_long_streak_reads_one_sided():
    desk = Desk()
    desk.warm_up()
    desk.reject[Side.BUY] = "post-only would cross"
    t0 = mark(desk)
    desk.command(Widen())  # requote now: the new bid is refused
    ticks_for(desk, 12.0)
    snap = desk.quoter.snapshot(desk.now_ns)
    assert snap.status == (
        "ONE-SIDED: bids rejected for 12 s (post-only would cross); next try in 4 s"
    )
    assert snap.state is EngineState.QUOTING
    assert snap.ask_quote is not None  # the other side quotes on
    ticks_for(desk, 53.0)
    # 0.5 s after the first reject, doubling per reject, capped at reject_backoff_max_s (30)
    assert placed_at(desk, Side.BUY, t0) == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 61.5]
    alerts = reject_alerts(desk)
    assert len(alerts) == 2, alerts  # not one per reject
    start, streak = alerts
    assert start[0] is Severity.WARNING
    assert re.fullmatch(r"buy quote q\d+ rejected: post-only would cross", start[1])
    assert streak[0] is Severity.WARNING and streak[1].startswith("ONE-SIDED: bids rejected")
    assert streak[2:] == (10.0, 10.0)  # value: seconds; threshold: reject_streak_s
    # the venue takes bids again: the next try is accepted and the streak is over
    desk.reject.clear()
    ticks_for(desk, 30.0)
    assert desk.quote(Side.BUY) is not None
    assert desk.quoter.snapshot(desk.now_ns).status == "quoting"
    severity, message, _, _ = reject_alerts(desk)[-1]
    assert severity is Severity.INFO and "two-sided again" in message
    # an accept reset the backoff: a new streak starts again at 0.5 s
    desk.reject[Side.BUY] = "post-only would cross"
    t1 = mark(desk)
    desk.command(Widen())
    ticks_for(desk, 2.0)
    assert placed_at(desk, Side.BUY, t1) == [0.0, 0.5, 1.5]


def test_both_sides_rejected_read_not_quoting_with_one_critical_alert():
    desk = Desk(risk={"reject_backoff_max_s": 4.0, "reject_streak_s": 5.0})
    desk.warm_up()
    desk.reject = {Side.BUY: "simulated reject", Side.SELL: "simulated reject"}
    t0 = mark(desk)
    desk.command(Widen())
    ticks_for(desk, 8.0)
    snap = desk.quoter.snapshot(desk.now_ns)
    # rejects at 0, 0.5, 1.5, 3.5, 7.5 (backoff 0.5, 1, 2, 4, 4): next at 11.5
    assert placed_at(desk, Side.SELL, t0) == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert snap.status == (
        "NOT QUOTING: both sides rejected for 8 s (simulated reject); next try in 4 s"
    )
    assert snap.state is EngineState.QUOTING
    alerts = reject_alerts(desk)
    assert [a[0] for a in alerts] == [Severity.WARNING, Severity.WARNING, Severity.CRITICAL]
    assert alerts[-1][1].startswith("NOT QUOTING: both sides rejected for 5 s")
    assert alerts[-1][2:] == (5.0, 5.0)
    desk.reject = {Side.SELL: "simulated reject"}
    ticks_for(desk, 4.0)
    assert desk.quoter.snapshot(desk.now_ns).status.startswith("ONE-SIDED: asks rejected")


def test_different_reasons_on_each_side_are_both_shown():
    desk = Desk(risk={"reject_streak_s": 1.0})
    desk.warm_up()
    desk.reject = {Side.BUY: "post-only would cross", Side.SELL: "insufficient margin"}
    desk.command(Widen())
    ticks_for(desk, 2.0)
    status = desk.quoter.snapshot(desk.now_ns).status
    assert "(bids: post-only would cross; asks: insufficient margin)" in status


# ---- the rate budget ---------------------------------------------------------------------------


def worst_window(sent: list[tuple[int, Action]], window_ns: int) -> int:
    """The most non-CancelAll calls in any sliding window (a call `window_ns` old has left)."""
    times = [ts for ts, a in sent if not isinstance(a, CancelAll)]
    worst = first = 0
    for last, ts in enumerate(times):
        while times[first] <= ts - window_ns:
            first += 1
        worst = max(worst, last - first + 1)
    return worst


def test_no_window_ever_holds_more_calls_than_the_budget_under_faults():
    params = SimParams(
        seed=4,
        reject_rate=0.3,
        cancel_fail_rate=0.4,
        latency_ms=50.0,
        latency_spike_rate=0.05,
        latency_spike_ms=3000.0,
    )
    drive = Drive(params, RiskSettings(rate_limit_calls=40, rate_limit_window_s=60))
    drive.run(hours=1.0, resume_after_s=5.0)  # an operator resumes after each kill
    assert drive.count(CancelAll) > 0  # refused cancels did end in the kill switch
    assert drive.count(PlaceQuote) > 500  # quoting went on all hour
    assert worst_window(drive.sent, 60 * S) == 40  # the budget was used, and never exceeded
    assert drive.max_working == {Side.BUY: 1, Side.SELL: 1}


def test_placements_leave_the_cancel_reserve_and_an_operator_flatten_says_it_cannot_go():
    desk = Desk(
        strategy={"quote_size_usd": 500.0, "auto_hedge": False},
        risk={"rate_limit_calls": 10, "rate_limit_window_s": 60},
    )
    budget = desk.quoter.budget
    assert budget.reserve == 2
    desk.warm_up()  # 2 calls, at the last tick
    budget.spend(desk.now_ns, 6)  # other calls: 8 of 10 used, only the reserve is left
    desk.fill(Side.BUY)
    assert desk.quote(Side.BUY) is None  # its replacement may not use the reserve
    desk.command(Flatten())
    assert desk.hedges == []
    assert desk.quoter.position_base == pytest.approx(0.005)
    message = alerts_of(desk, "hedge")[-1]
    assert "operator flatten" in message and "not sent; try again in 60 s" in message
    assert budget.used(desk.now_ns) == 8
    ticks_for(desk, 5.0, dt_s=1.0)
    assert budget.used(desk.now_ns) <= 8 and desk.quote(Side.BUY) is None
    # the kill switch goes whatever the budget says
    assert any(isinstance(a, CancelAll) for a in desk.command(Kill()))


def test_risk_reducing_cancels_use_the_reserve_then_wait_for_the_timer():
    desk = Desk(risk={"rate_limit_calls": 10, "rate_limit_window_s": 60})
    budget = desk.quoter.budget
    desk.warm_up()  # 2 calls at 10 s
    budget.spend(desk.now_ns, 7)  # 9 of 10: one cancel fits (in the reserve), one must wait
    actions = desk.command(SetPaused(True))
    assert len([a for a in actions if isinstance(a, CancelOrder)]) == 1
    assert len(desk.resting) == 1
    assert any("wait for room" in m for m in alerts_of(desk, "rate limit"))
    for _ in range(60 * 4):
        desk.tick(dt_s=0.25)
        assert budget.used(desk.now_ns) <= budget.limit
        if not desk.resting:
            break
    assert desk.resting == {}, "the held cancel went once the window had room"
    assert desk.quoter.resting_quote_count() == 0


def test_a_held_auto_hedge_alerts_once_and_goes_when_the_budget_has_room():
    desk = Desk(
        strategy={"quote_size_usd": 800.0},
        risk={"rate_limit_calls": 10, "rate_limit_window_s": 60},
    )
    budget = desk.quoter.budget
    desk.warm_up()
    budget.spend(desk.now_ns, 6)
    desk.fill(Side.BUY)  # $800 long: past the hedge threshold, but no room
    ticks_for(desk, 20.0, dt_s=1.0)
    assert desk.hedges == []
    held = [m for m in alerts_of(desk, "hedge") if "held back" in m]
    assert len(held) == 1 and "retried" in held[0]
    ticks_for(desk, 45.0, dt_s=1.0)
    assert len(desk.hedges) == 1 and desk.hedges[0].side is Side.SELL


# ---- the message gate's view -------------------------------------------------------------------


def test_working_orders_are_immutable_views_of_what_the_core_tracks():
    import dataclasses

    desk = Desk(strategy={"quote_size_usd": 800.0})
    desk.warm_up()
    views = desk.quoter.working_orders()
    assert {v.side for v in views} == {Side.BUY, Side.SELL}
    bid = next(v for v in views if v.side is Side.BUY)
    assert bid == WorkingOrder(
        order_id=bid.order_id,
        side=Side.BUY,
        price=99_975.0,
        size_base=0.008,
        leaves_base=0.008,
        is_hedge=False,
        accepted=True,
        cancel_sent=False,
        sent_ns=bid.sent_ns,
    )
    assert desk.quoter.working_order(bid.order_id) == bid
    with pytest.raises(dataclasses.FrozenInstanceError):
        bid.price = 1.0  # type: ignore[misc]
    # a hedge in flight is tracked at the mid it was sent at; gone once it fills
    quoter, now = desk.quoter, desk.now_ns
    from engine.events import Fill

    hedge_actions = quoter.on_fill(
        Fill(now, bid.order_id, Side.BUY, 99_975.0, 0.008, 0.0, True, 0.0), now
    )
    hedge = next(a for a in hedge_actions if isinstance(a, PlaceHedge))
    view = quoter.working_order(hedge.order_id)
    assert view is not None and view.is_hedge and view.price == 100_000.0
    assert quoter.working_order(bid.order_id) is None
    assert quoter.working_order("nope") is None
