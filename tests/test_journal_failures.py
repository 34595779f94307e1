"""The journal under failing writes: nothing is dropped, the failure is said, the exit is kept."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.events import Fill, Side
from engine.journal import (
    JOURNAL_FILE,
    CloseReport,
    Journal,
    JournalError,
    iter_records,
    recover,
    status,
)

DAY = 86_400 * 1_000_000_000
NOW = 20_000 * DAY + 3_600 * 1_000_000_000
DEAD_PID = 2**22 + 12345


def fill(order_id: str, size: float = 0.001, side: Side = Side.BUY) -> Fill:
    return Fill(0, order_id, side, 100_000.0, size, fee_usd=-0.025, is_maker=True)


def flaky_connect(
    mode: str = "all",
) -> tuple[Callable[[Path], sqlite3.Connection], threading.Event]:
    """A connection whose writes fail like a full disk while the event is set; mode "inserts"
    fails only the record inserts (the sessions row can still be updated)."""
    failing = threading.Event()

    class Flaky(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            if failing.is_set() and mode == "all":
                raise sqlite3.OperationalError("database or disk is full")
            return super().execute(sql, *args)  # type: ignore[arg-type]

        def executemany(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            if failing.is_set():
                raise sqlite3.OperationalError("database or disk is full")
            return super().executemany(sql, *args)  # type: ignore[arg-type]

    def connect(path: Path) -> sqlite3.Connection:
        return sqlite3.connect(path, factory=Flaky, check_same_thread=False, isolation_level=None)

    return connect, failing


def wait_for(condition: Callable[[], bool], limit_s: float = 10.0) -> bool:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def journaled_fill_ids(state_dir: Path) -> list[str]:
    return [
        json.loads(data)["order_id"]
        for _, _, _, kind, data in iter_records(state_dir)
        if kind == "fill"
    ]


def forget_pid(state_dir: Path) -> None:
    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    conn.execute("UPDATE sessions SET pid = ?", (DEAD_PID,))
    conn.commit()
    conn.close()


def test_a_failing_write_is_retried_and_never_lost(tmp_path):
    connect, failing = flaky_connect()
    journal = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.3, connect=connect
    )
    journal.fill(NOW, fill("q0"), mid=100_000.0)
    assert journal.failure is None and journal.unwritten == 0
    failing.set()
    journal.fill(NOW + 1, fill("q1"), mid=100_000.0)  # waits 0.25 s at most, then goes on
    assert wait_for(lambda: journal.failure is not None)  # the record has waited stall_s
    assert journal.failure is not None
    assert journal.failure_count == 1
    assert "database or disk is full" in journal.failure
    assert journal.failure.startswith("journal cannot record a fill")
    assert "\n" not in journal.failure
    for i in range(2, 20):
        journal.fill(NOW + i, fill(f"q{i}"), mid=100_000.0)
    journal.mark(NOW + 20, 100_010.0)
    assert journal.unwritten == 20  # q1..q19 and the mark, all still held
    assert journal.write_errors > 0
    failing.clear()
    assert wait_for(lambda: journal.failure is None)
    assert journal.unwritten == 0
    assert journal.take_recovered_note() == "journal writable again: 20 records written late"
    assert journal.take_recovered_note() is None
    report = journal.close("clean", NOW + 30)
    assert report.unwritten == 0 and report.recovery_file is None and report.exit_recorded
    assert journaled_fill_ids(tmp_path) == [f"q{i}" for i in range(20)]
    rec = recover(tmp_path, NOW + 31)
    assert rec.ledger.fills == 20
    assert rec.ledger.position * 1000 == 20
    assert rec.last_mid == 100_010.0


def test_an_outside_process_holding_the_write_lock_delays_fills_but_loses_none(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.3)
    journal.fill(NOW, fill("q0"), mid=100_000.0)
    shell = sqlite3.connect(tmp_path / JOURNAL_FILE, isolation_level=None)
    shell.execute("BEGIN IMMEDIATE")  # an operator's sqlite3 shell, mid-transaction
    try:
        for i in range(1, 11):
            journal.fill(NOW + i, fill(f"q{i}"), mid=100_000.0)
        assert journal.failure is not None
        assert "locked" in journal.failure
        assert journal.unwritten == 10
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    assert wait_for(lambda: journal.unwritten == 0 and journal.failure is None)
    journal.close("clean", NOW + 20)
    assert journaled_fill_ids(tmp_path) == [f"q{i}" for i in range(11)]


def test_close_while_failing_writes_a_recovery_file_that_the_next_session_imports(tmp_path):
    connect, failing = flaky_connect("inserts")
    journal = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.2, connect=connect
    )
    journal.fill(NOW, fill("q0"), mid=100_000.0)
    failing.set()
    journal.fill(NOW + 1, fill("q1"), mid=100_000.0)
    journal.fill(NOW + 2, fill("q2", 0.002, Side.SELL), mid=100_000.0)
    journal.mark(NOW + 3, 100_500.0)
    report = journal.close("clean", NOW + 10)
    assert report.unwritten == 3
    assert report.exit_recorded  # the sessions row could still be written
    assert report.recovery_file == tmp_path / f"recovery-{journal.session}-{NOW + 10}.jsonl"
    assert stat.S_IMODE(os.stat(report.recovery_file).st_mode) == 0o600
    lines = [json.loads(line) for line in report.recovery_file.read_text().splitlines()]
    assert [(line["kind"], line["session"]) for line in lines] == [
        ("fill", journal.session),
        ("fill", journal.session),
        ("mark", journal.session),
    ]
    assert journaled_fill_ids(tmp_path) == ["q0"]

    report_now = status(tmp_path, NOW + 11)
    assert report_now["last_exit"] == "clean"
    assert report_now["unwritten"] == 3
    assert report_now["exit_note"] == (
        f"clean, 3 records not journaled (see {report.recovery_file.name})"
    )
    assert report_now["recovery_files"] == [str(report.recovery_file)]
    assert report_now["position_base"] == 0.0  # +0.001 +0.001 -0.002
    assert report_now["mark_usd"] == 100_500.0
    rec = recover(tmp_path, NOW + 11)
    assert rec.ledger.fills == 3

    following = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 20)
    assert following.recovered.ledger.fills == 3
    assert not report.recovery_file.exists()
    assert report.recovery_file.with_name(report.recovery_file.name + ".imported").exists()
    following.close("clean", NOW + 21)
    assert journaled_fill_ids(tmp_path) == ["q0", "q1", "q2"]
    after = recover(tmp_path, NOW + 22)
    assert after.ledger.fills == 3 and after.recovery_files == []
    assert after.ledger.net == rec.ledger.net


def test_close_with_a_dead_disk_still_keeps_the_records(tmp_path):
    connect, failing = flaky_connect("all")
    journal = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.2, connect=connect
    )
    journal.fill(NOW, fill("q0"), mid=100_000.0)
    failing.set()
    assert not journal.mark_exit("signal", NOW + 1)  # cannot be written: close tries again
    journal.fill(NOW + 2, fill("q1"), mid=100_000.0)
    report = journal.close("signal", NOW + 3)
    assert report.unwritten == 1 and not report.exit_recorded
    assert report.recovery_file is not None and report.recovery_file.exists()
    forget_pid(tmp_path)
    rec = recover(tmp_path, NOW + 4)
    assert rec.ledger.fills == 2
    assert rec.last_exit == "crash"  # never say clean when it was not recorded
    assert rec.unwritten_last_session == 1
    assert rec.exit_note is not None and report.recovery_file.name in rec.exit_note


def test_the_exit_marked_at_the_start_of_shutdown_survives_a_crash_during_it(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.append("order_sent", NOW, {"order_id": "q1"})
    assert journal.mark_exit("signal", NOW + 1)
    journal._halt()  # killed while cancelling: close never runs
    forget_pid(tmp_path)
    report = status(tmp_path, NOW + 2)
    assert report["last_exit"] == "signal"
    assert report["exit_note"] == "signal (the shutdown did not finish)"
    assert report["resting_orders"] == 1


def test_a_record_that_would_poison_the_journal_is_refused_loudly_and_kept(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.fill(NOW, fill("q0"), mid=100_000.0)
    journal.fill(NOW + 1, Fill(0, "q1", Side.BUY, float("nan"), 0.001, 0.0, True), mid=None)
    assert journal.failure is not None
    assert journal.failure.startswith("journal refused a fill record: price nan")
    journal.mark(NOW + 2, 100_000.0)
    assert wait_for(lambda: journal.unwritten == 0)
    assert journal.failure is not None  # stays: trading must not go on with a lost fill
    journal.close("clean", NOW + 3)
    kinds = [kind for _, _, _, kind, _ in iter_records(tmp_path)]
    assert kinds == ["fill", "refused", "mark"]
    assert recover(tmp_path, NOW + 4).ledger.fills == 1  # the journal stays readable


def test_status_works_while_a_session_runs_and_takes_no_lock(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.fill(NOW, fill("q0", 0.5), mid=100_000.0)
    report = status(tmp_path, NOW + 1)
    assert report["position_base"] == 0.5
    assert report["venue"] == "sim" and report["symbol"] == "BTC-PERP"
    journal.mark(NOW + 2, 100_000.0)
    journal.close("clean", NOW + 3)
    assert status(tmp_path, NOW + 4)["last_exit"] == "clean"


def test_records_appended_after_close_go_to_stderr(tmp_path, capsys):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.close("clean", NOW + 1)
    journal.fill(NOW + 2, fill("late"), mid=None)
    err = capsys.readouterr().err.splitlines()
    assert "is closed" in err[0]
    assert json.loads(err[1])["data"]["order_id"] == "late"


def test_an_alert_with_an_infinite_value_is_journaled_not_refused(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    alert = {"severity": "WARNING", "control": "volatility", "message": "vol spike"}
    journal.append("alert", NOW, {**alert, "value": float("inf"), "threshold": 40.0})
    journal.close("clean", NOW + 1)
    assert journal.failure is None
    [(_, _, _, kind, data)] = list(iter_records(tmp_path))
    assert kind == "alert" and json.loads(data)["value"] == float("inf")
    assert recover(tmp_path, NOW + 2).sessions == 1


def close_with_full_disks(
    state: Path, spare: Path, monkeypatch, *, spare_full: bool
) -> CloseReport:
    """Close a session that has one fill it could not journal, while the state directory's
    disk (and with `spare_full` the temp directory `spare` too) cannot take a recovery file."""
    connect, failing = flaky_connect("inserts")
    journal = Journal(
        state, venue="sim", symbol="BTC-PERP", started_ns=NOW, stall_s=0.2, connect=connect
    )
    failing.set()
    journal.fill(NOW, fill("q1"), mid=100_000.0)
    real_open = os.open
    full = {state, spare} if spare_full else {state}

    def no_space(path, *args, **kwargs):
        if "recovery-" in str(path) and Path(path).parent in full:
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_space)
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    report = journal.close("clean", NOW + 1)
    monkeypatch.undo()
    forget_pid(state)
    return report


def test_when_even_the_recovery_file_fails_the_records_go_to_stderr(tmp_path, monkeypatch, capsys):
    state, spare = tmp_path / "state", tmp_path / "spare"
    spare.mkdir()
    report = close_with_full_disks(state, spare, monkeypatch, spare_full=True)
    assert report.unwritten == 1 and report.recovery_file is None and report.exit_recorded
    header, line = capsys.readouterr().err.splitlines()
    assert "1 records could not be written" in header and "No space left" in header
    assert json.loads(line)["data"]["order_id"] == "q1"
    assert status(state, NOW + 2)["exit_note"] == "clean, 1 records not journaled"


def close_with_the_state_disk_full(tmp_path: Path, monkeypatch) -> tuple[Path, CloseReport]:
    """The recovery file goes to the temp directory (`spare`) when the state dir's disk is full."""
    state, spare = tmp_path / "state", tmp_path / "spare"
    spare.mkdir()
    report = close_with_full_disks(state, spare, monkeypatch, spare_full=False)
    assert report.recovery_file is not None and report.recovery_file.parent == spare
    return state, report


def test_when_the_state_dirs_disk_is_full_the_recovery_file_goes_to_the_temp_dir(
    tmp_path, monkeypatch, capsys
):
    state, report = close_with_the_state_disk_full(tmp_path, monkeypatch)
    assert report.recovery_file is not None
    (line,) = report.recovery_file.read_text().splitlines()
    assert json.loads(line)["data"]["order_id"] == "q1"
    assert f"move it into {state}" in capsys.readouterr().err
    # the next session will not start without those records (it would count the fill twice
    # once the file is moved in)...
    with pytest.raises(JournalError, match=f"left 1 records in {report.recovery_file.name}"):
        Journal(state, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2)
    # ... until the operator moves the file back: then it is imported
    report.recovery_file.rename(state / report.recovery_file.name)
    again = Journal(state, venue="sim", symbol="BTC-PERP", started_ns=NOW + 3)
    assert again.recovered.position_base == pytest.approx(0.001)
    again.close("clean", NOW + 4)


def test_starting_without_a_missing_recovery_file_means_it_is_never_imported_later(
    tmp_path, monkeypatch
):
    state, report = close_with_the_state_disk_full(tmp_path, monkeypatch)
    adopted = Journal(state, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2, adopt=True)
    assert adopted.recovered.position_base == 0.0
    adopted.close("clean", NOW + 3)
    assert report.recovery_file is not None
    report.recovery_file.rename(state / report.recovery_file.name)  # moved in too late
    forget_pid(state)
    assert recover(state, NOW + 4).position_base == 0.0
    later = Journal(state, venue="sim", symbol="BTC-PERP", started_ns=NOW + 5)
    assert later.recovered.position_base == 0.0
    later.close("clean", NOW + 6)
