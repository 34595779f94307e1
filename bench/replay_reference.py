"""Benchmark: the shared Binance tape replayed with a simple reference strategy, beside what a
queue-position simulator gives on the same tape.

Run `python bench/replay_reference.py`. The reference strategy: quotes 2.5 bps either side of
mid (no volatility or inventory premium, no lean, no hedging), refreshed every 100 ms, $200 a
quote (0.003 BTC: Binance's $100 minimum rules out 0.001), on Binance USD-M BTCUSDT's tick,
lot, minimum and base-tier fees. It prints maker fills and net P&L for 10 ms latency each way
with the risk-averse queue (the figure to compare), then the same with the power queue, with
no latency at all (what the replay reported before it had latency and consumed liquidity),
and the guide's own strategy (perpdesk's defaults at $200) with 10 ms. The queue-position
simulator's figures (hftbacktest 2.4.4, the guide's strategy, 10 ms each way, its risk-averse
queue model) were measured outside this repository; they are printed for the side-by-side.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.backtest import run_backtest
from engine.config import Settings, StrategySettings
from engine.events import Fill, VenueEvent
from engine.quoter import Quoter
from engine.replay.venue import QueueModel
from engine.venues.recorded import backtest_venue

TAPE = Path(__file__).resolve().parents[2] / "shared" / "data" / "usdm_btcusdt_20240808.gz"
REFERENCE_MAKER_FILLS = 17
REFERENCE_NET_USD = 0.27
"""hftbacktest 2.4.4 on this tape, the guide's strategy, 10 ms each way, risk-averse queue."""

STRATEGY = StrategySettings(
    base_spread_bps=5.0,
    vol_premium_coeff=0.0,
    inventory_premium_bps=0.0,
    lean_factor=0.0,
    refresh_interval_s=0.1,
    quote_size_usd=200.0,
    auto_hedge=False,
    max_inventory_usd=5_000.0,
)


GUIDE = StrategySettings(quote_size_usd=200.0)
"""The guide's strategy (perpdesk's defaults), at a size Binance's minimum lets through."""


def run(
    strategy: StrategySettings, latency_ms: float, queue: QueueModel
) -> tuple[int, float, float]:
    """(maker fills, net P&L in USD, wall seconds) of one replay."""
    settings = Settings(strategy=strategy)
    recorded = backtest_venue(settings, replay=TAPE, latency_ms=latency_ms, queue=queue)
    venue = recorded.venue
    quoter = Quoter(settings.strategy, settings.risk, venue.instrument, seed=1)
    makers = 0
    step = venue.step

    def counting_step() -> list[VenueEvent]:
        nonlocal makers
        batch = step()
        makers += sum(1 for e in batch if isinstance(e, Fill) and e.is_maker)
        return batch

    venue.step = counting_step  # type: ignore[method-assign]
    started = time.perf_counter()
    report, _ = run_backtest(venue, quoter)
    return makers, report["pnl"]["net"], time.perf_counter() - started


def main() -> None:
    if not TAPE.exists():
        print(f"tape not found: {TAPE}")
        return
    print(f"replay of {TAPE.name}: reference strategy (2.5 bps a side, 100 ms refresh, $200 "
          "quotes, no hedging), Binance USD-M BTCUSDT, base-tier fees")  # fmt: skip
    print(f"{'':40}{'maker fills':>12}{'net P&L':>12}{'wall':>9}")
    rows: list[tuple[str, StrategySettings, float, QueueModel]] = [
        ("perpdesk, 10 ms, risk-averse", STRATEGY, 10.0, "risk-averse"),
        ("perpdesk, 10 ms, power queue", STRATEGY, 10.0, "power"),
        ("perpdesk, no latency", STRATEGY, 0.0, "risk-averse"),
        ("perpdesk, guide's strategy, 10 ms", GUIDE, 10.0, "risk-averse"),
    ]
    guide: tuple[int, float] | None = None
    for label, strategy, latency, queue in rows:
        makers, net, wall = run(strategy, latency, queue)
        if strategy is GUIDE:
            guide = (makers, net)
        print(f"{label:40}{makers:>12}{net:>+12.2f}{wall:>8.2f}s")
    reference = "hftbacktest 2.4.4, guide's strategy, 10 ms"
    print(f"{reference:40}{REFERENCE_MAKER_FILLS:>12}"
          f"{REFERENCE_NET_USD:>+12.2f}{'':>9}")  # fmt: skip
    assert guide is not None
    print(f"the guide's strategy, perpdesk / hftbacktest: maker fills {guide[0]}/"
          f"{REFERENCE_MAKER_FILLS} = {guide[0] / REFERENCE_MAKER_FILLS:.2f}x; net "
          f"${guide[1]:+.2f} against ${REFERENCE_NET_USD:+.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
