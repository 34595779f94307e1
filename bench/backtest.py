"""Benchmark: backtests of the quoter core on the embedded exchange and on the shared Binance tape.

Run `python bench/backtest.py [--hours H] [--repeats N]`. Prints figures and ratios; nothing
here asserts on time. Two parts:

1. 8 simulated hours of the default market (seed 7) with the guide's settings: events per
   second, wall time, and the share of time in the core versus the simulator.
2. The replay of the shared tape from the raw gzip file, end to end: the multiple of real time
   (tape seconds / wall seconds), and where the time goes: decode (gunzip + msgspec), book (the
   core's L2 book), core (the quoter without its book), fills (the replay venue's book and
   matching), loop (the rest).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.backtest import run_backtest
from engine.book import Book
from engine.config import RiskSettings, StrategySettings
from engine.events import BookUpdate, Instrument
from engine.quoter import Quoter
from engine.replay.binance import read_tape
from engine.replay.venue import ReplayVenue
from engine.sim.market import SimMarket
from engine.sim.params import SimParams

TAPE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usdm_btcusdt_20240808.gz"
TAPE_S = 344.8


def bench_sim(hours: float) -> None:
    market = SimMarket(SimParams(seed=7))
    quoter = Quoter(StrategySettings(), RiskSettings(), market.instrument, seed=7)
    report, timing = run_backtest(market, quoter, hours=hours, profile=True)
    plain_market = SimMarket(SimParams(seed=7))
    plain_quoter = Quoter(StrategySettings(), RiskSettings(), plain_market.instrument, seed=7)
    _, plain = run_backtest(plain_market, plain_quoter, hours=hours)
    loop_s = timing.wall_s - timing.venue_s - timing.core_s
    print(f"== embedded exchange: {hours:g} simulated hours, default market, guide settings")
    print(f"events             {report['events']:,}")
    print(
        f"wall time          {plain.wall_s:.2f} s unprofiled "
        f"({report['events'] / plain.wall_s:,.0f} events/s, "
        f"{hours * 3600 / plain.wall_s:,.0f}x real time); target: 8 h in under 20 s"
    )
    print(
        f"time split         simulator {timing.venue_s:.2f} s "
        f"({timing.venue_s / timing.wall_s:.0%}), core {timing.core_s:.2f} s "
        f"({timing.core_s / timing.wall_s:.0%}), loop {loop_s:.2f} s "
        f"({loop_s / timing.wall_s:.0%})  [profiled run: {timing.wall_s:.2f} s]"
    )
    print(
        f"result             {report['fills']:,} fills, ${report['volume_usd']:,.0f} volume, "
        f"net ${report['pnl']['net']:+,.2f}"
    )


def bench_replay(repeats: int) -> None:
    if not TAPE.exists():
        print(f"== replay skipped: {TAPE} not found")
        return
    instrument = Instrument("BTCUSDT", tick_size=0.1, lot_size=0.00001)

    def end_to_end(profile: bool) -> tuple[float, float, float, int]:
        gc.collect()
        start = time.perf_counter()
        venue = ReplayVenue(read_tape(TAPE), instrument, maker_fee_pct=-0.025, taker_fee_pct=0.025)
        quoter = Quoter(StrategySettings(), RiskSettings(), instrument)
        report, timing = run_backtest(venue, quoter, profile=profile)
        return time.perf_counter() - start, timing.venue_s, timing.core_s, report["fills"]

    wall_s = min(end_to_end(False)[0] for _ in range(repeats))
    _, venue_s, core_s, fills = min(
        (end_to_end(True) for _ in range(repeats)), key=lambda r: r[1] + r[2]
    )

    decode_s = float("inf")
    updates: list[BookUpdate] = []
    count = 0
    for _ in range(repeats):
        gc.collect()
        updates = []
        count = 0
        start = time.perf_counter()
        for event in read_tape(TAPE):  # streamed, as the backtest reads it
            count += 1
            if isinstance(event, BookUpdate):
                updates.append(event)
        decode_s = min(decode_s, time.perf_counter() - start)
    book_s = float("inf")
    for _ in range(repeats):
        book = Book(instrument.tick_size)
        start = time.perf_counter()
        for update in updates:
            book.apply(update)
        book_s = min(book_s, time.perf_counter() - start)
    quoter_s = max(core_s - book_s, 0.0)
    fills_s = max(venue_s - decode_s, 0.0)
    loop_s = max(wall_s - decode_s - book_s - quoter_s - fills_s, 0.0)
    print(
        f"== replay of {TAPE.name} ({TAPE_S} s of tape, {count:,} events) from the raw "
        "file, guide settings"
    )
    print(
        f"wall time          {wall_s:.3f} s end to end = {TAPE_S / wall_s:,.0f}x real time "
        f"(target 1,000x = 0.345 s; {fills:,} fills)"
    )
    for name, seconds in (
        ("decode", decode_s),
        ("book", book_s),
        ("core", quoter_s),
        ("fills", fills_s),
        ("loop", loop_s),
    ):
        print(f"  {name:<7}          {seconds:.3f} s  {seconds / wall_s:5.0%}")
    print("(decode and book measured alone; core and fills from a profiled run less those)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench_sim(args.hours)
    print()
    bench_replay(args.repeats)
    print(f"\n(Python {sys.version.split()[0]}, best of {args.repeats} for the replay)")


if __name__ == "__main__":
    main()
