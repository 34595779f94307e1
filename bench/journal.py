"""Benchmark: the journal's append throughput, and `status` on a 100k-record journal.

Run `python bench/journal.py [records]`. Builds the journal in a temporary directory through the
real `Journal` (a mark a second, quotes sent, cancelled and done, fills, alerts, a kill and a
resume), then times `status()` (which folds from the newest checkpoint) against a full replay.
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine.journal.writer
from engine.events import Fill, Side
from engine.journal import DURABLE, Journal, recover, status

NS = 1_000_000_000
START = 20_000 * 86_400 * NS + 9 * 3_600 * NS  # 09:00 UTC
RECORDS = 100_000
SESSIONS = 4


def build(state_dir: Path, records: int, fsync: bool) -> tuple[int, int, float, float, int]:
    """Write `records` records over a few sessions; (durable, other, their append seconds,
    failures the journal flagged)."""
    # A loop that does nothing but append is blocked most of the time by construction: the
    # journal would flag it ("appends blocked more than a quarter of the last 10 s") and
    # durable appends would stop waiting for their commit, which is what is measured here.
    engine.journal.writer._BLOCKED_SHARE = 2.0
    failures = 0
    rng = random.Random(7)
    mid = 100_000.0
    ts = START
    written = durable = 0
    t_durable = t_other = 0.0
    order = 0
    per_session = records // SESSIONS + 1
    for _ in range(SESSIONS):
        journal = Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=ts, fsync=fsync)
        in_session = 0
        while in_session < per_session and written < records:
            ts += NS
            mid = round(max(1_000.0, mid + rng.gauss(0, 15)), 1)
            batch: list[tuple[str, dict]] = [("mark", {"mid": mid})]
            if rng.random() < 0.25:  # a quote refresh: cancel the old one, send a new one
                order += 1
                batch.append(("cancel_sent", {"order_id": f"q{order - 1}"}))
                batch.append(("order_done", {"order_id": f"q{order - 1}", "why": "OrderCanceled"}))
                side = rng.choice((1, -1))
                price = round(mid - side * 5.0, 1)
                batch.append((
                    "order_sent",
                    {"order_id": f"q{order}", "kind": "quote", "side": side, "price": price,
                     "size_base": 0.006},
                ))  # fmt: skip
            if rng.random() < 0.04:
                side = rng.choice((Side.BUY, Side.SELL))
                fill = Fill(0, f"q{order}", side, round(mid - side * 5.0, 1), 0.006,
                            fee_usd=-0.15, is_maker=True)  # fmt: skip
                batch.append(("fill", {
                    "order_id": fill.order_id, "side": int(fill.side), "price": fill.price,
                    "size_base": fill.size_base, "fee_usd": fill.fee_usd,
                    "is_maker": fill.is_maker, "leaves_base": 0.0, "mid": mid,
                }))  # fmt: skip
            if rng.random() < 0.01:
                batch.append((
                    "alert",
                    {"severity": "warning", "control": "volatility", "message": "vol 41 bps",
                     "value": 41.0, "threshold": 40.0},
                ))  # fmt: skip
            if rng.random() < 0.0005:
                batch.append(("state", {"state": "KILLED", "reason": "drill"}))
                batch.append(("state", {"state": "QUOTING", "reason": "operator resume"}))
            for kind, data in batch:
                if written >= records:
                    break
                t0 = time.perf_counter()
                journal.append(kind, ts, data)
                spent = time.perf_counter() - t0
                if kind in DURABLE:
                    durable += 1
                    t_durable += spent
                else:
                    t_other += spent
                written += 1
                in_session += 1
        journal.close("clean", ts)
        failures += journal.failure_count
    return durable, written - durable, t_durable, t_other, failures


def best_of(repeats: int, call) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def crash_after(state_dir: Path, ts: int, marks: int) -> None:
    """A session that journals `marks` marks and is killed: no final checkpoint."""
    journal = Journal(state_dir, venue="sim", symbol="BTC-PERP", started_ns=ts)
    for i in range(marks):
        journal.mark(ts + i * NS, 100_000.0 + i % 50)
    journal._halt()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    records = int(args[0]) if args else RECORDS
    fsync = "--fsync" in sys.argv
    print(f"synchronous={'FULL (--fsync)' if fsync else 'NORMAL'}")
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        t0 = time.perf_counter()
        durable, other, t_durable, t_other, failures = build(state_dir, records, fsync)
        total = time.perf_counter() - t0
        size_mb = (state_dir / "journal.sqlite").stat().st_size / 1e6
        print(f"built {records:,} records in {SESSIONS} sessions in {total:.1f} s "
              f"(journal {size_mb:.1f} MB)")  # fmt: skip
        print(f"append, other kinds:   {other / t_other:>9,.0f} records/s "
              f"({t_other / other * 1e6:.1f} us each, {other:,} records)")  # fmt: skip
        print(f"append, durable kinds: {durable / t_durable:>9,.0f} records/s "
              f"({t_durable / durable * 1e6:.0f} us each, commit included; "
              f"{durable:,} records)")  # fmt: skip
        print(f"journal failures flagged while building: {failures}")
        now = START + 3 * 86_400 * NS
        rec = recover(state_dir, now)
        full_rec = recover(state_dir, now, use_checkpoint=False)
        assert rec.ledger.net == full_rec.ledger.net, "checkpoint and replay disagree"
        t_status = best_of(5, lambda: status(state_dir, now))
        t_full = best_of(2, lambda: recover(state_dir, now, use_checkpoint=False))
        print(f"status() from the newest checkpoint: {t_status * 1e3:7.1f} ms "
              f"({rec.replayed:,} records folded; target < 300 ms)")  # fmt: skip
        print(f"full replay:                         {t_full * 1e3:7.1f} ms "
              f"({full_rec.replayed:,} records folded)")  # fmt: skip
        print(f"full replay / status: {t_full / t_status:.0f}x")
        crash_after(state_dir, now - 86_400 * NS, 1_999)
        rec = recover(state_dir, now)
        t_crash = best_of(5, lambda: status(state_dir, now))
        print(f"status() after a crash:              {t_crash * 1e3:7.1f} ms "
              f"({rec.replayed:,} records past the newest checkpoint)")  # fmt: skip


if __name__ == "__main__":
    main()
