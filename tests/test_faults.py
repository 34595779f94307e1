"""Faults the embedded exchange injects: the core survives each; a kill leaves nothing resting."""

import pytest

from engine.backtest import run_backtest
from engine.config import RiskSettings, StrategySettings
from engine.events import Kill
from engine.quoter import Quoter
from engine.sim.market import SimMarket
from engine.sim.params import SimParams
from engine.snapshot import EngineState

FAULTS = {
    "order rejects": {"reject_rate": 0.3},
    "cancel failures": {"cancel_fail_rate": 0.4},
    "latency spikes": {"latency_ms": 50.0, "latency_spike_rate": 0.05, "latency_spike_ms": 3000.0},
    "feed gaps": {"feed_gap_rate_per_hour": 30.0, "feed_gap_s": 12.0},
}


def kill_and_drain(market: SimMarket, quoter: Quoter) -> None:
    """Press the kill switch, then let the venue work until every cancel has landed."""
    now = market.now_ns
    for action in quoter.on_command(Kill(), now):
        market.submit(action, now)
    for _ in range(200_000):
        if not market.resting_orders() and not quoter.resting_quote_count():
            break
        for event in market.step():
            for action in quoter.on_event(event, event.ts_ns):
                market.submit(action, event.ts_ns)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_the_core_survives_each_fault_and_a_kill_leaves_nothing_resting(fault):
    market = SimMarket(SimParams(seed=4, **FAULTS[fault]))
    quoter = Quoter(StrategySettings(), RiskSettings(), market.instrument, seed=4)
    report, _ = run_backtest(market, quoter, hours=0.5)
    assert report["pnl_identity_error_usd"] == 0.0
    kill_and_drain(market, quoter)
    assert quoter.state is EngineState.KILLED
    assert market.resting_orders() == []
    assert quoter.position_base == pytest.approx(market.position_base, abs=1e-12)


def test_cancel_failures_are_retried_and_alerted():
    market = SimMarket(SimParams(seed=4, cancel_fail_rate=0.4))
    quoter = Quoter(StrategySettings(), RiskSettings(), market.instrument, seed=4)
    run_backtest(market, quoter, hours=0.2)
    messages = [a.message for a in quoter.alerts if a.control == "orders"]
    assert any("refused" in m and "retry" in m for m in messages)


def test_a_feed_gap_pulls_quotes_until_books_return():
    market = SimMarket(SimParams(seed=4, feed_gap_rate_per_hour=30.0, feed_gap_s=12.0))
    quoter = Quoter(StrategySettings(), RiskSettings(), market.instrument, seed=4)
    run_backtest(market, quoter, hours=0.5)
    stale = [a.message for a in quoter.alerts if a.control == "stale feed"]
    assert any("quotes pulled" in m for m in stale)
    assert any("back" in m for m in stale)
