"""Benchmark of the embedded exchange alone: 8 simulated hours under a trivial two-sided quoter.

The quoter (`engine.sim.drill`) cancels everything and reposts a bid and an ask at the book
mid -+ 2.5 bps, $100 a side, every 3 s, like the guide's stale-quote refresh, and nothing else
(no hedging, no inventory limits). Prints events, events per wall second, wall seconds, our
fills and volume, and fills per hour in each price regime. Figures, not asserts.

    .venv/bin/python bench/sim.py [--hours 8] [--seed 7] [--half-spread-bps 2.5] [--seeds 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.events import Side
from engine.sim import SimMarket, SimParams
from engine.sim.drill import run_trivial_quoter

_NS_PER_S = 1_000_000_000


def run(
    hours: float, seed: int, half_spread_bps: float, quote_usd: float, refresh_s: float
) -> None:
    market = SimMarket(SimParams(seed=seed))
    t0 = time.perf_counter()
    report = run_trivial_quoter(
        market, round(hours * 3600 * _NS_PER_S), half_spread_bps, quote_usd, refresh_s
    )
    wall_s = time.perf_counter() - t0
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in report.by_kind.most_common())
    buys, sells = report.fill_count(Side.BUY), report.fill_count(Side.SELL)
    rebates_usd = -sum(f.fee_usd for f in report.fills)
    fair = market.fair_mid
    print(f"sim: {hours:g} h, seed {seed}, quotes -+{half_spread_bps:g} bps, ${quote_usd:g} a side,"
          f" refresh {refresh_s:g} s")  # fmt: skip
    print(f"events        {report.events:>12,}  ({kinds})")
    print(f"events/s      {report.events / wall_s:>12,.0f}")
    print(f"wall seconds  {wall_s:>12.2f}  ({hours * 3600 / wall_s:,.0f}x real time)")
    print(f"fills         {buys + sells:>12,}  (buy {buys:,}, sell {sells:,})")
    print(f"volume USD    {report.volume_usd:>12,.0f}  (rebates {rebates_usd:,.2f} USD)")
    print(f"position      {market.position_base:>12.5f} BTC; equity "
          f"{market.equity_usd(fair):,.2f} USD at the fair price {fair:,.1f}")  # fmt: skip
    interval_s = market.params.book_interval_s
    for regime, books in sorted(report.books_by_regime.items()):
        regime_h = books * interval_s / 3600
        n = report.fills_by_regime[regime]
        print(f"  {regime:<9} {regime_h:5.2f} h {n:7,} fills {n / regime_h:8.1f} fills/h")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=1, help="run this many seeds from --seed")
    parser.add_argument("--half-spread-bps", type=float, default=2.5)
    parser.add_argument("--quote-usd", type=float, default=100.0)
    parser.add_argument("--refresh-s", type=float, default=3.0)
    args = parser.parse_args()
    for seed in range(args.seed, args.seed + args.seeds):
        run(args.hours, seed, args.half_spread_bps, args.quote_usd, args.refresh_s)


if __name__ == "__main__":
    main()
