"""Venues for a backtest, built from settings: the embedded exchange on a simulated clock, or a
recorded tape replayed. The shells name what they want; they never build a venue themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.backtest import BacktestVenue
from engine.config import Settings
from engine.events import Instrument
from engine.replay.binance import TapeError, read_tape
from engine.replay.venue import FillThrough, QueueModel, ReplayModel, ReplayVenue
from engine.sim.configure import sim_params
from engine.sim.market import SimMarket
from engine.sim.params import fee_schedule

DEFAULT_HOURS = 8.0

BINANCE_USDM_BTCUSDT = Instrument("BTCUSDT", tick_size=0.1, lot_size=0.001)
"""The contract the shared tape records: Binance USD-M BTCUSDT perpetual."""
BINANCE_USDM_MIN_NOTIONAL_USD = 100.0
BINANCE_USDM_FEES = "binance-usdm-base"


class VenueSetupError(ValueError):
    """The venue asked for cannot be built (an unreadable tape, ...): one line, exit 2."""


@dataclass(frozen=True, slots=True)
class RecordedVenue:
    """A venue for `run_backtest`, and what the report says about it."""

    venue: BacktestVenue
    description: str
    """e.g. "embedded exchange, seed 7" or "replay of usdm_btcusdt_20240808.gz"."""
    source: str
    """"sim", or the tape's file name."""
    seed: int | None
    hours: float | None
    """How long to run; None: to the tape's end."""
    fees: str
    """The fee schedule it charges."""


def backtest_venue(
    settings: Settings,
    *,
    seed: int | None = None,
    fees: str | None = None,
    regime: str | None = None,
    informed_share: float | None = None,
    hours: float | None = None,
    replay: Path | None = None,
    latency_ms: float | None = None,
    queue: QueueModel | None = None,
    fill_through: FillThrough | None = None,
) -> RecordedVenue:
    """The embedded exchange from `[sim]` (with these overrides), or `replay` of a recorded
    Binance USD-M tape: that contract's tick, lot and minimum notional, its venue's fees
    unless `fees` names others, and `[replay]`'s latency and queue model (with overrides)."""
    seed = settings.sim.seed if seed is None else seed
    if replay is not None:
        fees = fees or BINANCE_USDM_FEES
        maker_pct, taker_pct = fee_schedule(fees)
        model = replay_model(settings, latency_ms, queue, fill_through)
        try:
            venue = ReplayVenue(
                read_tape(replay),
                BINANCE_USDM_BTCUSDT,
                maker_fee_pct=maker_pct,
                taker_fee_pct=taker_pct,
                model=model,
            )
        except TapeError as err:
            raise VenueSetupError(str(err)) from None
        description = f"replay of {replay.name} (Binance USD-M BTCUSDT; {model.describe()})"
        return RecordedVenue(venue, description, replay.name, None, hours, fees)
    fees = fees or settings.sim.fees
    overrides: dict[str, object] = {"seed": seed}
    if regime is not None:
        overrides["regime_override"] = None if regime == "auto" else regime
    if informed_share is not None:
        overrides["informed_share"] = informed_share
    market = SimMarket(sim_params(settings.sim, **overrides).with_fees(fees))
    return RecordedVenue(
        market,
        f"embedded exchange, seed {seed}",
        "sim",
        seed,
        DEFAULT_HOURS if hours is None else hours,
        fees,
    )


def replay_model(
    settings: Settings,
    latency_ms: float | None = None,
    queue: QueueModel | None = None,
    fill_through: FillThrough | None = None,
) -> ReplayModel:
    """`[replay]`, with a command line's overrides (`latency_ms` sets both directions)."""
    replay = settings.replay
    entry = replay.entry_latency_ms if latency_ms is None else latency_ms
    response = replay.response_latency_ms if latency_ms is None else latency_ms
    return ReplayModel(
        entry_latency_ms=entry,
        response_latency_ms=response,
        queue=queue or replay.queue,
        queue_power=replay.queue_power,
        fill_through=fill_through or replay.fill_through,
        min_notional_usd=BINANCE_USDM_MIN_NOTIONAL_USD,
    )
