"""The live shell on the real embedded exchange, driven by a fake clock: fast and repeatable."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from engine.config import Settings, SimSettings, VenueSettings
from engine.events import Kill, Resume, Widen
from engine.live import LiveEngine, VenueUnavailable, run_headless
from engine.snapshot import EngineState

S = 1_000_000_000
REPO = Path(__file__).resolve().parent.parent


class FakeClock:
    """A monotonic ns clock that moves only when told to."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += round(seconds * S)


def fake_engine(
    settings: Settings | None = None, oversleep_ms: float = 0.0
) -> tuple[LiveEngine, FakeClock]:
    """An engine whose sleeps move the fake clock (plus `oversleep_ms` of lateness)."""
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(max(seconds, 0.001) + oversleep_ms / 1000)
        await asyncio.sleep(0)

    engine = LiveEngine(settings or Settings(), clock=clock, sleep=sleep, epoch_s=1.75e9)
    return engine, clock


async def run_until(engine: LiveEngine, clock: FakeClock, sim_s: float) -> None:
    """Let the engine task run until the fake clock has reached `sim_s` seconds."""
    engine.start()
    target = round(sim_s * S)
    while clock.now_ns < target:
        assert engine.running, "the engine task ended"
        await asyncio.sleep(0)


async def test_publishes_snapshots_and_rests_two_quotes_at_the_venue() -> None:
    engine, clock = fake_engine()
    await run_until(engine, clock, 20)

    snap = engine.snapshot
    assert snap.state is EngineState.QUOTING
    assert snap.ts_ns - engine.sim0_ns >= 19 * S
    assert snap.bid_quote is not None and snap.ask_quote is not None
    assert snap.bid_quote.price < snap.mid < snap.ask_quote.price  # type: ignore[operator]
    resting = engine.market.resting_orders()
    assert sorted(order_id for order_id, *_ in resting) == sorted(
        [snap.bid_quote.order_id, snap.ask_quote.order_id]
    )
    assert engine.events_total > 200  # 10 books a second plus takers
    await engine.stop()


async def test_publishes_at_most_publish_hz_times_a_second_not_per_message() -> None:
    engine, clock = fake_engine()
    await run_until(engine, clock, 5)
    published, events = engine.snapshots_published, engine.events_total
    await run_until(engine, clock, 15)

    per_s = (engine.snapshots_published - published) / 10
    assert 15 <= per_s <= 20.5
    assert engine.events_total - events > 100  # more messages than it is allowed to publish
    await engine.stop()


async def test_sim_time_runs_at_the_configured_speed() -> None:
    engine, clock = fake_engine(Settings(sim=SimSettings(speed=10)))
    await run_until(engine, clock, 2)
    # publishes are 50 ms of wall time apart: 0.5 s of sim time at 10x
    assert engine.snapshot.ts_ns - engine.sim0_ns == pytest.approx(20 * S, abs=0.6 * S)
    await engine.stop()


async def test_kill_leaves_no_resting_orders_and_stops_quoting() -> None:
    engine, clock = fake_engine()
    await run_until(engine, clock, 15)
    assert engine.resting_at_venue() == 2

    engine.send(Kill("test"))
    await run_until(engine, clock, clock.now_ns / S + 0.05)

    assert engine.snapshot.state is EngineState.KILLED
    assert engine.resting_at_venue() == 0
    assert engine.snapshot.bid_quote is None and engine.snapshot.ask_quote is None
    await run_until(engine, clock, clock.now_ns / S + 5)  # and nothing comes back
    assert engine.resting_at_venue() == 0
    await engine.stop()


async def test_a_command_is_applied_and_published_at_the_next_wake_up() -> None:
    engine, clock = fake_engine()
    await run_until(engine, clock, 12)
    published = engine.snapshots_published
    engine.send(Widen())
    before = engine.pumps
    while engine.pumps == before:
        await asyncio.sleep(0)
    assert engine.snapshots_published > published
    assert engine.snapshot.manual_widen_bps == Settings().strategy.manual_widen_step_bps
    await engine.stop()


async def test_stop_cancels_everything_and_leaves_zero_resting_orders() -> None:
    engine, clock = fake_engine()
    await run_until(engine, clock, 15)
    assert engine.resting_at_venue() == 2

    left = await engine.stop()

    assert left == 0
    assert engine.resting_at_venue() == 0
    assert not engine.running and engine.closed
    assert engine.snapshot.bid_quote is None and engine.snapshot.ask_quote is None


async def test_stop_waits_for_the_venue_to_confirm_cancels_under_latency() -> None:
    engine, clock = fake_engine(Settings(sim=SimSettings(latency_ms=250)))
    await run_until(engine, clock, 15)
    assert engine.resting_at_venue() >= 1

    assert await engine.stop() == 0
    assert engine.resting_at_venue() == 0


async def test_a_venue_error_kills_cancels_all_and_the_loop_survives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, clock = fake_engine()
    await run_until(engine, clock, 15)
    assert engine.resting_at_venue() == 2
    real_step = engine.market.step
    calls = {"n": 0}

    def step_failing_once() -> list:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("venue went away")
        return real_step()

    monkeypatch.setattr(engine.market, "step", step_failing_once)
    await run_until(engine, clock, 17)

    snap = engine.snapshot
    assert engine.running
    assert snap.state is EngineState.KILLED
    assert engine.resting_at_venue() == 0
    assert engine.errors == 1 and "venue went away" in (engine.last_error or "")
    assert any("unhandled error" in alert.message for alert in snap.alerts)
    assert snap.ts_ns - engine.sim0_ns >= 16 * S  # snapshots keep coming

    engine.send(Resume())
    await run_until(engine, clock, 19)
    assert engine.snapshot.state is EngineState.QUOTING
    assert engine.resting_at_venue() == 2
    await engine.stop()


async def test_loop_lag_is_measured_from_late_wake_ups() -> None:
    engine, clock = fake_engine(oversleep_ms=3.0)
    await run_until(engine, clock, 3)
    assert engine.lag_p99_ms == pytest.approx(3.0, abs=0.01)
    await engine.stop()


async def test_the_session_history_is_sampled_once_a_second() -> None:
    engine, clock = fake_engine()
    await run_until(engine, clock, 10.5)
    assert 10 <= engine.history.view().version <= 12
    await engine.stop()


def test_a_network_venue_must_be_connected_before_the_engine_takes_it() -> None:
    with pytest.raises(VenueUnavailable, match=r"venue\.name = 'hyperliquid'"):
        LiveEngine(Settings(venue=VenueSettings(name="hyperliquid")))


async def test_headless_prints_status_lines_then_cancels_all_on_stop() -> None:
    engine, clock = fake_engine()
    out = io.StringIO()
    stop_event = asyncio.Event()

    async def stop_later() -> None:
        while clock.now_ns < 15 * S:
            await asyncio.sleep(0.001)
        stop_event.set()

    stopper = asyncio.create_task(stop_later())
    code = await run_headless(Settings(), stop_event, engine=engine, out=out, interval_s=0.005)
    await stopper

    lines = out.getvalue().splitlines()
    assert code == 0
    assert any("QUOTING" in line and " mid " in line and " net " in line for line in lines)
    assert lines[-1] == "stopped: every cancel confirmed; 0 resting orders left at the venue"
    assert engine.resting_at_venue() == 0
