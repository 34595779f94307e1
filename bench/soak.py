"""Soak: one simulated hour of a journaled live session with every fault injected, at full speed.

Run `python bench/soak.py [--hours H]`. The real live engine, journal and embedded exchange run
on a fake clock as fast as the CPU allows, with order rejects, refused cancels, latency spikes
and feed gaps all switched on. Prints the resident memory every ten simulated minutes, its
growth after warm-up (target: flat, under 20 MB), and whether every invariant held: the P&L
identity, the core's position equal to the venue's, no engine error, nothing resting after the
kill switch, and the journal's recovery equal to the venue's account.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import Settings
from engine.events import Kill
from engine.journal import recover
from engine.session import open_engine

S = 1_000_000_000
WALL0 = 1_764_000_000 * S
FAULTS = {
    "reject_rate": 0.05,
    "cancel_fail_rate": 0.1,
    "latency_ms": 20.0,
    "latency_spike_rate": 0.02,
    "latency_spike_ms": 2000.0,
    "feed_gap_rate_per_hour": 6.0,
    "feed_gap_s": 10.0,
}


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    elapsed = [0]
    settings = Settings.model_validate({"sim": {"speed": 1.0, **FAULTS}})
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as state:
        engine = open_engine(
            settings, Path(state), wall_ns=lambda: WALL0 + elapsed[0], clock=lambda: elapsed[0]
        )
        step_ns = S // 20
        total = round(args.hours * 3600 * S)
        samples: list[tuple[float, float]] = []
        started = time.perf_counter()
        while elapsed[0] < total:
            elapsed[0] += step_ns
            engine.pump()
            if elapsed[0] % (600 * S) == 0:
                samples.append((elapsed[0] / 60 / S, rss_mb()))
                ledger = engine.quoter.ledger
                mid = engine.quoter.book.mid
                if mid is not None:
                    ledger.mark(mid)
                    if ledger.equity(mid) != ledger.net:
                        failures.append(f"P&L identity broken at {elapsed[0] / S:.0f} s")
                if abs(engine.quoter.position_base - engine.market.position_base) > 1e-12:
                    failures.append(f"core and venue positions differ at {elapsed[0] / S:.0f} s")
        wall_s = time.perf_counter() - started
        if engine.errors:
            failures.append(f"{engine.errors} engine errors, last: {engine.last_error}")
        engine.send(Kill())
        for _ in range(200):
            elapsed[0] += step_ns
            engine.pump()
        if engine.market.resting_orders():
            failures.append(f"{len(engine.market.resting_orders())} orders resting after kill")
        venue_position = engine.market.position_base
        engine.finish("clean")
        rec = recover(Path(state), WALL0 + elapsed[0])
        if abs(rec.position_base - venue_position) > 1e-12:
            failures.append("the journal's position differs from the venue's")
        counts = dict(sorted(engine.quoter.alert_counts.items()))
        fills = engine.quoter.ledger.fills

    print(f"soak: {args.hours:g} simulated hours with faults {FAULTS}")
    print(
        f"wall time        {wall_s:.1f} s ({args.hours * 3600 / wall_s:,.0f}x real time), "
        f"{engine.events_total:,} venue events, {fills:,} fills"
    )
    for minute, mb in samples:
        print(f"  t={minute:5.0f} min  rss {mb:7.1f} MB")
    if len(samples) >= 2:
        growth = samples[-1][1] - samples[0][1]
        print(f"memory growth    {growth:+.1f} MB after the first 10 minutes (target: < 20 MB)")
    print(f"alerts           {counts}")
    print("invariants       " + ("all held" if not failures else "BROKEN: " + "; ".join(failures)))


if __name__ == "__main__":
    main()
