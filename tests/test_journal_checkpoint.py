"""Checkpoints: recovery from the newest one equals a full replay, exactly, for any `now`."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.journal import (
    JOURNAL_FILE,
    Journal,
    JournalError,
    Recovered,
    _Fold,
    iter_records,
    ledger_from_state,
    ledger_state,
    recover,
)

DAY = 86_400 * 1_000_000_000
HOUR = 3_600 * 1_000_000_000
BASE = 20_000 * DAY

prices = st.integers(950_000, 1_050_000).map(lambda x: x / 10)
sizes = st.integers(1, 50).map(lambda x: x / 1000)
order_ids = st.sampled_from(["q1", "q2", "q3", "h1"])
fills = st.fixed_dictionaries({
    "order_id": order_ids,
    "side": st.sampled_from([1, -1]),
    "price": prices,
    "size_base": sizes,
    "fee_usd": st.integers(-300, 300).map(lambda x: x / 100),
    "is_maker": st.booleans(),
    "leaves_base": st.sampled_from([0.0, 0.0, 0.001]),
    "mid": st.one_of(st.none(), prices),
})  # fmt: skip
records = st.one_of(
    st.tuples(st.just("fill"), fills),
    st.tuples(st.just("mark"), st.fixed_dictionaries({"mid": prices})),
    st.tuples(
        st.just("funding"),
        st.fixed_dictionaries(
            {
                "rate": st.integers(-100, 100).map(lambda x: x / 1e6),
                "mark_price": prices,
            }
        ),
    ),
    st.tuples(st.just("order_sent"), st.fixed_dictionaries({"order_id": order_ids})),
    st.tuples(st.just("order_done"), st.fixed_dictionaries({"order_id": order_ids})),
    st.tuples(st.just("cancel_all_done"), st.just({})),
    st.tuples(
        st.just("state"),
        st.fixed_dictionaries(
            {
                "state": st.sampled_from(["KILLED", "QUOTING"]),
                "reason": st.sampled_from(["daily loss limit", ""]),
            }
        ),
    ),
    st.tuples(st.just("alert"), st.just({"severity": "info", "control": "x", "message": "m"})),
    st.tuples(st.just("something_newer"), st.just({"x": 1})),
)
# ts: mostly forward over three days, sometimes back (clocks do that)
steps = st.integers(-6 * HOUR, 20 * HOUR)


def exact_state(rec: Recovered) -> dict[str, Any]:
    return {
        "ledger": ledger_state(rec.ledger),
        "floats": (rec.ledger.position_base, rec.ledger.net_usd_at(rec.last_mid)),
        "day_start_net_usd": rec.day_start_net_usd,
        "day_pnl": rec.day_pnl_usd(),
        "killed": (rec.killed, rec.kill_reason),
        "open_orders": rec.open_orders,
        "last_mid": rec.last_mid,
    }


def write_sessions(
    state_dir: Path, sessions: list[list[tuple[str, dict[str, Any], int]]], every: int
) -> None:
    ts = BASE
    for number, session in enumerate(sessions):
        journal = Journal(
            state_dir, venue="sim", symbol="BTC-PERP", started_ns=ts, checkpoint_every=every
        )
        for kind, data, step in session:
            ts = max(0, ts + step)
            journal.append(kind, ts, data)
        journal.close("clean" if number % 2 else "signal", ts)


def set_checkpoint(state_dir: Path, position: int) -> None:
    """Replace every checkpoint with one after `position` records, folded as the writer does."""
    fold = _Fold()
    rows = list(iter_records(state_dir))[:position]
    for _, session, ts, kind, text in rows:
        data = json.loads(text)
        fold.apply(session, ts, kind, data if kind != "something_newer" else None)
    conn = sqlite3.connect(state_dir / JOURNAL_FILE)
    conn.execute("DELETE FROM checkpoints")
    if rows and fold.max_ts is not None:
        conn.execute(
            "INSERT INTO checkpoints (seq, session, data) VALUES (?, 1, ?)",
            (rows[-1][0], fold.to_json()),
        )
    conn.commit()
    conn.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    sessions=st.lists(
        st.lists(st.builds(lambda r, s: (r[0], r[1], s), records, steps), max_size=25),
        min_size=1,
        max_size=3,
    ),
    every=st.integers(1, 12),
    position=st.integers(0, 80),
    now_offset=st.integers(-2 * DAY, 5 * DAY),
)
def test_recovery_from_a_checkpoint_equals_a_full_replay(sessions, every, position, now_offset):
    now = BASE + now_offset
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        write_sessions(state_dir, sessions, every)
        full = exact_state(recover(state_dir, now, use_checkpoint=False))
        # the checkpoints the writer thread wrote
        assert exact_state(recover(state_dir, now)) == full
        # a checkpoint at any position
        set_checkpoint(state_dir, position)
        assert exact_state(recover(state_dir, now)) == full


def test_the_ledger_survives_its_text_form_exactly():
    journal_dir = Path(tempfile.mkdtemp())
    journal = Journal(journal_dir, venue="sim", symbol="BTC-PERP", started_ns=BASE)
    journal.append("mark", BASE, {"mid": 99_995.7})
    journal.close("clean", BASE + 1)
    ledger = recover(journal_dir, BASE).ledger
    ledger.on_fill(side=1, price=99_990.1, size_base=0.003, fee_usd=-0.07, is_maker=True, mid=None)  # type: ignore[arg-type]
    ledger.on_funding(rate=0.0001, mark_price=99_991.3)
    copy = ledger_from_state(json.loads(json.dumps(ledger_state(ledger))))
    for name in ("cash", "position", "spread", "rebates", "inventory", "hedge", "funding", "_mark"):
        assert getattr(copy, name) == getattr(ledger, name), name
    assert copy.net_usd_at(100_000.0) == ledger.net_usd_at(100_000.0)
    assert copy.terms() == ledger.terms()
    assert (copy.fees_paid_usd, copy.volume_usd, copy.fills) == (
        ledger.fees_paid_usd,
        ledger.volume_usd,
        ledger.fills,
    )


def test_recovery_does_not_read_the_rows_a_checkpoint_covers(tmp_path):
    journal = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=BASE, checkpoint_every=10
    )
    for i in range(60):
        journal.append("order_sent", BASE + i, {"order_id": f"q{i}"})
        journal.mark(BASE + i, 100_000.0 + i)
    journal.close("clean", BASE + 100)
    expected = exact_state(recover(tmp_path, BASE + 200))
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    (checkpoint_seq,) = conn.execute("SELECT MAX(seq) FROM checkpoints").fetchone()
    assert checkpoint_seq == 120  # the final checkpoint covers every record
    conn.execute("UPDATE records SET data = 'rotten' WHERE seq = 3")
    conn.commit()
    conn.close()
    assert exact_state(recover(tmp_path, BASE + 200)) == expected
    with pytest.raises(JournalError, match=r"record 3 \(order_sent\): data is not JSON"):
        recover(tmp_path, BASE + 200, use_checkpoint=False)


def test_a_bad_checkpoint_is_ignored_for_a_full_replay(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=BASE)
    journal.append("order_sent", BASE, {"order_id": "q1"})
    journal.mark(BASE + 1, 100_000.0)
    journal.close("clean", BASE + 2)
    expected = exact_state(recover(tmp_path, BASE + 3))
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    for rotten in ('{"version": 1, "ledger": {"cash": "1/0"}}', "{]", '{"version": 99}'):
        conn.execute("UPDATE checkpoints SET data = ?", (rotten,))
        conn.commit()
        assert exact_state(recover(tmp_path, BASE + 3)) == expected
    conn.close()


def test_a_journal_without_checkpoints_gets_one_at_the_next_session(tmp_path):
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=BASE)
    for i in range(30):
        journal.mark(BASE + i, 100_000.0 + i)
    journal.close("clean", BASE + 100)
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    conn.execute("DELETE FROM checkpoints")  # as a journal of the first release
    conn.commit()
    assert recover(tmp_path, BASE + 101).replayed == 30
    again = Journal(
        tmp_path, venue="sim", symbol="BTC-PERP", started_ns=BASE + 101, checkpoint_every=20
    )
    again.mark(BASE + 102, 100_500.0)
    again.close("clean", BASE + 103)
    assert recover(tmp_path, BASE + 104).replayed == 0
    conn.close()
