"""The journal: what goes in comes back, and a restart rebuilds the account from it."""

import os
import sqlite3

import pytest

from engine.events import Fill, Side
from engine.journal import JOURNAL_FILE, Journal, recover, status

DAY = 86_400 * 1_000_000_000
NOW = 20_000 * DAY + 3_600 * 1_000_000_000  # 01:00 UTC on some day


def fill(order_id: str, side: Side, price: float, size: float, leaves: float = 0.0) -> Fill:
    return Fill(
        0,
        order_id,
        side,
        price,
        size,
        fee_usd=-size * price * 0.00025,
        is_maker=True,
        leaves_base=leaves,
    )


def test_fills_and_marks_rebuild_position_and_pnl_exactly(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.append("order_sent", NOW, {"order_id": "q1"})
    journal.fill(NOW + 1, fill("q1", Side.BUY, 99_975.0, 0.002), mid=100_000.0)
    journal.mark(NOW + 2, 99_000.0)
    journal.close("clean", NOW + 3)
    rec = recover(tmp_path, NOW + 4)
    assert rec.position_base == pytest.approx(0.002)
    terms = rec.ledger.terms()
    assert terms.spread_usd == pytest.approx(0.05)  # 0.002 * $25
    assert terms.inventory_usd == pytest.approx(-2.0)  # 0.002 * -$1,000
    assert rec.open_orders == {}
    assert rec.last_exit == "clean"
    assert rec.ledger.equity(99_000.0) == rec.ledger.net


def test_day_pnl_counts_only_today(tmp_path):
    yesterday = NOW - DAY
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=yesterday)
    journal.fill(yesterday, fill("q1", Side.BUY, 100_000.0, 0.01), mid=100_000.0)
    journal.mark(yesterday + 1, 99_000.0)  # -$10 yesterday
    journal.mark(NOW, 98_000.0)  # -$10 more today
    journal.close("clean", NOW)
    rec = recover(tmp_path, NOW + 5)
    assert rec.ledger.net_usd_at(98_000.0) == pytest.approx(-20.0 + 0.25)  # + the rebate
    assert rec.day_pnl_usd() == pytest.approx(-10.0)


def test_the_kill_state_survives_until_a_resume_is_journaled(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.append("state", NOW, {"state": "KILLED", "reason": "daily loss limit"})
    journal.close("signal", NOW + 1)
    rec = recover(tmp_path, NOW + 2)
    assert rec.killed and rec.kill_reason == "daily loss limit"
    assert rec.last_exit == "signal"
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 3)
    journal.append("state", NOW + 4, {"state": "QUOTING", "reason": "operator resume"})
    journal.close("clean", NOW + 5)
    assert not recover(tmp_path, NOW + 6).killed


def test_a_session_that_never_closed_reads_as_a_crash(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.append("order_sent", NOW, {"order_id": "q7"})
    journal._halt()  # stop as a kill -9 would, without closing
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    conn.execute("UPDATE sessions SET pid = ?", (2**22 + 12345,))  # a pid that is not running
    conn.commit()
    conn.close()
    report = status(tmp_path, NOW + 1)
    assert report["last_exit"] == "crash"
    assert report["resting_orders"] == 1
    assert os.path.exists(tmp_path / JOURNAL_FILE)


def test_status_of_an_empty_state_dir(tmp_path):
    report = status(tmp_path, NOW)
    assert report["last_exit"] is None
    assert report["position_base"] == 0.0
    assert report["killed"] is False
    assert report["resting_orders"] == 0


def test_a_second_session_on_the_same_state_dir_is_refused(tmp_path):
    from engine.journal import JournalError

    first = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    with pytest.raises(JournalError, match=f"in use by perpdesk pid {os.getpid()}"):
        Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    first.close("clean", NOW + 1)
    Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 2).close("clean", NOW + 3)


def test_fills_are_on_disk_when_append_returns(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    journal.fill(NOW, fill("q1", Side.BUY, 100_000.0, 0.001), mid=100_000.0)
    rows = sqlite3.connect(tmp_path / JOURNAL_FILE).execute("SELECT kind FROM records").fetchall()
    assert rows == [("fill",)]
    journal.close("clean", NOW + 1)


def test_what_the_journal_recovered_is_the_engines_own_not_the_writers(tmp_path):
    first = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW)
    first.fill(NOW + 1, fill("q1", Side.BUY, 99_975.0, 0.002), mid=100_000.0)
    first.close("clean", NOW + 2)
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=NOW + 3)
    ledger = journal.recovered.ledger
    assert ledger.position_base == pytest.approx(0.002) and ledger.fills == 1
    # the writer thread keeps folding what this session commits; the engine's copy must not move
    journal.fill(NOW + 4, fill("q2", Side.BUY, 99_975.0, 0.003), mid=100_000.0)
    journal.close("clean", NOW + 5)
    assert ledger.position_base == pytest.approx(0.002) and ledger.fills == 1
    assert recover(tmp_path, NOW + 6).position_base == pytest.approx(0.005)
