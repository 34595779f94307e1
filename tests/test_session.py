"""Journaled live sessions under every fault the embedded exchange injects, on a fake clock."""

from __future__ import annotations

import pytest

from engine.config import Settings
from engine.events import Kill
from engine.journal import recover
from engine.session import open_engine
from engine.snapshot import EngineState

S = 1_000_000_000
WALL0 = 1_764_000_000 * S

FAULTS = {
    "none": {},
    "order rejects": {"reject_rate": 0.3},
    "cancel failures": {"cancel_fail_rate": 0.4},
    "latency spikes": {"latency_ms": 50.0, "latency_spike_rate": 0.05, "latency_spike_ms": 3000},
    "feed gaps": {"feed_gap_rate_per_hour": 60.0, "feed_gap_s": 12.0},
}


class FakeClocks:
    """One fake time for the engine's monotonic clock and the journal's wall clock."""

    def __init__(self) -> None:
        self.elapsed_ns = 0

    def monotonic(self) -> int:
        return self.elapsed_ns

    def wall(self) -> int:
        return WALL0 + self.elapsed_ns


def session(state_dir, clocks: FakeClocks, **sim):
    settings = Settings.model_validate(
        {
            "sim": {"speed": 1.0, **sim},
            "strategy": {"quote_size_usd": 600.0},
        }
    )
    return open_engine(settings, state_dir, wall_ns=clocks.wall, clock=clocks.monotonic)


def run(engine, clocks: FakeClocks, seconds: float, step_s: float = 0.05) -> None:
    for _ in range(round(seconds / step_s)):
        clocks.elapsed_ns += round(step_s * S)
        engine.pump()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_under_each_fault_a_kill_leaves_nothing_resting_and_the_journal_matches_the_venue(
    tmp_path, fault
):
    clocks = FakeClocks()
    engine = session(tmp_path, clocks, **FAULTS[fault])
    run(engine, clocks, 240.0)
    assert engine.errors == 0, engine.last_error
    engine.send(Kill())
    run(engine, clocks, 10.0)
    assert engine.quoter.state is EngineState.KILLED
    assert engine.market.resting_orders() == []
    venue_position = engine.market.position_base
    assert engine.finish("clean") == 0
    rec = recover(tmp_path, clocks.wall())
    assert rec.position_base == pytest.approx(venue_position, abs=1e-12)
    assert rec.killed and rec.last_exit == "clean"
    assert rec.open_orders == {}


def test_a_restart_carries_the_position_cash_and_pnl_on(tmp_path):
    clocks = FakeClocks()
    engine = session(tmp_path, clocks)
    run(engine, clocks, 300.0)
    position, net = engine.quoter.position_base, engine.quoter.ledger.net
    assert position != 0, "the run should have built some inventory"
    engine.finish("clean")
    again = session(tmp_path, clocks)
    assert again.market.position_base == pytest.approx(position, abs=1e-12)
    assert again.quoter.position_base == pytest.approx(position, abs=1e-12)
    assert again.quoter.ledger.net == net
    assert again.quoter.state is EngineState.QUOTING
    again.finish("clean")


def test_an_unreadable_order_message_kills_and_cancels_instead_of_trading_blind(tmp_path):
    from engine.events import OrderCanceled

    clocks = FakeClocks()
    engine = session(tmp_path, clocks)
    run(engine, clocks, 30.0)
    assert engine.market.resting_orders(), "quoting before the bad message"
    venue = engine.market.venue
    real_step = venue.step
    bad = OrderCanceled(venue.now_ns, 12345)  # an order id that is not text

    def step_once_with_a_bad_message():
        venue.step = real_step
        return [bad, *real_step()]

    venue.step = step_once_with_a_bad_message
    run(engine, clocks, 1.0)
    assert engine.quoter.state is EngineState.KILLED
    assert "venue message refused" in engine.quoter.kill_reason
    assert engine.market.resting_orders() == []
    engine.finish("clean")
