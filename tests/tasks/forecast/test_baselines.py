"""Naive, sNaive, Naive2 (the M4 way) against loop-by-loop transcriptions of R; statsforecast wrappers."""
import math
import sys

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.tasks.forecast import baselines as B


def r_acf(x, k):
    """R's acf at lag k, written as the organisers' loop (ML_benchmarks.py's acf)."""
    m = sum(x) / len(x)
    s1 = sum((x[i] - m) * (x[i - k] - m) for i in range(k, len(x)))
    return s1 / sum((v - m) ** 2 for v in x)


def r_decompose_figure(x, f):
    """stats::decompose(type="multiplicative")$figure, transcribed with R's 1-based loops."""
    n = len(x)
    w = [0.5 / f] + [1.0 / f] * (f - 1) + [0.5 / f] if f % 2 == 0 else [1.0 / f] * f
    o = len(w) // 2
    trend = [None] * n
    for i in range(o, n - o):
        trend[i] = sum(w[j] * x[i - o + j] for j in range(len(w)))
    season = [None if t is None else v / t for v, t in zip(x, trend)]
    figure = []
    for i in range(1, f + 1):
        vals = [season[idx + i - 1] for idx in range(0, n, f) if idx + i - 1 < n and season[idx + i - 1] is not None]
        figure.append(sum(vals) / len(vals))
    mean = sum(figure) / f
    return [v / mean for v in figure]


def seasonal_series(n, m, seed=0, noise=0.05, trend=0.002):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 * (1 + trend * t) * (1 + 0.3 * np.sin(2 * np.pi * t / m)) * (1 + noise * rng.standard_normal(n))


def test_naive_and_seasonal_naive():
    x = np.array([1.0, 2, 3, 4, 5])
    np.testing.assert_array_equal(B.naive(x, 3), [5, 5, 5])
    np.testing.assert_array_equal(B.seasonal_naive(x, 5, 2), [4, 5, 4, 5, 4])
    np.testing.assert_array_equal(B.seasonal_naive(x, 2, 1), [5, 5])
    np.testing.assert_array_equal(B.seasonal_naive(x, 2, 7), [5, 5])  # shorter than a season


def test_acf_matches_loop():
    x = seasonal_series(90, 12, seed=3)
    r = B.acf(x, 14)
    # r[0] = c0/c0: exact or 1 ulp; approx default rel 1e-6.
    assert r[0] == pytest.approx(1.0)
    # float64 autocorrelations of a short series (sums of <= 100 products) vs R's formula written in Python
    # in another order: ~100 eps relative; rtol 1e-12 leaves ~50x.
    np.testing.assert_allclose(r[1:], [r_acf(list(x), k) for k in range(1, 15)], rtol=1e-12)


def test_seasonality_test_rule():
    x = seasonal_series(300, 24)
    assert B.seasonality_test(x, 24)
    r = [r_acf(list(x), k) for k in range(25)]
    limit = 1.645 / math.sqrt(300) * math.sqrt(1 + 2 * sum(v * v for v in r[1:24]))
    assert abs(r[24]) > limit
    noise = np.random.default_rng(0).uniform(50, 60, 500)
    assert not B.seasonality_test(noise, 24)
    assert not B.seasonality_test(x[:71], 24)                   # fewer than 3 seasons
    assert not B.seasonality_test(seasonal_series(200, 24), 24)  # R's lag.max = floor(10 log10 200) = 23 < 24
    assert B.seasonality_test(seasonal_series(260, 24), 24)      # lag.max 24
    assert not B.seasonality_test(x, 1)
    assert not B.seasonality_test(np.ones(100), 4)


@pytest.mark.parametrize("n, m", [(100, 12), (101, 12), (75, 7), (50, 4)])
def test_seasonal_indices_match_r_decompose(n, m):
    x = seasonal_series(n, m, seed=n)
    # float64 moving averages and means over <= 120 values, two codes: ~100 eps relative; rtol 1e-12.
    np.testing.assert_allclose(B.seasonal_indices(x, m), r_decompose_figure(list(x), m), rtol=1e-12)


def test_seasonal_indices_recover_exact_pattern():
    pattern = np.array([0.5, 1.0, 1.5, 1.0])
    x = 10 * np.tile(pattern, 6)
    # float64 indices of an exact seasonal pattern: sums of <= 120 values, ~100 eps; rtol 1e-12.
    np.testing.assert_allclose(B.seasonal_indices(x, 4), pattern, rtol=1e-12)
    with pytest.raises(ValueError, match="two seasons"):
        B.seasonal_indices(x[:7], 4)


def test_naive2_reseasonalises_naive():
    x = seasonal_series(98, 12, seed=1)  # 98 % 12 = 2: the last value sits at season position 1
    assert B.seasonality_test(x, 12)
    s = np.array(r_decompose_figure(list(x), 12))
    expect = [x[-1] / s[97 % 12] * s[(98 + k) % 12] for k in range(30)]
    # float64 seasonal division and multiplication: a few roundings per value; rtol 1e-12.
    np.testing.assert_allclose(B.naive2(x, 30, 12), expect, rtol=1e-12)
    noise = np.random.default_rng(0).uniform(50, 60, 500)
    np.testing.assert_array_equal(B.naive2(noise, 5, 24), B.naive(noise, 5))


def test_forecast_all():
    series = [seasonal_series(120, 12, seed=k) for k in range(3)]
    r = B.forecast_all("naive2", series, 18, 12)
    assert r.forecasts.shape == (3, 18) and r.seconds >= 0
    np.testing.assert_array_equal(r.forecasts[1], B.naive2(series[1], 18, 12))
    mine = B.forecast_all(lambda x, h, m: np.zeros(h), series, 4, 12)
    assert mine.forecasts.shape == (3, 4)
    with pytest.raises(ConfigError, match="unknown baseline 'thetas'"):
        B.forecast_all("thetas", series, 4, 12)
    # float64; the batched SES grid search does the same elementwise operations (no reductions) as the
    # one-series call, so they agree to ~1 ulp (measured <= 1.2e-16 under three OpenBLAS kernels); rtol 1e-12.
    np.testing.assert_allclose(B.forecast_all("theta", series, 18, 12).forecasts[2], B.theta(series[2], 18, 12), rtol=1e-12)


def test_missing_statsforecast_is_one_line_with_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsforecast", None)
    monkeypatch.setitem(sys.modules, "statsforecast.models", None)
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[baselines\]'") as info:
        B.auto_arima([np.arange(10.0)], 2, 1)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="statsforecast"):
        B.auto_ets([np.arange(10.0)], 2, 1)


def test_statsforecast_wrappers_run():
    pytest.importorskip("statsforecast", reason="statsforecast not installed (pip install -e '.[baselines]')")
    series = [seasonal_series(40 + 4 * k, 4, seed=k) for k in range(2)]  # small: AutoARIMA is slow
    for fn, kwargs in ((B.auto_ets, {}), (B.auto_arima, {"approximation": True})):
        r = fn(series, 8, season_length=4, **kwargs)
        assert r.forecasts.shape == (2, 8) and np.isfinite(r.forecasts).all() and r.seconds > 0
        assert np.all(np.abs(r.forecasts / series[0].mean() - 1) < 1)  # the right scale


def test_ses_level_minimises_the_one_step_squared_errors():
    rng = np.random.default_rng(3)
    y = 20 + np.cumsum(rng.standard_normal(60)) + rng.standard_normal(60)

    def sse(alpha, l0):
        level, total = l0, 0.0
        for v in y:
            total += (v - level) ** 2
            level = alpha * v + (1 - alpha) * level
        return total, level

    alpha, final = B.ses_level(y)
    best_l0 = min(np.linspace(y[0] - 5, y[0] + 5, 2001), key=lambda l0: sse(alpha, l0)[0])
    # the final level depends on l0 only through (1-alpha)^60 (alpha ~ 0.5: ~1e-18), so the grid's l0 does not
    # matter; what is left is float64 rounding of 60 recursions in two forms, ~60 eps of a level ~20 (measured 0).
    # rel 1e-10 (was abs 1e-2, ~1e-3 relative: loose enough to pass a wrong alpha) still leaves 1e4x.
    assert final == pytest.approx(sse(alpha, best_l0)[1], rel=1e-10)
    ours = sse(alpha, best_l0)[0]
    for a in np.linspace(1e-4, 1 - 1e-4, 301):           # no alpha on a fine grid does better
        for l0 in np.linspace(y[0] - 3, y[0] + 3, 61):
            assert sse(a, l0)[0] >= ours - 1e-6 * ours


def test_theta_is_ses_with_half_the_trend_on_the_deseasonalised_series():
    t = np.arange(1, 101, dtype=np.float64)
    line = 10 + 0.5 * t
    f = B.theta(line, 6, 1)                        # a straight line: SES follows it (alpha -> 1)
    # not rounding: SES's alpha grid search stops just below 1 on a straight line, so the forecast misses the
    # line's by ~4e-7 relative (measured, identical under three OpenBLAS kernels: no BLAS involved); rtol 1e-5
    # leaves 25x (was 1e-3, 2500x); a missing half-trend is off by ~10 %.
    np.testing.assert_allclose(f, 0.5 * line[-1] + 0.5 * (10 + 0.5 * np.arange(101, 107)), rtol=1e-5)
    # a constant series: every operation is exact or 1 ulp in float64; default rtol 1e-7.
    np.testing.assert_allclose(B.theta(np.full(30, 7.0), 4, 1), 7.0)
    assert (B.theta(100 - 3.0 * t, 50, 1) >= 0).all()   # a falling line's forecasts stop at 0, as M4's code
    # seasonal: the forecast is the deseasonalised Theta times the last season's indices
    x = seasonal_series(120, 12, seed=1)
    assert B.seasonality_test(x, 12)
    s = B.seasonal_indices(x, 12)
    # float64 same operations in another grouping (deseasonalise, Theta, reseasonalise): a few hundred eps
    # at most; default rtol 1e-7 is loose but any wrong index is off by the seasonal amplitude (~10 %).
    np.testing.assert_allclose(B.theta(x, 18, 12),
                               B.theta_classic(x / s[np.arange(120) % 12], 18) * s[(120 + np.arange(18)) % 12])
    assert not np.allclose(B.theta(x, 18, 12), B.theta(x, 18, 1))


def test_theta_matches_statsforecast():
    """statsforecast's ``Theta`` is Fiorucci et al.'s state-space form of the same method (SES with drift b/2,
    fitted by its own optimiser), not M4's two-line R code: the forecasts agree closely, not to rounding
    (on M4 Hourly: median relative difference 9e-5, at most 0.7 %)."""
    models = pytest.importorskip("statsforecast.models", reason="statsforecast not installed")
    diffs = []
    for k, (n, m) in enumerate(((120, 12), (300, 24), (60, 4), (80, 1), (200, 1))):
        x = seasonal_series(n, m, seed=k) if m > 1 else 50 + np.cumsum(np.random.default_rng(k).normal(0.3, 1, n))
        ref = np.asarray(models.Theta(season_length=m).forecast(y=x, h=2 * max(m, 4))["mean"])
        diffs.append(np.abs(B.theta(x, len(ref), m) / ref - 1))
    diffs = np.concatenate(diffs)
    assert np.median(diffs) < 5e-3 and diffs.max() < 1e-2   # a misplaced season or a lost drift: several %
