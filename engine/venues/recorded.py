"""Venues for a backtest, built from settings: the embedded exchange on a simulated clock, or a
recorded tape replayed. The shells name what they want; they never build a venue themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.backtest import BacktestVenue
from engine.config import Settings
from engine.events import Instrument
from engine.replay.binance import TapeError, read_tape
from engine.replay.venue import ReplayVenue
from engine.sim.configure import sim_params
from engine.sim.market import SimMarket
from engine.sim.params import fee_schedule

DEFAULT_HOURS = 8.0


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


def backtest_venue(
    settings: Settings,
    *,
    seed: int | None = None,
    fees: str | None = None,
    regime: str | None = None,
    informed_share: float | None = None,
    hours: float | None = None,
    replay: Path | None = None,
) -> RecordedVenue:
    """The embedded exchange from `[sim]` (with these overrides), or `replay` of a recorded
    Binance USD-M tape at the same fee schedule."""
    fees = fees or settings.sim.fees
    seed = settings.sim.seed if seed is None else seed
    if replay is not None:
        maker_pct, taker_pct = fee_schedule(fees)
        instrument = Instrument("BTCUSDT", tick_size=0.1, lot_size=settings.sim.lot_size)
        try:
            venue = ReplayVenue(
                read_tape(replay), instrument, maker_fee_pct=maker_pct, taker_fee_pct=taker_pct
            )
        except TapeError as err:
            raise VenueSetupError(str(err)) from None
        return RecordedVenue(venue, f"replay of {replay.name}", replay.name, None, hours)
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
    )
