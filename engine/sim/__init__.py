"""The embedded exchange: a simulated perp venue, pure and deterministic (seeded, sim time)."""

from engine.sim.market import SimMarket
from engine.sim.params import BUILTIN_REGIMES, FEE_SCHEDULES, Regime, SimParams, fee_schedule

__all__ = ["BUILTIN_REGIMES", "FEE_SCHEDULES", "Regime", "SimMarket", "SimParams", "fee_schedule"]
