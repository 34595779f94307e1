"""Realized volatility of the mid, from sampled log returns, scaled to one hour."""

from __future__ import annotations

import math
from collections import deque

_NS_PER_S = 1_000_000_000
_SECONDS_PER_HOUR = 3600.0
ESTIMATORS = ("realized", "ewma")


class RealizedVol:
    """Hourly volatility of the mid as a fraction (0.02 = 2%/h).

    The mid is sampled at most once per `sample_interval_s`: the first mid seen once that much
    time has passed since the last sample. Each sample gives a log return r over its elapsed
    dt seconds; samples can be irregular, and a quiet gap is one return over the whole gap.

    - "realized": variance per second = sum(r^2) / sum(dt) over the returns sampled within the
      last `window_s`, zero-mean as is standard at high frequency.
    - "ewma": variance per second is an exponentially weighted average of r^2/dt, each return
      weighted alpha = 1 - 0.5**(dt / ewma_halflife_s), so a long gap counts for more.

    vol_1h = sqrt(var_per_s * 3600). It is None until `min_samples` returns are in the window.
    Time is passed in (ts_ns); nothing here reads a clock.
    """

    __slots__ = (
        "_estimator_is_ewma",
        "_evictions_since_resum",
        "_ewma_halflife_s",
        "_ewma_var_per_s",
        "_last_mid",
        "_last_ts_ns",
        "_min_samples",
        "_returns",
        "_sample_interval_ns",
        "_sum_dt_s",
        "_sum_r2",
        "_sum_r2_peak",
        "_window_ns",
        "estimator",
    )

    def __init__(
        self,
        *,
        sample_interval_s: float,
        window_s: float,
        estimator: str = "realized",
        ewma_halflife_s: float = 60.0,
        min_samples: int = 10,
    ) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator {estimator!r} is not one of {', '.join(ESTIMATORS)}")
        if not (math.isfinite(sample_interval_s) and sample_interval_s > 0.0):
            raise ValueError(f"sample_interval_s {sample_interval_s!r} must be a positive number")
        if not (math.isfinite(window_s) and window_s > 0.0):
            raise ValueError(f"window_s {window_s!r} must be a positive number")
        if not (math.isfinite(ewma_halflife_s) and ewma_halflife_s > 0.0):
            raise ValueError(f"ewma_halflife_s {ewma_halflife_s!r} must be a positive number")
        if min_samples < 1:
            raise ValueError(f"min_samples {min_samples!r} must be at least 1")
        if window_s / sample_interval_s < min_samples:
            raise ValueError(
                f"window_s {window_s} holds at most ~{window_s / sample_interval_s:g} samples at "
                f"sample_interval_s {sample_interval_s}, fewer than min_samples {min_samples}: "
                "the volatility would never be reported; widen the window or sample faster"
            )
        self.estimator = estimator
        self._estimator_is_ewma = estimator == "ewma"
        self._sample_interval_ns = round(sample_interval_s * _NS_PER_S)
        self._window_ns = round(window_s * _NS_PER_S)
        self._ewma_halflife_s = ewma_halflife_s
        self._min_samples = min_samples
        # (sample ts_ns, r^2, dt_s) for each return in the window, oldest first.
        self._returns: deque[tuple[int, float, float]] = deque()
        self._sum_r2 = 0.0
        self._sum_r2_peak = 0.0
        self._sum_dt_s = 0.0
        self._evictions_since_resum = 0
        self._ewma_var_per_s: float | None = None
        self._last_mid: float | None = None
        self._last_ts_ns = 0

    def reset(self) -> None:
        self._returns.clear()
        self._sum_r2 = 0.0
        self._sum_r2_peak = 0.0
        self._sum_dt_s = 0.0
        self._evictions_since_resum = 0
        self._ewma_var_per_s = None
        self._last_mid = None
        self._last_ts_ns = 0

    def on_mid(self, mid: float, ts_ns: int) -> None:
        """Offer the current mid; it becomes a sample if sample_interval_s has passed."""
        if not (0.0 < mid < math.inf):  # also false for NaN
            return
        last_mid = self._last_mid
        if last_mid is None:
            self._last_mid = mid
            self._last_ts_ns = ts_ns
            return
        elapsed_ns = ts_ns - self._last_ts_ns
        # Too soon, or time went backwards: not a sample.
        if elapsed_ns < self._sample_interval_ns:
            return
        self._last_mid = mid
        self._last_ts_ns = ts_ns

        r = math.log(mid / last_mid)
        r2 = r * r
        dt_s = elapsed_ns / _NS_PER_S
        returns = self._returns
        returns.append((ts_ns, r2, dt_s))
        self._sum_r2 += r2
        self._sum_dt_s += dt_s
        if self._sum_r2 > self._sum_r2_peak:
            self._sum_r2_peak = self._sum_r2

        window_start_ns = ts_ns - self._window_ns
        while returns[0][0] <= window_start_ns:
            _, old_r2, old_dt_s = returns.popleft()
            self._sum_r2 -= old_r2
            self._sum_dt_s -= old_dt_s
            self._evictions_since_resum += 1
        # Subtracting from running sums leaves float error of about eps * (largest sum seen).
        # Re-add them exactly once the window has turned over (O(1) amortized per sample), and
        # sooner when a burst leaves the window and the sum falls a millionfold (quiet after a
        # spike), where that error would otherwise be a visible part of what remains.
        if self._evictions_since_resum >= len(returns) or self._sum_r2 < self._sum_r2_peak * 1e-6:
            self._sum_r2 = math.fsum(item[1] for item in returns)
            self._sum_dt_s = math.fsum(item[2] for item in returns)
            self._sum_r2_peak = self._sum_r2
            self._evictions_since_resum = 0

        if self._estimator_is_ewma:
            sample_var_per_s = r2 / dt_s
            ewma = self._ewma_var_per_s
            if ewma is None:
                self._ewma_var_per_s = sample_var_per_s
            else:
                alpha = 1.0 - 0.5 ** (dt_s / self._ewma_halflife_s)
                self._ewma_var_per_s = ewma + alpha * (sample_var_per_s - ewma)

    @property
    def samples(self) -> int:
        """Returns currently in the window."""
        return len(self._returns)

    @property
    def var_per_s(self) -> float | None:
        """Variance of the log mid per second; None until min_samples returns are in the window."""
        if len(self._returns) < self._min_samples:
            return None
        if self._estimator_is_ewma:
            return self._ewma_var_per_s
        if self._sum_dt_s <= 0.0:
            return None
        return max(self._sum_r2, 0.0) / self._sum_dt_s

    @property
    def vol_1h(self) -> float | None:
        var_per_s = self.var_per_s
        if var_per_s is None:
            return None
        return math.sqrt(var_per_s * _SECONDS_PER_HOUR)
