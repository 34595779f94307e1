"""The embedded exchange's settings: price regimes, book shape, taker flow, fees, faults.

Every number has a unit in its name. Percentages are percentages (0.025 means 0.025 %, i.e.
2.5 bps); `funding_rate_per_hour` is a plain fraction like the venues publish it. The defaults
are calibrated together (see `engine.sim.market` for the figures): change one and the fill
rate of a quoter changes with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FEE_SCHEDULES: dict[str, tuple[float, float]] = {
    # (maker_fee_pct, taker_fee_pct); a negative maker fee is a rebate received
    "guide": (-0.025, 0.025),
    "hyperliquid-base": (0.015, 0.045),
    "binance-usdm-base": (0.02, 0.05),
}


def fee_schedule(name: str) -> tuple[float, float]:
    """(maker_fee_pct, taker_fee_pct) of a named schedule: 'guide', 'hyperliquid-base' or
    'binance-usdm-base' (Binance USD-M futures, the base tier)."""
    try:
        return FEE_SCHEDULES[name]
    except KeyError:
        known = ", ".join(sorted(FEE_SCHEDULES))
        raise ValueError(f"unknown fee schedule {name!r}; known schedules: {known}") from None


@dataclass(frozen=True, slots=True)
class Regime:
    """One state of the price process: how fast the fair price wanders, drifts and jumps,
    how busy the takers are and how deep the background book is while it lasts."""

    name: str
    vol_pct_per_hour: float
    """Standard deviation of the log fair price over one hour, in percent: the Brownian part,
    jumps come on top (see SimParams.jump_rate_per_hour)."""
    drift_pct_per_hour: float = 0.0
    mean_dwell_s: float = 1800.0
    """Mean time spent in the regime before switching (exponential dwell)."""
    switch_weight: float = 1.0
    """Relative chance of entering this regime when another one ends."""
    jump_mult: float = 1.0
    """Scales `SimParams.jump_rate_per_hour`; 0 means no jumps."""
    taker_rate_mult: float = 1.0
    """Scales `SimParams.taker_rate_per_s`: busier markets trade more."""
    depth_mult: float = 1.0
    """Scales the background book's sizes: volatile markets are thinner."""
    sell_share: float = 0.5
    """Share of uninformed takers that sell: above one half, the flow leans on the bids."""


QUIET = Regime("quiet", 0.2, mean_dwell_s=2400.0, switch_weight=1.0,
               jump_mult=0.5, taker_rate_mult=0.7, depth_mult=1.3)  # fmt: skip
NORMAL = Regime("normal", 0.35, mean_dwell_s=3600.0, switch_weight=2.0)
VOLATILE = Regime("volatile", 1.5, mean_dwell_s=600.0, switch_weight=0.5,
                  jump_mult=3.0, taker_rate_mult=2.0, depth_mult=0.6)  # fmt: skip
# A crash is a one-way market: the price falls faster than it wobbles, takers mostly sell,
# and a maker's bids are filled all the way down.
CRASH = Regime("crash", 5.5, drift_pct_per_hour=-80.0, mean_dwell_s=1800.0, switch_weight=0.0,
               jump_mult=3.0, taker_rate_mult=3.0, depth_mult=0.4, sell_share=0.9)  # fmt: skip
FLAT = Regime("flat", 0.0, mean_dwell_s=3600.0, switch_weight=0.0, jump_mult=0.0)

BUILTIN_REGIMES: dict[str, Regime] = {r.name: r for r in (QUIET, NORMAL, VOLATILE, CRASH, FLAT)}


@dataclass(frozen=True, slots=True)
class SimParams:
    """Everything that makes one simulated market; the same params and seed give the same run."""

    seed: int = 7
    symbol: str = "BTC-PERP"
    start_price_usd: float = 100_000.0
    start_ns: int = 0
    """The clock's start: 0 for backtests; the wall clock's epoch ns for a live paper session."""
    start_position_base: float = 0.0
    start_cash_usd: float = 0.0
    """Our account when the market opens: a paper session restarts with what it had."""
    tick_size: float = 0.1
    lot_size: float = 0.00001

    # ---- fees (the guide's schedule; see fee_schedule / with_fees) ----
    maker_fee_pct: float = -0.025
    taker_fee_pct: float = 0.025

    # ---- the fair price process ----
    regimes: tuple[Regime, ...] = (QUIET, NORMAL, VOLATILE)
    """The regimes the Markov switching moves between."""
    start_regime: str = "normal"
    regime_override: str | None = None
    """Pin one regime for the whole run, e.g. "crash" (strong down-drift, high vol: for circuit
    breakers) or "flat" (no movement, no jumps: for exact tests). Names from BUILTIN_REGIMES or
    `regimes`."""
    jump_rate_per_hour: float = 20.0
    """Jumps an hour in a regime with jump_mult 1; they add sqrt(rate) * size to the hourly vol
    (0.22 %/h at the defaults, on top of the regime's Brownian vol_pct_per_hour)."""
    jump_size_pct: float = 0.05
    """Standard deviation of one jump of the log fair price, in percent, mean zero."""

    # ---- the background book ----
    book_interval_s: float = 0.1
    """A full snapshot is published every interval, whether or not anything changed: that is
    the heartbeat consumers see (like a venue's periodic l2Book), and the event count is exact."""
    book_levels: int = 20
    touch_extra_ticks_max: int = 1
    """Each touch sits 0..this many extra ticks away from the fair price: spread of 1-4 ticks."""
    dense_levels: int = 5
    """Levels on consecutive ticks from the touch; the rest sit on a coarser lattice."""
    level_spacing_ticks: int = 30
    """Lattice step of the deeper levels, anchored to absolute prices so they persist as the
    mid moves ($3 = 0.3 bps at the defaults: 20 levels span about 4.4 bps a side)."""
    touch_size_base: float = 0.05
    depth_growth_per_level: float = 0.3
    """Level k's mean size is touch_size_base * (1 + depth_growth_per_level * k)."""
    book_size_jitter: float = 0.6
    """Each level's size is drawn uniformly within +-this share of its mean (0: exact sizes)."""
    book_resize_share: float = 0.2
    """Share of levels a side that get a new size each interval; the rest keep theirs (books
    change a little every 100 ms, they do not reshuffle). A regime change redraws them all."""

    # ---- taker flow ----
    taker_rate_per_s: float = 2.0
    """Poisson arrival rate of background market orders in the normal regime."""
    taker_median_usd: float = 3_000.0
    taker_size_sigma: float = 1.6
    """Taker notional is lognormal: median taker_median_usd, log-sd taker_size_sigma."""
    informed_share: float = 0.1
    """Share of takers that know the fair price informed_horizon_s ahead. An informed taker
    trades only what is mispriced against that future price (it buys every offer below it, or
    sells every bid above it, up to informed_size_mult times its drawn notional): it picks
    off stale quotes, and never trades when nothing is mispriced."""
    informed_horizon_s: float = 5.0
    informed_size_mult: float = 5.0

    # ---- funding ----
    funding_enabled: bool = False
    funding_rate_per_hour: float = 0.0000125
    """A plain fraction (0.00125 % an hour, Hyperliquid's baseline); longs pay when positive."""

    # ---- faults ----
    latency_ms: float = 0.0
    """Our actions take effect this long after they are submitted."""
    reject_rate: float = 0.0
    """Chance that a quote or hedge is rejected by the venue for no reason of ours."""
    cancel_fail_rate: float = 0.0
    """Chance that a cancel is refused (`CancelRejected`) and the order stays live."""
    latency_spike_rate: float = 0.0
    """Chance that one action takes `latency_spike_ms` instead of `latency_ms`."""
    latency_spike_ms: float = 2_000.0
    feed_gap_rate_per_hour: float = 0.0
    """Book publication stops for `feed_gap_s` this many times an hour (the market goes on)."""
    feed_gap_s: float = 10.0

    def __post_init__(self) -> None:
        positive = {
            "start_price_usd": self.start_price_usd,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "book_interval_s": self.book_interval_s,
            "touch_size_base": self.touch_size_base,
            "taker_median_usd": self.taker_median_usd,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"SimParams.{name} must be positive, got {value!r}")
        if self.book_levels < 1 or self.dense_levels < 1 or self.level_spacing_ticks < 1:
            raise ValueError(
                "SimParams.book_levels, dense_levels, level_spacing_ticks must be >= 1"
            )
        for name in (
            "informed_share",
            "reject_rate",
            "book_resize_share",
            "cancel_fail_rate",
            "latency_spike_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"SimParams.{name} must be within [0, 1], got {value!r}")
        if not 0.0 <= self.book_size_jitter < 1.0:
            raise ValueError(
                f"SimParams.book_size_jitter must be within [0, 1), got {self.book_size_jitter!r}"
            )
        for name in (
            "taker_rate_per_s",
            "latency_ms",
            "informed_horizon_s",
            "jump_rate_per_hour",
            "latency_spike_ms",
            "feed_gap_rate_per_hour",
            "feed_gap_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"SimParams.{name} must not be negative")
        self.regime(self.start_regime)
        if self.regime_override is not None:
            self.regime(self.regime_override)

    def regime(self, name: str) -> Regime:
        """The regime called `name`, from `regimes` first, then the built-in ones."""
        for regime in self.regimes:
            if regime.name == name:
                return regime
        if name in BUILTIN_REGIMES:
            return BUILTIN_REGIMES[name]
        known = ", ".join(sorted({r.name for r in self.regimes} | set(BUILTIN_REGIMES)))
        raise ValueError(f"unknown regime {name!r}; known regimes: {known}")

    def with_fees(self, schedule: str) -> SimParams:
        """These params with a named fee schedule ('guide' or 'hyperliquid-base')."""
        maker_fee_pct, taker_fee_pct = fee_schedule(schedule)
        return dataclasses.replace(self, maker_fee_pct=maker_fee_pct, taker_fee_pct=taker_fee_pct)
