"""From the operator's `[sim]` settings to the embedded exchange's parameters."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.config import SimSettings
from engine.sim.params import SimParams


def sim_params(sim: SimSettings, **overrides: Any) -> SimParams:
    """SimParams for these settings; `overrides` replace single fields (e.g. seed=3)."""
    params = SimParams(
        seed=sim.seed,
        start_price_usd=sim.start_price_usd,
        tick_size=sim.tick_size,
        lot_size=sim.lot_size,
        informed_share=sim.informed_share,
        latency_ms=sim.latency_ms,
        reject_rate=sim.reject_rate,
        cancel_fail_rate=sim.cancel_fail_rate,
        latency_spike_rate=sim.latency_spike_rate,
        latency_spike_ms=sim.latency_spike_ms,
        feed_gap_rate_per_hour=sim.feed_gap_rate_per_hour,
        feed_gap_s=sim.feed_gap_s,
        regime_override=None if sim.regime == "auto" else sim.regime,
        funding_enabled=sim.funding,
    ).with_fees(sim.fees)
    return dataclasses.replace(params, **overrides) if overrides else params
