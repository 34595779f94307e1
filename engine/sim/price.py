"""The latent fair price: a regime-switching log random walk with jumps, generated ahead.

The path lives on the book grid (one point per book interval). It is generated
`lookahead_steps` ahead of the present so informed takers can see where it is going; the
market only ever reads the present (`fair_usd`) and, for informed takers, the horizon
(`future_fair_usd`). Its random stream is its own, so our orders never change the path:
two strategies run on the same seed face the same prices.
"""

from __future__ import annotations

import math
import random
from collections import deque

from engine.sim.params import Regime, SimParams

_HOUR_S = 3600.0


class FairPricePath:
    """The fair price now and `lookahead_steps` intervals ahead, one step per book interval."""

    __slots__ = (
        "_dwell_steps_left",
        "_jump_size",
        "_jump_step_prob",
        "_pinned",
        "_price",
        "_prices",
        "_regime",
        "_regimes_ahead",
        "_rng",
        "_step_drift",
        "_step_s",
        "_step_vol",
        "_switchable",
    )

    def __init__(self, params: SimParams, rng: random.Random, lookahead_steps: int) -> None:
        self._rng = rng
        self._step_s = params.book_interval_s
        self._jump_size = params.jump_size_pct / 100.0
        self._jump_step_prob = params.jump_rate_per_hour * self._step_s / _HOUR_S
        self._pinned = params.regime_override is not None
        self._switchable = tuple(r for r in params.regimes if r.switch_weight > 0)
        first = params.regime(params.regime_override or params.start_regime)
        self._price = params.start_price_usd
        self._regime = first
        self._step_vol = 0.0
        self._step_drift = 0.0
        self._dwell_steps_left = 0
        self._enter(first)
        self._prices: deque[float] = deque([self._price])
        self._regimes_ahead: deque[Regime] = deque([first])
        for _ in range(lookahead_steps):
            self._generate()

    @property
    def fair_usd(self) -> float:
        return self._prices[0]

    @property
    def future_fair_usd(self) -> float:
        """The fair price at the lookahead horizon (what an informed taker knows)."""
        return self._prices[-1]

    @property
    def regime(self) -> Regime:
        """The regime in force now (not at the horizon)."""
        return self._regimes_ahead[0]

    def advance(self) -> float:
        """Move one step forward in time; returns the new present fair price."""
        self._generate()
        self._prices.popleft()
        self._regimes_ahead.popleft()
        return self._prices[0]

    def _enter(self, regime: Regime) -> None:
        self._regime = regime
        step_h = self._step_s / _HOUR_S
        vol = regime.vol_pct_per_hour / 100.0
        # drift_pct_per_hour is the expected log move per hour (a crash's -10 is about -10 %)
        self._step_drift = regime.drift_pct_per_hour / 100.0 * step_h
        self._step_vol = vol * math.sqrt(step_h)
        if self._pinned or not self._switchable:
            self._dwell_steps_left = -1  # never switch
        else:
            dwell_s = self._rng.expovariate(1.0 / regime.mean_dwell_s)
            self._dwell_steps_left = max(1, round(dwell_s / self._step_s))

    def _switch(self) -> None:
        candidates = [r for r in self._switchable if r.name != self._regime.name]
        if not candidates:
            self._enter(self._regime)
            return
        weights = [r.switch_weight for r in candidates]
        self._enter(self._rng.choices(candidates, weights)[0])

    def _generate(self) -> None:
        if self._dwell_steps_left == 0:
            self._switch()
        elif self._dwell_steps_left > 0:
            self._dwell_steps_left -= 1
        regime = self._regime
        step_vol = self._step_vol
        if step_vol > 0.0 or self._step_drift != 0.0 or regime.jump_mult > 0.0:
            rng = self._rng
            log_return = self._step_drift
            if step_vol > 0.0:
                log_return += step_vol * rng.gauss(0.0, 1.0)
            if regime.jump_mult > 0.0 and rng.random() < self._jump_step_prob * regime.jump_mult:
                log_return += self._jump_size * rng.gauss(0.0, 1.0)
            if log_return != 0.0:
                self._price *= math.exp(log_return)
        self._prices.append(self._price)
        self._regimes_ahead.append(regime)
