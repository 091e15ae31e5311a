"""Training windows, per-window normalisation, calendar features."""
import numpy as np
import pytest

from rnnlab.timeseries.series import Series
from rnnlab.timeseries.windows import (all_windows, calendar_features, denormalize, gather, last_windows, normalize,
                                 periodic_features, sample_windows, window_counts)
from rnnlab.errors import DataError


def ramps():
    # series k holds 1000*k + position, so every value says where it came from
    return [np.arange(n, dtype=float) + 1000 * k for k, n in enumerate((30, 12, 5, 100))]


@pytest.mark.parametrize("by", ["series", "position"])
def test_windows_are_consecutive_and_within_cutoff(by):
    series = ramps()
    w = sample_windows(series, 6, 3, 500, by=by, cutoff=-3, seed=1)
    assert w.x.shape == (500, 6) and w.y.shape == (500, 3)
    full = np.concatenate([w.x, w.y], axis=1)
    np.testing.assert_array_equal(np.diff(full, axis=1), 1)
    np.testing.assert_array_equal(w.series_index, full[:, 0] // 1000)
    np.testing.assert_array_equal(w.start, full[:, 0] % 1000)
    lengths = np.array([len(s) for s in series])
    assert (w.start + 9 <= lengths[w.series_index] - 3).all()  # no look-ahead past the cutoff
    assert 2 not in w.series_index  # too short: 5 - 3 < 9


def test_sampling_is_seeded_and_uniform_as_asked():
    series = ramps()
    a = sample_windows(series, 4, 2, 200, seed=7)
    b = sample_windows(series, 4, 2, 200, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, sample_windows(series, 4, 2, 200, seed=8).x)
    counts = window_counts(series, 4, 2)
    np.testing.assert_array_equal(counts, [25, 7, 0, 95])
    n = 20000
    by_series = np.bincount(sample_windows(series, 4, 2, n, seed=0).series_index, minlength=4) / n
    # not rounding: sampling frequencies of n=20000 seeded draws; binomial sd sqrt(p(1-p)/n) <= 0.0035,
    # so atol 0.02 is ~6 sd, and a wrong weighting (0.25 vs 1/3, or a series that must get 0) is caught.
    np.testing.assert_allclose(by_series, [1 / 3, 1 / 3, 0, 1 / 3], atol=0.02)
    by_pos = np.bincount(sample_windows(series, 4, 2, n, by="position", seed=0).series_index, minlength=4) / n
    # same: frequencies of 20000 draws, sd <= 0.0035 per bin; atol 0.02 ~6 sd (seeded, so deterministic).
    np.testing.assert_allclose(by_pos, counts / counts.sum(), atol=0.02)


def test_accepts_series_objects_and_reports_too_short():
    s = [Series("a", np.arange(10.0))]
    w = sample_windows(s, 3, 2, 5)
    assert w.x.shape == (5, 3)
    with pytest.raises(DataError, match="no series has the 11 values"):
        sample_windows(s, 9, 2, 5)
    with pytest.raises(ValueError, match="does not fit"):
        gather(s, [0], [8], 3, 2)


def test_all_and_last_windows():
    series = ramps()[:2]
    w = all_windows(series, 5, 2, stride=3)
    assert w.start.tolist() == [0, 3, 6, 9, 12, 15, 18, 21, 0, 3]
    assert w.series_index.tolist() == [0] * 8 + [1] * 2
    np.testing.assert_array_equal(last_windows(series, 4), [[26, 27, 28, 29], [1008, 1009, 1010, 1011]])
    with pytest.raises(DataError, match="fewer than 13"):
        last_windows(series, 13)


@pytest.mark.parametrize("level", ["last", "mean", "none"])
@pytest.mark.parametrize("log", [False, True])
def test_normalize_roundtrip(level, log):
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 100, (8, 6))
    y = rng.uniform(1, 100, (8, 3))
    n = normalize(x, y, level=level, log=log)
    expect = {"last": x[:, -1], "mean": x.mean(1), "none": np.ones(8)}[level]
    # float64 mean of 6 values / a copy: a few ulps; default rtol 1e-7.
    np.testing.assert_allclose(n.level, expect)
    if level == "last":
        # float64 x/x = 1 exactly, log(x/x) = 0 (or log x - log x = 0): exact or ~1 ulp; atol 1e-12.
        np.testing.assert_allclose(n.x[:, -1], 0.0 if log else 1.0, atol=1e-12)
    # float64 divide-then-multiply (or log-then-exp) of values in [1, 100]: a few ulps (~1e-15 relative);
    # rtol 1e-12 leaves ~1000x.
    np.testing.assert_allclose(denormalize(n.y, n.level, log=log), y, rtol=1e-12)
    # same round trip as above: a few float64 ulps; rtol 1e-12.
    np.testing.assert_allclose(denormalize(n.x, n.level, log=log), x, rtol=1e-12)


def test_normalize_zero_level_and_log_errors():
    n = normalize(np.array([[1.0, 0.0]]))
    assert n.level.tolist() == [1.0]
    with pytest.raises(DataError, match="window 1: log normalisation"):
        normalize(np.array([[1.0, 2.0], [1.0, -1.0]]), log=True, level="mean")


def test_calendar_features_hour_and_dow():
    t = np.array(["2024-01-01T00:00", "2024-01-01T06:00", "2024-01-03T12:00", "2024-01-07T18:00"],
                 dtype="datetime64[s]")  # 2024-01-01 was a Monday
    f = calendar_features(t)
    assert f.shape == (4, 4)
    np.testing.assert_allclose(f[:2, :2], [[0, 1], [1, 0]], atol=1e-12)  # hour 0, hour 6
    dow = (np.array([0, 0.25, 2.5, 6.75])) * 2 * np.pi / 7
    # float64 sin/cos of angles < 2*pi computed in two ways: a few ulps of the angle (< 1e-15); atol 1e-12.
    np.testing.assert_allclose(f[:, 2:], np.stack([np.sin(dow), np.cos(dow)], 1), atol=1e-12)
    # same function, same inputs, a column subset: bit-identical in practice; default rtol 1e-7 is generous.
    np.testing.assert_allclose(calendar_features(t, ("hour",)), f[:, :2])
    with pytest.raises(ValueError, match="calendar feature"):
        calendar_features(t, ("month",))


def test_periodic_features_match_calendar_for_hourly_positions():
    t0 = np.datetime64("2024-01-01T00:00", "s")
    stamps = t0 + np.arange(200) * np.timedelta64(3600, "s")
    # float64 sin/cos of angles up to 2*pi*200/24 ~ 52 rad, from positions vs from datetime seconds:
    # argument rounding ~52*eps ~ 1e-14; atol 1e-9 is loose but any wrong phase is off by O(0.1).
    np.testing.assert_allclose(periodic_features(np.arange(200), (24, 168)), calendar_features(stamps), atol=1e-9)
    f = periodic_features(np.arange(48), (24,), offset=5)
    # float64 sin/cos of the same angle written out: a few ulps; default rtol 1e-7.
    np.testing.assert_allclose(f[0], [np.sin(2 * np.pi * 5 / 24), np.cos(2 * np.pi * 5 / 24)])
    # one period apart: angles differ by 2*pi in float64, so values differ by ~|angle|*eps < 1e-14; atol 1e-12.
    np.testing.assert_allclose(f[:24], f[24:], atol=1e-12)
