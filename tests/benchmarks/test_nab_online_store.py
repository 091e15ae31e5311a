"""benchmarks/nab_online_store.py: the saved errors of both networks re-score to exactly what the
online detector gives (the docs' re-scored figures rest on this), with and without a daily step."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab.tasks.anomaly import Detector

NET = dict(window=8, hidden=8, online_warm=30, online_batch=8)
STAMPS = np.datetime64("2020-01-01T00:00") + np.arange(800) * np.timedelta64(1, "h")


@pytest.mark.parametrize("stamps,novel", [(STAMPS, -1), (None, -1), (STAMPS, 1)])
def test_saved_errors_rescore_to_the_detectors_scores(store, stamps, novel):
    rng = np.random.default_rng(3)
    values = np.sin(2 * np.pi * np.arange(800) / 24) + 0.05 * rng.standard_normal(800)
    values[600:606] += 2.5  # an anomaly inside the range: the networks must see it
    saved = store.stream_errors(values, stamps, seed=1, online_pick=50, **NET)
    assert ("season" in saved) == (stamps is not None) and saved["season_period"] == (24 if stamps is not None else 0)
    got = store.default_scores(values, saved, store.Cfg(online_pick=50, long=400, online_novel=novel))
    det = Detector("online", seed=1, online_pick=50, long=400, online_novel=novel, **NET)
    want = det.fit_score(values, stamps, progress=False)
    np.testing.assert_array_equal(got, want)
    assert want[600:620].max() > 0.3  # the planted anomaly scores: the comparison is not of zeros


def test_surprise_channel_uses_no_later_row(store):
    rng = np.random.default_rng(5)
    raw = np.log1p(np.abs(rng.standard_normal(3000)) * np.where(rng.random(3000) < 0.02, 20.0, 1.0))
    z = store.surprise_z(raw, 5.0, 10, 1000)
    for t in (200, 1500, 2999):
        other = raw.copy()
        other[t:] = np.log1p(50.0)  # every later row a surprise
        np.testing.assert_array_equal(store.surprise_z(other, 5.0, 10, 1000)[:t], z[:t])
        assert store.surprise_z(other, 5.0, 10, 1000)[t] != z[t] or raw[t] > np.log1p(5.0)


def test_surprise_channel_flags_two_surprising_rows_where_surprises_come_singly(store):
    """A measure with a single wild row every 50 rows (a daily spike the forecaster cannot expect; the
    row after it forecast a little off, as ec2_cpu_utilization_24ae8d's), and once two clearly
    surprising rows in a row, each below the spikes: over 5 rows the likelihood ranks the pair below
    the spikes, the surprise count ranks it first."""
    from rnnlab.tasks.anomaly.likelihood import likelihood_z

    rng = np.random.default_rng(7)
    raw = np.log1p(np.abs(0.7 * rng.standard_normal(2000)))
    raw[25::50] = np.log1p(40.0)           # single spikes, 40 typical errors
    raw[26::50] = np.log1p(2.5)            # the row after: forecast off by 2.5 typical errors
    raw[1530:1532] = np.log1p(10.0)        # the blip: two rows of 10 typical errors, between spikes
    zs = store.surprise_z(raw, 5.0, 10, 8640)
    assert 1530 <= int(np.argmax(zs[200:])) + 200 <= 1541
    zl = likelihood_z(raw, 5, 8640)
    assert zl[1530:1542].max() < zl[200:1500].max()  # the 5-row likelihood alone does not single it out


def test_network_experiments_at_their_defaults_are_the_detectors_networks(store, nets):
    rng = np.random.default_rng(4)
    values = np.sin(2 * np.pi * np.arange(800) / 24) + 0.05 * rng.standard_normal(800)
    want = store.stream_errors(values, STAMPS, seed=2, online_pick=50, **NET)
    got = store.stream_errors(values, STAMPS, seed=2, online_pick=50, exp=nets.parse([]), **NET)
    for key in ("plain", "season"):
        assert got[key].tobytes() == want[key].tobytes()


@pytest.mark.parametrize("exp", [["steps=2"], ["cell=gru"], ["diff=1"], ["decay=100"]])
def test_network_experiments_change_the_errors_and_use_no_later_row(store, nets, exp):
    rng = np.random.default_rng(4)
    values = np.sin(2 * np.pi * np.arange(800) / 24) + 0.05 * rng.standard_normal(800)
    base = store.stream_errors(values, None, seed=2, **NET)["plain"]
    got = store.stream_errors(values, None, seed=2, exp=nets.parse(exp), **NET)["plain"]
    assert not np.array_equal(got, base)
    other = values.copy()
    other[500:] = 3.0 * np.cos(np.arange(300) / 5.0)
    again = store.stream_errors(other, None, seed=2, exp=nets.parse(exp), **NET)["plain"]
    assert again[:500].tobytes() == got[:500].tobytes() and not np.array_equal(again[500:], got[500:])


def test_first_difference_input_uses_the_row_and_the_one_before_only(nets):
    feats = np.array([[1.0, 7.0], [3.0, 7.0], [2.0, 7.0]], dtype=np.float32)
    np.testing.assert_array_equal(nets.with_diff(feats)[:, 2], [0.0, 2.0, -1.0])


def _gappy_stamps(n: int, rng) -> np.ndarray:
    """5-minute rows with a few gaps (missing rows, one of 3 hours) and a row off the grid."""
    step = np.full(n - 1, 300)
    step[rng.choice(n - 1, 6, replace=False)] = 600
    step[n // 2] = 3 * 3600
    step[n // 3] = 420
    return np.datetime64("2020-01-01T00:00") + np.concatenate([[0], np.cumsum(step)]).astype("timedelta64[s]")


@pytest.mark.parametrize("gaps", [False, True])
def test_season_neighbourhood_at_shift_0_is_the_detectors_season_column(nets, gaps):
    from rnnlab.tasks.anomaly.online import season_column

    rng = np.random.default_rng(8)
    v = rng.standard_normal(1200).astype(np.float32)
    stamps = _gappy_stamps(1200, rng) if gaps else np.datetime64("2020-01-01") + np.arange(1200) * np.timedelta64(5, "m")
    for t in (stamps, None):
        assert nets.season_at(v, 288, t, 0).tobytes() == season_column(v, 288, t).tobytes()


@pytest.mark.parametrize("gaps", [False, True])
def test_season_neighbourhood_reads_no_later_row_and_sees_the_day_before_either_side(nets, gaps):
    rng = np.random.default_rng(9)
    n, day = 1200, 288
    v = rng.standard_normal(n).astype(np.float32)
    stamps = _gappy_stamps(n, rng) if gaps else np.datetime64("2020-01-01") + np.arange(n) * np.timedelta64(5, "m")
    for t in (stamps, None):
        for shift in (-2, -1, 1, 2):
            col = nets.season_at(v, day, t, shift)
            for r in (day - 3, day + 5, 700, n - 2):
                other = v.copy()
                other[r + 1:] = 100.0  # every later row changed
                np.testing.assert_array_equal(nets.season_at(other, day, t, shift)[:r + 1], col[:r + 1])
            if not gaps:  # regular rows: row r holds the value of row r + 1 - day + shift
                np.testing.assert_array_equal(col[600:], v[600 + 1 - day + shift:n + 1 - day + shift])
    feats = np.stack([v, np.asarray(nets.season_at(v, day, None, 0))], axis=1)
    both = nets.season_input(feats, None, day, {"nbhd": 2, "nbhd_max": 0})
    assert both.shape == (n, 6) and np.array_equal(both[:, :2], feats)
    top = nets.season_input(feats, None, day, {"nbhd": 0, "nbhd_max": 2})
    np.testing.assert_array_equal(top[:, 2], np.max(both[:, 1:], axis=1))


@pytest.mark.parametrize("exp", [["nbhd=2"], ["nbhd_max=2"]])
def test_season_neighbourhood_changes_the_season_network_only_and_uses_no_later_row(store, nets, exp):
    rng = np.random.default_rng(4)
    values = np.sin(2 * np.pi * np.arange(800) / 24) + 0.05 * rng.standard_normal(800)
    base = store.stream_errors(values, STAMPS, seed=2, online_pick=50, **NET)
    got = store.stream_errors(values, STAMPS, seed=2, online_pick=50, exp=nets.parse(exp), **NET)
    assert got["plain"].tobytes() == base["plain"].tobytes() and not np.array_equal(got["season"], base["season"])
    other = values.copy()
    other[500:] = 3.0 * np.cos(np.arange(300) / 5.0)
    again = store.stream_errors(other, STAMPS, seed=2, online_pick=50, exp=nets.parse(exp), **NET)
    assert again["season"][:500].tobytes() == got["season"][:500].tobytes()
    assert not np.array_equal(again["season"][500:], got["season"][500:])


def test_the_surprise_expected_at_this_time_of_day_uses_no_later_row(store):
    """The deseason experiment: row t reads rows up to t - period + half only, and a daily-recurring
    spike is expected from the second day on while a new one is not."""
    rng = np.random.default_rng(4)
    raw = np.abs(rng.standard_normal(1000)) * 0.3
    raw[np.arange(50, 1000, 100)] = 4.0                      # a spike every "day" of 100 rows
    ref = store.seasonal_expected(raw, 100, 3)
    assert ref[150] == 4.0 and ref[50] == 0.0 and ref[777] < 4.0
    for cut in (200, 555):
        other = raw.copy()
        other[cut:] = 9.0
        np.testing.assert_array_equal(store.seasonal_expected(other, 100, 3)[:cut + 100 - 3], ref[:cut + 100 - 3])
    saved = {"season_period": 100}
    out = store.deseasoned(raw, saved, store.Cfg(deseason=3))
    assert out[150] == 0.0 and out[50] == 4.0
