"""The journal under bad timing: a slow or hung commit at close, a recovery file imported but
not renamed, a journal slow without ever failing, a failure that comes and goes unseen."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_journal_failures import flaky_connect, wait_for

from engine.events import Fill, Side
from engine.journal import JOURNAL_FILE, Journal, JournalError, iter_records, recover

DAY = 86_400 * 1_000_000_000
NOW = 20_000 * DAY + 3_600 * 1_000_000_000
FILL = {
    "order_id": "q1",
    "side": 1,
    "price": 100_000.0,
    "size_base": 0.01,
    "fee_usd": -0.25,
    "is_maker": True,
    "leaves_base": 0.0,
    "mid": 100_000.0,
}


def fill(order_id: str, size: float = 0.001) -> Fill:
    return Fill(0, order_id, Side.BUY, 100_000.0, size, fee_usd=-0.025, is_maker=True)


def fills_in_journal(state_dir: Path) -> int:
    return sum(1 for row in iter_records(state_dir) if row[3] == "fill")


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Exceptions that killed a thread (the journal's writer must never die)."""
    errors: list[BaseException] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        errors.append(args.exc_value or Exception("?"))

    monkeypatch.setattr(threading, "excepthook", hook)
    return errors


def commit_hook(
    on_commit: Callable[[], None],
) -> tuple[Callable[[Path], sqlite3.Connection], threading.Event]:
    """A connection that calls `on_commit` before each COMMIT while the event is set."""
    armed = threading.Event()

    class Hooked(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            if armed.is_set() and sql == "COMMIT":
                on_commit()
            return super().execute(sql, *args)  # type: ignore[arg-type]

    def connect(path: Path) -> sqlite3.Connection:
        return sqlite3.connect(path, factory=Hooked, check_same_thread=False, isolation_level=None)

    return connect, armed


# ---- 1: close and a commit under way ----------------------------------------------------------


def test_close_waits_for_a_slow_commit_and_books_its_fill_once(tmp_path, thread_errors):
    connect, slow = commit_hook(lambda: time.sleep(3.0))  # a slow disk, longer than 2 s
    journal = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.3, connect=connect
    )
    slow.set()
    journal.fill(NOW, fill("q1"), mid=100_000.0)
    report = journal.close("clean", NOW + 1)
    assert report.unwritten == 0 and report.recovery_file is None
    assert list(tmp_path.glob("recovery-*")) == []
    assert fills_in_journal(tmp_path) == 1
    assert recover(tmp_path, NOW + 2).position_base == pytest.approx(0.001)
    assert thread_errors == []


@pytest.mark.parametrize("lands", [True, False])
def test_a_hung_commit_does_not_hang_close_and_its_batch_is_booked_once(
    tmp_path, thread_errors, lands
):
    release = threading.Event()

    def hang() -> None:  # fsync on a dead disk: returns (or fails) much later
        release.wait(20)
        if not lands:
            raise sqlite3.OperationalError("disk I/O error")

    connect, armed = commit_hook(hang)
    journal = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.2, connect=connect
    )
    journal._close_commit_wait_s = 0.5
    armed.set()
    journal.fill(NOW, fill("q1"), mid=100_000.0)
    t0 = time.monotonic()
    report = journal.close("clean", NOW + 1)
    assert time.monotonic() - t0 < 4.0
    assert report.unwritten == 1 and report.in_flight == 1
    assert report.recovery_file is not None
    (line,) = [json.loads(x) for x in report.recovery_file.read_text().splitlines()]
    assert line["kind"] == "fill" and line["in_flight"] is True
    with pytest.raises(JournalError, match="in use"):  # held until the commit returns
        Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2)
    armed.clear()
    release.set()
    journal._thread.join(10)
    assert not journal._thread.is_alive() and thread_errors == []
    assert fills_in_journal(tmp_path) == (1 if lands else 0)
    assert recover(tmp_path, NOW + 3).position_base == pytest.approx(0.001)
    following = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 3)
    assert following.recovered.position_base == pytest.approx(0.001)
    following.close("clean", NOW + 4)
    assert fills_in_journal(tmp_path) == 1
    assert recover(tmp_path, NOW + 5).position_base == pytest.approx(0.001)


def test_a_recovery_file_record_already_in_the_journal_is_skipped_once(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.append("fill", NOW, FILL)
    journal.close("clean", NOW + 1)
    path = tmp_path / f"recovery-1-{NOW + 1}.jsonl"
    line = json.dumps({"session": 1, "ts_ns": NOW, "kind": "fill", "data": FILL})
    path.write_text(line + "\n" + line + "\n")  # once journaled, once not
    assert recover(tmp_path, NOW + 2).position_base == pytest.approx(0.02)
    following = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2)
    assert following.recovered.position_base == pytest.approx(0.02)
    following.close("clean", NOW + 3)
    assert fills_in_journal(tmp_path) == 2
    assert recover(tmp_path, NOW + 4).position_base == pytest.approx(0.02)


# ---- 2: recover and a recovery file imported but not renamed ----------------------------------


def test_recover_skips_a_recovery_file_imported_but_not_renamed(tmp_path):
    Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW).close("clean", NOW + 1)
    path = tmp_path / f"recovery-1-{NOW + 1}.jsonl"
    path.write_text(json.dumps({"session": 1, "ts_ns": NOW, "kind": "fill", "data": FILL}) + "\n")
    assert recover(tmp_path, NOW + 2).position_base == pytest.approx(0.01)
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2)
    journal._halt()
    path.with_name(path.name + ".imported").rename(path)  # kill -9 before the rename
    rec = recover(tmp_path, NOW + 3)
    assert rec.position_base == pytest.approx(0.01)
    assert rec.recovery_files == []
    again = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 3)
    assert again.recovered.position_base == pytest.approx(0.01)
    again.close("clean", NOW + 4)
    assert fills_in_journal(tmp_path) == 1


def test_the_journal_recovers_what_recover_says_before_and_after_open(tmp_path):
    first = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, checkpoint_every=3)
    for i in range(5):
        first.fill(NOW + i, fill(f"q{i}"), mid=100_000.0 + i)
    first.append("order_sent", NOW + 6, {"order_id": "q9"})
    first.append("state", NOW + 7, {"state": "KILLED", "reason": "drill"})
    first.close("clean", NOW + 8)
    path = tmp_path / f"recovery-1-{NOW + 8}.jsonl"
    path.write_text(json.dumps({"session": 1, "ts_ns": NOW + 8, "kind": "fill", "data": FILL}))
    now = NOW + DAY  # the next day: the day's baseline comes from the fold
    before = recover(tmp_path, now)
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=now)
    after = recover(tmp_path, now)
    for rec in (before, after):
        mine = journal.recovered
        assert mine.ledger.net == rec.ledger.net and mine.ledger.position == rec.ledger.position
        assert mine.day_start_net_usd == rec.day_start_net_usd
        assert (mine.killed, mine.kill_reason) == (rec.killed, rec.kill_reason)
        assert mine.open_orders == rec.open_orders and mine.last_mid == rec.last_mid
    assert (journal.recovered.last_exit, journal.recovered.exit_note) == (
        before.last_exit,
        before.exit_note,
    )
    assert journal.recovered.sessions == before.sessions == after.sessions - 1
    journal.close("clean", now + 1)


# ---- 3: slow but never failing ----------------------------------------------------------------


def test_a_journal_slow_but_never_failing_stops_blocking_and_says_so(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=2.0)
    stop = threading.Event()

    def holder() -> None:  # an outside process with the write lock 1.0 s of every 1.5 s
        outside = sqlite3.connect(tmp_path / JOURNAL_FILE, isolation_level=None, timeout=5)
        while not stop.is_set():
            outside.execute("BEGIN IMMEDIATE")
            time.sleep(1.0)
            outside.execute("COMMIT")
            time.sleep(0.5)
        outside.close()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    time.sleep(0.05)
    waits, seen = [], 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 7.0:  # an event loop: a durable record, then other work
        a = time.monotonic()
        journal.append("order_sent", NOW, {"order_id": "q", "side": 1, "price": 1.0})
        waits.append(time.monotonic() - a)
        seen += journal.failure is not None
        time.sleep(0.05)
    stop.set()
    thread.join()
    # an append blocks 0.25 s at most (the lock is held 1 s at a time), and the journal says it
    # has been blocking too much of the time (25% of 10 s) rather than staying silent
    assert max(waits) < 0.75
    assert seen > 0 and journal.failure_count >= 1
    assert journal.last_failure is not None and "blocked" in journal.last_failure
    assert wait_for(lambda: journal.unwritten == 0 and journal.failure is None)
    journal.close("clean", NOW + 1)


def test_a_durable_record_is_retried_often_however_long_the_failure(tmp_path):
    connect, failing = flaky_connect("inserts")
    journal = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=5.0, connect=connect
    )
    failing.set()
    journal.fill(NOW, fill("q1"), mid=100_000.0)
    time.sleep(1.5)
    tries = journal.write_errors
    failing.clear()
    # a backoff doubling from 50 ms to 1 s tries 5 times in 1.5 s; a durable record waiting is
    # retried every 80 ms or so
    assert tries >= 10, tries
    assert wait_for(lambda: journal.unwritten == 0)
    journal.close("clean", NOW + 1)


# ---- 4: a failure between two looks -----------------------------------------------------------


def test_a_failure_that_clears_between_two_looks_is_still_counted(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.2)
    assert journal.failure_count == 0 and journal.last_failure is None
    outside = sqlite3.connect(tmp_path / JOURNAL_FILE, isolation_level=None)
    outside.execute("BEGIN IMMEDIATE")
    journal.fill(NOW, fill("q1"), mid=100_000.0)
    time.sleep(0.4)  # nobody looks at `failure`
    outside.execute("ROLLBACK")
    outside.close()
    assert wait_for(lambda: journal.unwritten == 0)
    assert journal.failure is None
    assert journal.failure_count == 1
    assert journal.last_failure is not None
    assert journal.last_failure.startswith("journal cannot record a fill")
    journal.append("mark", NOW + 1, {"mid": float("nan")})  # refused: a second failure
    assert journal.failure_count == 2 and journal.failure == journal.last_failure
    assert journal.last_failure.startswith("journal refused a mark record")
    journal.close("clean", NOW + 2)
