"""Realized volatility of the mid, on series whose answer can be worked out by hand."""

from __future__ import annotations

import math

import pytest

from engine.volatility import RealizedVol

S = 1_000_000_000  # one second in ns


def feed(vol: RealizedVol, log_returns: list[float], *, start_mid: float = 100.0, dt_s: int = 1):
    """Mids that move by the given log returns, one every dt_s seconds, from t = 0."""
    log_mid = math.log(start_mid)
    vol.on_mid(start_mid, 0)
    for i, r in enumerate(log_returns, start=1):
        log_mid += r
        vol.on_mid(math.exp(log_mid), i * dt_s * S)


def alternating(x: float, n: int) -> list[float]:
    return [x if i % 2 == 0 else -x for i in range(n)]


def test_alternating_returns_of_x_each_second_give_60x_per_hour():
    vol = RealizedVol(sample_interval_s=1.0, window_s=3600.0)
    feed(vol, alternating(0.001, 100))
    # var per s = x^2, vol_1h = x * sqrt(3600) = 60 * 0.001
    assert vol.vol_1h == pytest.approx(0.06, rel=1e-9)
    assert vol.samples == 100


def test_a_mid_up_exactly_1_percent_every_second_gives_60_ln_1_01_per_hour():
    vol = RealizedVol(sample_interval_s=1.0, window_s=3600.0)
    mid = 100.0
    for i in range(30):
        vol.on_mid(mid, i * S)
        mid *= 1.01
    # zero-mean estimator: a steady trend is volatility too, ln(1.01) * 60 = 0.597
    assert vol.vol_1h == pytest.approx(60 * math.log(1.01), rel=1e-9)


def test_two_percent_an_hour_series_reports_0_02():
    vol = RealizedVol(sample_interval_s=1.0, window_s=600.0)
    feed(vol, alternating(0.02 / 60, 600))
    assert vol.vol_1h is not None
    assert abs(vol.vol_1h - 0.02) < 1e-9


def test_constant_mid_has_zero_volatility():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0)
    for i in range(20):
        vol.on_mid(61800.0, i * S)
    assert vol.vol_1h == 0.0


def test_fewer_than_min_samples_returns_gives_none():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0, min_samples=10)
    feed(vol, alternating(0.001, 9))
    assert vol.samples == 9
    assert vol.vol_1h is None
    vol.on_mid(100.0, 10 * S)
    assert vol.samples == 10
    assert vol.vol_1h is not None


def test_samples_at_most_once_per_interval():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0, min_samples=1)
    vol.on_mid(100.0, 0)
    vol.on_mid(200.0, S // 2)  # half a second later: not a sample, so this jump is never seen
    vol.on_mid(100.0, S)
    assert vol.samples == 1
    assert vol.vol_1h == 0.0


def test_a_10_second_gap_counts_as_one_return_over_10_seconds():
    vol = RealizedVol(sample_interval_s=1.0, window_s=3600.0, min_samples=1)
    x = 0.01
    vol.on_mid(100.0, 0)
    vol.on_mid(100.0 * math.exp(x), 10 * S)
    assert vol.samples == 1
    # var per s = x^2 / 10, vol_1h = x * sqrt(360) = 0.1897
    assert vol.vol_1h == pytest.approx(x * math.sqrt(360.0), rel=1e-9)
    # then 10 one-second returns of x: var per s = 11 x^2 / 20 s
    for k in range(1, 11):
        vol.on_mid(100.0 if k % 2 == 1 else 100.0 * math.exp(x), (10 + k) * S)
    assert vol.samples == 11
    assert vol.vol_1h == pytest.approx(x * math.sqrt(11 / 20 * 3600), rel=1e-9)


def test_the_window_drops_old_returns():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0, min_samples=10)
    feed(vol, alternating(0.01, 100) + alternating(0.001, 60))
    # the last 60 seconds hold only the quiet returns
    assert vol.samples == 60
    assert vol.vol_1h == pytest.approx(0.06, rel=1e-9)


def test_window_emptied_by_a_long_gap_leaves_only_the_gap_return():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0, min_samples=1)
    feed(vol, alternating(0.01, 30))
    vol.on_mid(100.0, 1000 * S)
    assert vol.samples == 1


def test_bad_mids_and_backwards_time_are_ignored():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0, min_samples=1)
    vol.on_mid(100.0, 10 * S)
    for bad in (math.nan, math.inf, 0.0, -100.0):
        vol.on_mid(bad, 11 * S)
    assert vol.samples == 0
    vol.on_mid(120.0, 5 * S)  # earlier than the last sample
    assert vol.samples == 0
    vol.on_mid(100.0, 12 * S)
    assert vol.vol_1h == 0.0


def test_reset_forgets_everything():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0, min_samples=1)
    feed(vol, alternating(0.01, 20))
    vol.reset()
    assert vol.samples == 0
    assert vol.vol_1h is None
    vol.on_mid(50.0, 0)  # time may restart after a reset
    vol.on_mid(50.0, S)
    assert vol.vol_1h == 0.0


def test_ewma_of_a_constant_size_series_is_that_size():
    vol = RealizedVol(sample_interval_s=1.0, window_s=600.0, estimator="ewma")
    feed(vol, alternating(0.001, 50))
    assert vol.vol_1h == pytest.approx(0.06, rel=1e-9)


def test_ewma_converges_to_the_realized_value_on_a_stationary_alternating_series():
    # returns alternate between 0.001 and -0.002: mean r^2 per second = (1 + 4) / 2 * 1e-6
    series = [0.001 if i % 2 == 0 else -0.002 for i in range(3600)]
    realized = RealizedVol(sample_interval_s=1.0, window_s=3600.0)
    ewma = RealizedVol(sample_interval_s=1.0, window_s=3600.0, estimator="ewma")
    feed(realized, series)
    feed(ewma, series)
    expected = math.sqrt(2.5e-6 * 3600)  # 0.0949 per hour
    assert realized.vol_1h == pytest.approx(expected, rel=1e-9)
    # a 60 s half-life leaves a ripple of about alpha * 1.5e-6 / 2 on 2.5e-6: well under 1%
    assert ewma.vol_1h == pytest.approx(expected, rel=0.01)


def test_ewma_weights_by_half_life():
    # var per s starts at 1e-6; one return of r^2/dt = 4e-6 after exactly one half-life
    vol = RealizedVol(sample_interval_s=1.0, window_s=600.0, estimator="ewma", min_samples=1)
    vol.on_mid(100.0, 0)
    vol.on_mid(100.0 * math.exp(0.001), S)
    vol.on_mid(100.0 * math.exp(0.001 + 0.002 * math.sqrt(60)), 61 * S)
    # alpha = 1 - 0.5 = 0.5: var = 1e-6 + 0.5 * (4e-6 - 1e-6) = 2.5e-6
    assert vol.var_per_s == pytest.approx(2.5e-6, rel=1e-9)


def test_quiet_after_a_long_wild_spell_reads_quiet_not_float_drift():
    vol = RealizedVol(sample_interval_s=1.0, window_s=60.0)
    feed(vol, alternating(0.2, 20_000) + alternating(1e-6, 60))
    # the 20% returns have left the window; error from subtracting them must not remain
    assert vol.vol_1h == pytest.approx(60e-6, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimator": "garch"}, "estimator 'garch' is not one of realized, ewma"),
        ({"sample_interval_s": 0.0}, "sample_interval_s 0.0 must be a positive number"),
        ({"window_s": 5.0}, "fewer than min_samples 10"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(kwargs, message):
    settings = {"sample_interval_s": 1.0, "window_s": 60.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        RealizedVol(**settings)
