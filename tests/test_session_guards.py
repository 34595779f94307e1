"""What a live session does with messages and failures that would cost real money: phantom and
absurd fills, a journal that cannot write, orders a crashed session left, a slow shutdown."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time

import pytest
from test_session import FakeClocks, run, session

from engine.config import Settings
from engine.events import Fill, PlaceHedge, PlaceQuote, Side
from engine.journal import JOURNAL_FILE, recover, status
from engine.live import VenueUnavailable
from engine.session import open_engine
from engine.snapshot import EngineState


def inject_once(engine, *events_at) -> None:
    """The venue's next batch carries these extra events (built from its clock) first."""
    venue = engine.market.venue
    real_step = venue.step

    def step_with_extra():
        venue.step = real_step
        return [make(venue.now_ns) for make in events_at] + real_step()

    venue.step = step_with_extra


def journal_rows(state_dir, kind: str) -> list[dict]:
    with sqlite3.connect(state_dir / JOURNAL_FILE) as conn:
        rows = conn.execute("SELECT data FROM records WHERE kind = ? ORDER BY seq", (kind,))
        return [json.loads(text) for (text,) in rows]


def watch_submits(engine) -> list:
    """Every action the engine sends the venue from now on."""
    sent: list = []
    venue = engine.market.venue
    real_submit = venue.submit

    def submit(action, now_ns):
        sent.append(action)
        real_submit(action, now_ns)

    venue.submit = submit
    return sent


def working_quote(engine, side: Side):
    for order in engine.quoter.working_orders():
        if order.side is side and not order.is_hedge and order.accepted:
            return order
    raise AssertionError(f"no accepted {side.name} quote working")


def test_a_phantom_fill_is_refused_never_booked_or_hedged_and_a_second_one_kills(tmp_path):
    clocks = FakeClocks()
    engine = session(tmp_path, clocks)
    run(engine, clocks, 30.0)
    sent = watch_submits(engine)
    before = engine.quoter.position_base
    # 0.05 BTC ($5,000) would be far past the hedge threshold if it were booked
    inject_once(engine, lambda ts: Fill(ts, "ghost1", Side.BUY, 100_000.0, 0.05, -1.25, True))
    run(engine, clocks, 1.0)
    assert engine.quoter.position_base == pytest.approx(before, abs=1e-12)
    assert engine.quoter.position_base == pytest.approx(engine.market.position_base, abs=1e-12)
    assert not [a for a in sent if isinstance(a, PlaceHedge)]
    assert engine.quoter.state is EngineState.QUOTING
    critical = [a.message for a in engine.quoter.alerts if a.severity.value == "CRITICAL"]
    assert any("fill refused" in m and "ghost1" in m for m in critical)
    assert any("venue and core agree" in a.message for a in engine.quoter.alerts)

    inject_once(engine, lambda ts: Fill(ts, "ghost2", Side.SELL, 100_000.0, 0.01, 0.0, True))
    run(engine, clocks, 1.0)
    assert engine.quoter.state is EngineState.KILLED
    assert "2 fills refused within a minute" in engine.quoter.kill_reason
    assert engine.market.resting_orders() == []
    engine.finish("clean")
    assert all(
        row["order_id"] not in ("ghost1", "ghost2") for row in journal_rows(tmp_path, "fill")
    )
    assert len(journal_rows(tmp_path, "refused")) == 2


@pytest.mark.parametrize(
    "what, change, words",
    [
        ("oversized", {"size_base": 1e6}, "more than the"),
        ("huge", {"size_base": 1.7e308}, "size 1.7e+308"),
        ("fee", {"fee_usd": 1e308}, "fee"),
        ("is_maker", {"is_maker": "no"}, "is_maker"),
        ("timestamp", {"ts_ns": 2**70}, "timestamp"),
        ("side", {"side": Side.SELL}, "SELL but our order is a BUY"),
        ("price", {"price": 90_000.0}, "not our quote's price"),
    ],
)
def test_an_absurd_fill_of_a_real_order_is_refused_and_the_state_dir_stays_readable(
    tmp_path, what, change, words
):
    clocks = FakeClocks()
    engine = session(tmp_path, clocks)
    run(engine, clocks, 30.0)
    bid = working_quote(engine, Side.BUY)
    fields = {
        "order_id": bid.order_id, "side": Side.BUY, "price": bid.price,
        "size_base": bid.leaves_base, "fee_usd": -0.01, "is_maker": True, "leaves_base": 0.0,
    }  # fmt: skip
    fields.update(change)
    ts_override = fields.pop("ts_ns", None)
    inject_once(engine, lambda ts: Fill(ts if ts_override is None else ts_override, **fields))
    run(engine, clocks, 0.1)
    assert engine.quoter.position_base == pytest.approx(engine.market.position_base, abs=1e-12)
    refused = [a.message for a in engine.quoter.alerts if "fill refused" in a.message]
    assert refused and words in refused[-1], refused
    engine.finish("clean")
    report = status(tmp_path, clocks.wall())  # readable, nothing absurd was journaled
    assert report["position_base"] == pytest.approx(engine.market.position_base, abs=1e-12)
    assert report["day_pnl_usd"] > -1_000


def test_order_ids_are_unique_across_sessions_and_the_restart_alert_is_journaled(tmp_path):
    clocks = FakeClocks()
    first = session(tmp_path, clocks)
    run(first, clocks, 60.0)
    first.finish("clean")
    second = session(tmp_path, clocks)
    run(second, clocks, 60.0)
    second.finish("clean")
    ids = [row["order_id"] for row in journal_rows(tmp_path, "order_sent")]
    assert len(ids) > 10
    assert len(ids) == len(set(ids)), "an order id was reused"
    prefixes = {order_id.rsplit("-", 1)[0] for order_id in ids}
    assert len(prefixes) == 2
    alerts = [row["message"] for row in journal_rows(tmp_path, "alert")]
    assert any("resumed from the journal" in m for m in alerts)


def test_orders_a_crashed_session_left_at_the_venue_are_found_and_cancelled(tmp_path):
    clocks = FakeClocks()
    engine = session(tmp_path, clocks)
    # what a crashed session left resting on the venue (the sim cannot carry orders across a
    # restart, so they are placed on the new one before the engine's first look)
    venue = engine.market.venue
    venue.submit(PlaceQuote("s0-dead-q7", Side.BUY, 99_000.0, 0.001), venue.now_ns)
    venue.submit(PlaceQuote("s0-dead-q8", Side.SELL, 101_000.0, 0.001), venue.now_ns)
    while venue.next_ts_ns <= venue.now_ns:  # resting before this session's first look
        venue.step()
    assert len(venue.resting_orders()) == 2
    sent = watch_submits(engine)
    run(engine, clocks, 5.0)
    first_cancels = [a.order_id for a in sent[:2]]
    assert sorted(first_cancels) == ["s0-dead-q7", "s0-dead-q8"], "cancelled before quoting"
    left = {order_id for order_id, *_ in engine.market.resting_orders()}
    assert not left & {"s0-dead-q7", "s0-dead-q8"}
    restart = [a.message for a in engine.quoter.alerts if a.control == "restart"]
    assert any("2 orders left at the venue" in m and "s0-dead-q7" in m for m in restart)
    assert not [o for o in engine.quoter.working_orders() if o.order_id.startswith("s0-")]
    engine.finish("clean")


def test_a_journal_that_cannot_record_fills_kills_and_loses_nothing(tmp_path):
    clocks = FakeClocks()
    settings = Settings.model_validate(
        {
            "sim": {"speed": 1.0},
            "strategy": {"quote_size_usd": 600.0},
            "risk": {"journal_stall_s": 0.2},
        }
    )
    engine = open_engine(settings, tmp_path, wall_ns=clocks.wall, clock=clocks.monotonic)
    run(engine, clocks, 30.0)
    # an operator's sqlite3 shell (or a backup) takes the write lock and holds it
    outside = sqlite3.connect(tmp_path / JOURNAL_FILE, isolation_level=None)
    outside.execute("BEGIN IMMEDIATE")
    fills_before = engine.quoter.ledger.fills
    deadline = time.monotonic() + 30
    while engine.quoter.state is not EngineState.KILLED and time.monotonic() < deadline:
        run(engine, clocks, 1.0)
    assert engine.quoter.state is EngineState.KILLED
    assert "journal" in engine.quoter.kill_reason
    run(engine, clocks, 1.0)
    assert engine.market.resting_orders() == []
    # resume is refused while the journal cannot write
    from engine.events import Resume

    engine.send(Resume())
    run(engine, clocks, 0.1)
    assert engine.quoter.state is EngineState.KILLED
    assert any("resume refused" in a.message for a in engine.quoter.alerts)
    outside.execute("ROLLBACK")
    outside.close()
    deadline = time.monotonic() + 30
    while engine.journal.failure and time.monotonic() < deadline:
        run(engine, clocks, 0.1)
        time.sleep(0.05)
    run(engine, clocks, 0.1)
    assert engine.journal.failure is None
    assert any("journal writable again" in a.message for a in engine.quoter.alerts)
    venue_position = engine.market.position_base
    assert engine.quoter.ledger.fills >= fills_before
    engine.finish("clean")
    rec = recover(tmp_path, clocks.wall())
    assert rec.position_base == pytest.approx(venue_position, abs=1e-12)
    assert rec.ledger.fills == engine.quoter.ledger.fills


def test_a_symbol_the_venue_does_not_trade_is_refused_before_a_session_starts(tmp_path):
    settings = Settings.model_validate({"strategy": {"symbol": "ETH-PERP"}})
    with pytest.raises(VenueUnavailable, match="trades BTC-PERP only"):
        open_engine(settings, tmp_path / "state")
    assert not (tmp_path / "state" / JOURNAL_FILE).exists()


def test_latency_never_leaves_more_than_one_quote_a_side_at_the_venue(tmp_path):
    clocks = FakeClocks()
    engine = session(
        tmp_path,
        clocks,
        latency_ms=300.0,
        latency_spike_rate=0.1,
        latency_spike_ms=3_000.0,
    )
    most = {Side.BUY: 0, Side.SELL: 0}
    for _ in range(2_400):  # 2 minutes
        run(engine, clocks, 0.05)
        resting = engine.market.resting_orders()
        for side in most:
            most[side] = max(most[side], sum(1 for _, s, *_ in resting if s is side))
    assert most == {Side.BUY: 1, Side.SELL: 1}
    assert engine.finish("clean") == 0


@pytest.mark.parametrize("timeout_s, left", [(60.0, 0), (5.0, None)])
def test_shutdown_waits_for_slow_cancels_up_to_its_limit_and_names_what_is_unconfirmed(
    tmp_path, timeout_s, left
):
    clocks = FakeClocks()
    settings = Settings.model_validate(
        {
            "sim": {"speed": 1.0},
            "strategy": {"quote_size_usd": 600.0},
            "venue": {"shutdown_timeout_s": timeout_s},
        }
    )
    engine = open_engine(settings, tmp_path, wall_ns=clocks.wall, clock=clocks.monotonic)
    run(engine, clocks, 30.0)
    assert engine.market.resting_orders()
    # from now on every message to the venue takes 20 s
    venue = engine.market.venue
    venue.params = dataclasses.replace(
        venue.params, latency_spike_rate=1.0, latency_spike_ms=20_000.0
    )
    result = engine.finish("clean")
    report = engine.shutdown_report()
    if left == 0:
        assert result == 0
        assert engine.market.resting_orders() == []
        assert "0 resting orders left" in report
    else:
        assert result > 0
        assert engine.unconfirmed_ids
        assert "not confirmed cancelled after 5 s" in report
        assert all(order_id in report for order_id in engine.unconfirmed_ids[:10])
        assert "0 resting orders" not in report


def test_status_reads_while_a_session_runs(tmp_path):
    clocks = FakeClocks()
    engine = session(tmp_path, clocks)
    run(engine, clocks, 10.0)
    done = threading.Event()
    result: dict = {}

    def read():
        result.update(status(tmp_path, clocks.wall()))
        done.set()

    threading.Thread(target=read).start()
    assert done.wait(10)
    assert result["sessions"] == 1
    engine.finish("clean")


def test_a_position_adopted_from_the_venue_is_journaled_and_survives_a_restart(tmp_path):
    clocks = FakeClocks()
    engine = session(tmp_path, clocks)
    run(engine, clocks, 30.0)
    venue = engine.market.venue
    real_step = venue.step
    dropped: list[Fill] = []

    def step_losing_our_fills():  # the venue trades our bid, but its fill message is lost
        events = real_step()
        kept = [e for e in events if not isinstance(e, Fill)]
        dropped.extend(e for e in events if isinstance(e, Fill))
        if dropped:
            venue.step = real_step
        return kept

    venue.step = step_losing_our_fills
    venue.inject_taker(Side.SELL, 5.0, venue.now_ns)
    run(engine, clocks, 0.2)
    assert dropped, "the sweep filled our bid"
    assert engine.quoter.position_base != pytest.approx(engine.market.position_base, abs=1e-9)
    # something we cannot match arrives: the position check finds the difference and adopts it
    inject_once(engine, lambda ts: Fill(ts, "ghost9", Side.BUY, 100_000.0, 0.01, 0.0, True))
    run(engine, clocks, 1.0)
    assert engine.quoter.position_base == pytest.approx(engine.market.position_base, abs=1e-12)
    assert any("adopted the venue's" in a.message for a in engine.quoter.alerts)
    adopted = journal_rows(tmp_path, "reconcile")
    assert adopted and adopted[-1]["position_base"] == pytest.approx(
        engine.market.position_base, abs=1e-12
    )
    venue_position = engine.market.position_base
    engine.finish("clean")
    rec = recover(tmp_path, clocks.wall())
    assert rec.position_base == pytest.approx(venue_position, abs=1e-12)
    assert rec.ledger.equity(rec.last_mid) == rec.ledger.net


def test_twenty_second_latency_spikes_refuse_no_real_fill_and_never_double_a_side(tmp_path):
    clocks = FakeClocks()
    engine = session(
        tmp_path,
        clocks,
        latency_ms=300.0,
        latency_spike_rate=0.1,
        latency_spike_ms=20_000.0,
        regime="volatile",
    )
    most = 0
    for _ in range(300):  # 5 minutes, a second at a time
        run(engine, clocks, 1.0)
        resting = engine.market.resting_orders()
        most = max(most, *(sum(1 for _, s, *_ in resting if s is side) for side in Side))
        assert engine.quoter.position_base == pytest.approx(engine.market.position_base, abs=1e-12)
    assert engine.quoter.ledger.fills > 0
    assert engine.market.refused_fills == 0
    assert most == 1
    assert engine.quoter.state is EngineState.QUOTING
    assert any("no answer" in a.message for a in engine.quoter.alerts), "spikes were chased"
    engine.finish("clean")
    assert engine.unconfirmed_ids == ()


def test_a_core_error_mid_batch_does_not_step_the_venue_before_the_batch_is_booked(tmp_path):
    from engine.events import Trade

    clocks = FakeClocks()
    engine = session(tmp_path, clocks, regime="flat")
    run(engine, clocks, 90.0)
    quoter, venue = engine.quoter, engine.market.venue
    mid = quoter.book.mid
    poison: list[Trade] = []
    real_on_event = quoter.on_event

    def on_event(event, now_ns):
        if poison and event is poison[0]:
            raise RuntimeError("a bug in the core")
        return real_on_event(event, now_ns)

    quoter.on_event = on_event
    real_step = venue.step

    def step():  # a phantom fill, then an event the core chokes on, then our real fill
        venue.step = real_step
        poison.append(Trade(venue.now_ns, mid, 0.001, Side.BUY))
        phantom = Fill(venue.now_ns, "ghost", Side.BUY, mid, 0.001, 0.0, True)
        return [phantom, poison[0], *real_step()]

    venue.step = step
    venue.inject_taker(Side.SELL, 3.0, venue.now_ns)  # fills our bid in that very batch
    run(engine, clocks, 0.05)
    assert engine.errors == 1
    assert quoter.position_base != 0
    assert quoter.position_base == pytest.approx(venue.position_base, abs=1e-12)
    engine.finish("crash")
