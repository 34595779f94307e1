"""A bad state directory is a one-line error naming the file and the problem, never a traceback
or a silent fresh start; one session per directory; files readable by their owner only."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from engine.events import Fill, Side
from engine.journal import (
    JOURNAL_FILE,
    LOCK_FILE,
    SCHEMA_VERSION,
    Journal,
    JournalError,
    default_state_dir,
    recover,
    status,
)

DAY = 86_400 * 1_000_000_000
NOW = 20_000 * DAY + 3_600 * 1_000_000_000
GOOD_FILL = {
    "order_id": "q9",
    "side": 1,
    "price": 100_000.0,
    "size_base": 0.001,
    "fee_usd": -0.025,
    "is_maker": True,
    "leaves_base": 0.0,
    "mid": 100_000.0,
}


def journal_with_a_fill(state_dir: Path) -> None:
    journal = Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.fill(NOW, Fill(0, "q1", Side.BUY, 100_000.0, 0.001, -0.025, True), mid=100_000.0)
    journal.mark(NOW + 1, 100_000.0)
    journal.close("clean", NOW + 2)


def append_raw(state_dir: Path, kind: str, data: str) -> int:
    """A row as a bug, a disk or a hand would leave it, after the newest checkpoint."""
    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    (seq,) = conn.execute("SELECT MAX(seq) + 1 FROM records").fetchone()
    conn.execute(
        "INSERT INTO records (seq, session, ts_ns, kind, data) VALUES (?, 1, ?, ?, ?)",
        (seq, NOW + 5, kind, data),
    )
    conn.commit()
    conn.close()
    return int(seq)


def one_line_error(state_dir: Path) -> str:
    """recover, status and a new session all refuse, with the same one-line message."""
    messages = []
    for call in (
        lambda: recover(state_dir, NOW + 10),
        lambda: status(state_dir, NOW + 10),
        lambda: Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=NOW + 10),
    ):
        with pytest.raises(JournalError) as err:
            call()
        messages.append(str(err.value))
    for message in messages:
        assert "\n" not in message
        assert str(state_dir / JOURNAL_FILE) in message
    assert messages[0] == messages[1]
    return messages[0]


def bad_fill(**change: object) -> str:
    data = {**GOOD_FILL, **change}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("fill", '{"order_id": "q9", "side": 1, "price"', "data is not JSON"),
        ("fill", bad_fill(price=...), "price is missing"),
        ("fill", bad_fill(side=0), "side 0 is not 1 (buy) or -1 (sell)"),
        ("fill", bad_fill(side=True), "side True is not 1 (buy) or -1 (sell)"),
        ("fill", bad_fill(price=float("nan")), "price nan is not a number in (0, 1e9)"),
        ("fill", bad_fill(size_base=1.7e308), "size_base 1.7e+308 is not a number in (0, 1e6)"),
        ("fill", bad_fill(fee_usd=1e308), "fee_usd 1e+308 is not a number in (-1e7, 1e7)"),
        ("fill", bad_fill(size_base=10**400), "size_base 1000000000"),
        ("fill", bad_fill(is_maker=1), "is_maker 1 is not true or false"),
        ("fill", bad_fill(leaves_base=-1), "leaves_base -1 is not a number in [0, 1e6)"),
        ("mark", '{"mid": -5}', "mid -5 is not a number in (0, 1e9)"),
        ("mark", "[100000.0]", "data [100000.0] is not a JSON object"),
        ("funding", '{"rate": 0.5, "mark_price": 1.0}', "rate 0.5 is not a number"),
        ("order_sent", '{"id": "q1"}', "order_id is missing"),
        ("state", '{"state": 7}', "state 7 is not text"),
    ],
)
def test_a_bad_record_is_a_one_line_error_naming_it(tmp_path, kind, text, problem):
    journal_with_a_fill(tmp_path)
    seq = append_raw(tmp_path, kind, text)
    message = one_line_error(tmp_path)
    assert f"record {seq} ({kind}): " in message
    assert problem in message


def test_an_unknown_kind_is_ignored_but_a_bad_timestamp_is_not(tmp_path):
    journal_with_a_fill(tmp_path)
    append_raw(tmp_path, "from_the_future", "not even json")
    assert recover(tmp_path, NOW + 10).ledger.fills == 1
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    conn.execute("UPDATE records SET ts_ns = 'yesterday' WHERE kind = 'from_the_future'")
    conn.commit()
    conn.close()
    assert "ts_ns 'yesterday' is not an integer" in one_line_error(tmp_path)


def test_a_write_ahead_log_without_its_journal_is_refused(tmp_path):
    (tmp_path / f"{JOURNAL_FILE}-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 60)
    message = one_line_error(tmp_path)
    assert "is missing but its write-ahead log journal.sqlite-wal is there" in message
    assert not (tmp_path / JOURNAL_FILE).exists()  # nothing was created in its place


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    (tmp_path / JOURNAL_FILE).write_bytes(b"these are not the pages you are looking for\n" * 200)
    assert "file is not a database" in one_line_error(tmp_path)


def test_a_journal_from_a_newer_perpdesk_is_refused(tmp_path):
    journal_with_a_fill(tmp_path)
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    message = one_line_error(tmp_path)
    assert f"schema version {SCHEMA_VERSION + 1} is newer than this perpdesk knows" in message


def test_a_journal_of_another_account_is_not_carried_on_unless_adopted(tmp_path):
    account = "0xabcdef0123456789abcdef0123456789abcd6789"
    first = Journal(
        tmp_path, venue="hyperliquid", symbol="ETH-PERP", started_ns=NOW, account=account
    )
    first.close("clean", NOW + 1)
    with pytest.raises(JournalError) as err:
        Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2)
    assert str(err.value) == (
        f"journal {tmp_path / JOURNAL_FILE} belongs to hyperliquid ETH-PERP (account "
        "0xabcd..6789), not sim BTC-PERP; pass --adopt-journal to carry it on anyway"
    )
    with pytest.raises(JournalError, match="belongs to hyperliquid ETH-PERP"):
        Journal(tmp_path, venue="hyperliquid", symbol="ETH-PERP", started_ns=NOW + 2)  # no account
    adopted = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 3, adopt=True)
    adopted.close("clean", NOW + 4)
    Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 5).close("clean", NOW + 6)
    report = status(tmp_path, NOW + 7)
    assert (report["venue"], report["symbol"], report["account"]) == ("sim", "BTC-PERP", "")
    assert report["sessions"] == 3


OLD_SCHEMA = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL, ended_ns INTEGER,
    exit TEXT, pid INTEGER NOT NULL, venue TEXT NOT NULL, symbol TEXT NOT NULL);
CREATE TABLE records (seq INTEGER PRIMARY KEY, session INTEGER NOT NULL, ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX records_kind ON records (kind, seq);
"""


def test_a_journal_of_the_first_release_is_read_and_migrated_in_place(tmp_path):
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OLD_SCHEMA)
    conn.execute(
        "INSERT INTO sessions VALUES (1, ?, ?, 'clean', 4194999, 'sim', 'BTC-PERP')", (NOW, NOW + 9)
    )
    conn.execute(
        "INSERT INTO records VALUES (1, 1, ?, 'fill', ?)", (NOW + 1, json.dumps(GOOD_FILL))
    )
    conn.commit()
    conn.close()
    before = status(tmp_path, NOW + 10)  # read-only: no migration
    assert before["position_base"] == 0.001 and before["last_exit"] == "clean"
    assert before["venue"] == "sim"
    with pytest.raises(JournalError, match="belongs to sim BTC-PERP, not sim ETH-PERP"):
        Journal(tmp_path, venue="sim", symbol="ETH-PERP", started_ns=NOW + 10)
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 10)
    assert journal.recovered.position_base == 0.001
    journal.close("clean", NOW + 11)
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()
    assert status(tmp_path, NOW + 12)["sessions"] == 2


def test_deleting_the_lock_file_does_not_let_a_second_session_in(tmp_path):
    first = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
    (tmp_path / LOCK_FILE).unlink()
    with pytest.raises(JournalError, match="is in use by perpdesk pid"):
        Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 1)
    first.close("clean", NOW + 2)
    Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 3).close("clean", NOW + 4)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_state_directory_and_the_journal_are_private(tmp_path):
    state_dir = tmp_path / "new" / "state"
    old_umask = os.umask(0o022)
    try:
        journal = Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=NOW)
        journal.mark(NOW, 100_000.0)
        assert mode(state_dir) == 0o700
        for name in (JOURNAL_FILE, f"{JOURNAL_FILE}-wal", f"{JOURNAL_FILE}-shm", LOCK_FILE):
            assert mode(state_dir / name) == 0o600, name
        journal.close("clean", NOW + 1)
        os.chmod(state_dir / JOURNAL_FILE, 0o644)  # a file someone opened up
        Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2).close(
            "clean", NOW + 3
        )
        assert mode(state_dir) == 0o700
        assert mode(state_dir / JOURNAL_FILE) == 0o600
    finally:
        os.umask(old_umask)


@pytest.mark.parametrize("shared_mode", [0o755, 0o770, 0o1777])
def test_an_existing_directory_others_can_use_is_refused_not_chmodded(tmp_path, shared_mode):
    shared = tmp_path / "shared"  # `--state-dir .`, a team directory, /tmp
    shared.mkdir()
    os.chmod(shared, shared_mode)
    with pytest.raises(JournalError) as err:
        Journal(shared, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    message = str(err.value)
    assert "\n" not in message
    assert f"chmod 700 {shared}" in message and "another --state-dir" in message
    assert mode(shared) == shared_mode  # untouched
    assert not (shared / JOURNAL_FILE).exists()
    os.chmod(shared, 0o700)  # what the operator does
    Journal(shared, venue="sim", symbol="BTC-PERP", started_ns=NOW).close("clean", NOW + 1)
    assert mode(shared / JOURNAL_FILE) == 0o600


def test_an_existing_private_directory_is_left_as_it_is(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    os.chmod(state_dir, 0o711)  # others may pass through, not read or write
    Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=NOW).close("clean", NOW + 1)
    assert mode(state_dir) == 0o711
    assert mode(state_dir / JOURNAL_FILE) == 0o600


def test_the_default_state_directory_is_ours_and_made_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state_dir = default_state_dir()
    state_dir.mkdir(parents=True)
    os.chmod(state_dir, 0o755)
    Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=NOW).close("clean", NOW + 1)
    assert mode(state_dir) == 0o700
    assert mode(state_dir / JOURNAL_FILE) == 0o600


def test_a_state_directory_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(JournalError) as err:
        Journal(tmp_path / "file" / "state", venue="sim", symbol="BTC-PERP", started_ns=NOW)
    assert "\n" not in str(err.value)
    assert str(tmp_path / "file" / "state") in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_state_directory_is_one_line(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o500)
    try:
        with pytest.raises(JournalError) as err:
            Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=NOW)
        assert "\n" not in str(err.value) and str(state_dir) in str(err.value)
    finally:
        os.chmod(state_dir, 0o700)


def test_status_creates_nothing(tmp_path):
    state_dir = tmp_path / "nothing-here"
    report = status(state_dir, NOW)
    assert report["sessions"] == 0 and report["venue"] is None
    assert not state_dir.exists()
    state_dir.mkdir()
    status(state_dir, NOW)
    assert list(state_dir.iterdir()) == []


def test_a_bad_recovery_file_names_its_line(tmp_path):
    journal_with_a_fill(tmp_path)
    path = tmp_path / f"recovery-1-{NOW + 3}.jsonl"
    good = {"session": 1, "ts_ns": NOW + 3, "kind": "mark", "data": {"mid": 100_100.0}}
    bad = {**good, "data": {"mid": "a lot"}}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(JournalError) as err:
        recover(tmp_path, NOW + 10)
    assert str(err.value) == (
        f"recovery file {path}: line 2 (mark): mid 'a lot' is not a number in (0, 1e9)"
    )
    with pytest.raises(JournalError, match="line 2"):
        Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 10)
    assert path.exists()  # not imported
