"""Soak: one simulated hour of a journaled live session with every fault injected, at full speed.

Run `python bench/soak.py [--hours H] [--spike-ms MS]`. The real live engine, journal and
embedded exchange run on a fake clock as fast as the CPU allows, on a busy configuration
($600 quotes at 2 bps in the volatile regime: over 500 fills an hour), with order rejects,
refused cancels, latency and latency spikes and feed gaps all switched on, and a phantom fill
injected every ten minutes. Prints the resident memory every ten simulated minutes and
checks, all the way through:

- the P&L identity (exact), and the core's position equal to the venue's;
- never more than one quote a side at the venue or in the core, counting orders in flight,
  and never a bid of ours at or above an ask of ours;
- the rate budget: no sliding window holds more calls than the limit (cancel-alls, the
  cancels of last resort, excepted);
- every phantom fill refused, never booked;
- no engine error; nothing resting after the kill switch; the journal's recovery equal to the
  venue's account;
- at least 500 fills, and memory growth after the first ten minutes under 10 MB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import Settings
from engine.events import CancelAll, Fill, Kill, Side
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
BUSY = {"quote_size_usd": 600.0, "base_spread_bps": 2.0}
MARKET = {"regime": "volatile"}
MIN_FILLS = 500
MAX_GROWTH_MB = 10.0


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 1e6


class Watch:
    """Every action the engine sends, checked against the rate budget as it goes."""

    def __init__(self, venue, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_ns = round(window_s * S)
        self.calls: deque[int] = deque()
        self.most = 0
        self._venue = venue
        self._submit = venue.submit
        venue.submit = self.submit

    def submit(self, action, now_ns: int) -> None:
        if not isinstance(action, CancelAll):
            calls = self.calls
            calls.append(now_ns)
            while calls[0] <= now_ns - self.window_ns:
                calls.popleft()
            self.most = max(self.most, len(calls))
        self._submit(action, now_ns)


def check_quotes(engine, failures: list[str], at_s: float) -> None:
    resting = engine.market.resting_orders()
    for side in (Side.BUY, Side.SELL):
        n = sum(1 for _, s, *_ in resting if s is side)
        if n > 1:
            failures.append(f"{n} {side.name} quotes resting at {at_s:.1f} s")
    quotes = [o for o in engine.quoter.working_orders() if not o.is_hedge]
    for side in (Side.BUY, Side.SELL):
        n = sum(1 for o in quotes if o.side is side)
        if n > 1:
            failures.append(f"{n} {side.name} quotes working in the core at {at_s:.1f} s")
    bids = [o.price for o in quotes if o.side is Side.BUY]
    asks = [o.price for o in quotes if o.side is Side.SELL]
    if bids and asks and max(bids) >= min(asks):
        failures.append(f"our bid {max(bids)} crosses our ask {min(asks)} at {at_s:.1f} s")


def inject_phantom(engine) -> None:
    venue = engine.market.venue
    real_step = venue.step

    def step():
        venue.step = real_step
        phantom = Fill(venue.now_ns, "phantom", Side.BUY, 100_000.0, 0.05, 0.0, True)
        return [phantom, *real_step()]

    venue.step = step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument(
        "--spike-ms", type=float, default=FAULTS["latency_spike_ms"], help="latency spike length"
    )
    args = parser.parse_args()
    FAULTS["latency_spike_ms"] = args.spike_ms
    elapsed = [0]
    settings = Settings.model_validate(
        {"sim": {"speed": 1.0, **MARKET, **FAULTS}, "strategy": BUSY}
    )
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as state:
        engine = open_engine(
            settings, Path(state), wall_ns=lambda: WALL0 + elapsed[0], clock=lambda: elapsed[0]
        )
        risk = settings.risk
        watch = Watch(engine.market.venue, risk.rate_limit_calls, risk.rate_limit_window_s)
        step_ns = S // 20
        total = round(args.hours * 3600 * S)
        samples: list[tuple[float, float]] = []
        phantoms = 0
        started = time.perf_counter()
        while elapsed[0] < total:
            elapsed[0] += step_ns
            engine.pump()
            if elapsed[0] % S == 0:
                check_quotes(engine, failures, elapsed[0] / S)
            if elapsed[0] % (600 * S) == 300 * S:
                inject_phantom(engine)
                phantoms += 1
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
        if engine.market.refused_fills != phantoms:
            failures.append(
                f"{engine.market.refused_fills} fills refused, {phantoms} phantoms sent"
            )
        if watch.most > watch.limit:
            failures.append(f"{watch.most} calls in one window, limit {watch.limit}")
        fills = engine.quoter.ledger.fills
        if fills < MIN_FILLS:
            failures.append(f"only {fills} fills (want at least {MIN_FILLS})")
        engine.send(Kill())
        for _ in range(1_200):  # up to a minute: a cancel may meet a latency spike
            elapsed[0] += step_ns
            engine.pump()
            if not engine.market.resting_orders():
                break
        if engine.market.resting_orders():
            failures.append(f"{len(engine.market.resting_orders())} orders resting after kill")
        venue_position = engine.market.position_base
        engine.finish("clean")
        rec = recover(Path(state), WALL0 + elapsed[0])
        if abs(rec.position_base - venue_position) > 1e-12:
            failures.append("the journal's position differs from the venue's")
        counts = dict(sorted(engine.quoter.alert_counts.items()))

    print(f"soak: {args.hours:g} simulated hours, busy {BUSY} {MARKET}, faults {FAULTS}")
    print(
        f"wall time        {wall_s:.1f} s ({args.hours * 3600 / wall_s:,.0f}x real time), "
        f"{engine.events_total:,} venue events, {fills:,} fills, {phantoms} phantom fills"
    )
    print(f"rate budget      at most {watch.most} of {watch.limit} calls in any window")
    for minute, mb in samples:
        print(f"  t={minute:5.0f} min  rss {mb:7.1f} MB")
    if len(samples) >= 2:
        growth = samples[-1][1] - samples[0][1]
        print(
            f"memory growth    {growth:+.1f} MB after the first 10 minutes (limit {MAX_GROWTH_MB})"
        )
        if growth > MAX_GROWTH_MB:
            failures.append(f"memory grew {growth:.1f} MB")
    print(f"alerts           {counts}")
    print("invariants       " + ("all held" if not failures else "BROKEN: " + "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
