"""rnnlab.timeseries.seasonality: R's acf and M4's seasonality test, with and without R's lag.max."""
import numpy as np

from rnnlab.timeseries.seasonality import acf, seasonality_test


def test_lag_max_is_what_keeps_long_seasons_out():
    # 5-minute rows: m = 288 per day, 10 days; R's lag.max = floor(10 log10 2880) = 34 < 288
    t = np.arange(2880)
    x = 10 + np.sin(2 * np.pi * t / 288) + 0.1 * np.random.default_rng(0).standard_normal(t.size)
    assert not seasonality_test(x, 288)
    assert seasonality_test(x, 288, lag_max=False)
    noise = np.random.default_rng(1).standard_normal(t.size)
    assert not seasonality_test(noise, 288, lag_max=False)
    assert not seasonality_test(x[:800], 288, lag_max=False)      # fewer than 3 seasons
    assert not seasonality_test(np.ones(2880), 288, lag_max=False)  # constant: no autocorrelation


def test_acf_lag_zero_is_one_and_matches_the_definition():
    x = np.random.default_rng(2).standard_normal(50)
    r = acf(x, 5)
    d = x - x.mean()
    assert r[0] == 1.0
    np.testing.assert_allclose(r[3], (d[3:] @ d[:-3]) / (d @ d), rtol=1e-13)


def test_acf_of_a_constant_series_is_nan():
    assert np.isnan(acf(np.ones(10), 2)).all()
