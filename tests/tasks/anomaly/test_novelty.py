"""The value-novelty channel (rnnlab.tasks.anomaly.novelty): rows up to t only, a never-seen value
flagged and a familiar one not, two novel rows in a row above one, and its place in the likelihood."""
import numpy as np
import pytest

from rnnlab.tasks.anomaly import Detector
from rnnlab.tasks.anomaly.likelihood import anomaly_likelihood
from rnnlab.tasks.anomaly.novelty import NOVEL_BINS, novel_rows, novelty_z


def _stream(n=3000, seed=0):
    """A quiet level with noise and a regular spike every 289 rows (values about 1.5-2.3)."""
    rng = np.random.default_rng(seed)
    v = 0.13 + 0.01 * rng.standard_normal(n)
    v[np.arange(100, n, 289)] = rng.uniform(1.5, 2.3, len(range(100, n, 289)))
    return v


def test_novel_rows_use_no_later_row():
    v = _stream()
    base = novel_rows(v, 500, 1)
    for cut in (600, 1777, 2999):
        changed = v.copy()
        changed[cut:] = np.linspace(-5, 5, len(v) - cut)
        np.testing.assert_array_equal(novel_rows(changed, 500, 1)[:cut], base[:cut])


def test_a_value_never_taken_is_novel_and_a_familiar_one_is_not():
    v = _stream()
    v[2500], v[2501] = 0.6, 0.33    # between the level and the spikes: no earlier row near them
    nov = novel_rows(v, 500, 1)
    assert nov[2500] == 1.0 and nov[2501] == 1.0
    level = np.flatnonzero(np.abs(v - 0.13) < 0.02)
    assert nov[level[level > 600]].sum() == 0          # the level itself is never news
    # `most` earlier rows in the bucket still count as novel, one more does not
    w = np.array([0.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(novel_rows(w, 2, 1), [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(novel_rows(w, 2, 0), [1, 1, 1, 0, 0, 0])


def test_buckets_are_the_probationary_range_cut_in_130_and_a_flat_probation_still_has_some():
    w = np.concatenate([np.linspace(0.0, 1.0, 100), [0.5 + 0.4 / NOVEL_BINS, 0.5 + 4.0 / NOVEL_BINS]])
    nov = novel_rows(w, 100, 0)
    assert nov[100] == 0.0 and nov[101] == 0.0          # neighbours of earlier values' buckets
    flat = np.concatenate([np.full(50, 3.0), [3.0, 3.0 + 3.0 * 5 / NOVEL_BINS]])
    nov = novel_rows(flat, 50, 0)
    assert nov[50] == 0.0 and nov[51] == 1.0


def test_two_novel_rows_in_a_row_stand_out_where_novel_rows_come_singly():
    """HTM's pair: single novel rows now and then give a z of about 4, two in a row much more."""
    b = np.zeros(4000)
    b[np.arange(300, 3600, 289)] = 1.0       # single novel rows (a daily spike that varies)
    b[3700:3702] = 1.0                       # a pair
    z = novelty_z(b, 8640)
    assert z[3701] > 1.5 * z[np.arange(300, 3600, 289)].max()


def test_novelty_z_uses_no_later_row():
    rng = np.random.default_rng(1)
    b = (rng.random(2000) < 0.02).astype(float)
    z = novelty_z(b, 8640)
    for cut in (10, 999):
        other = b.copy()
        other[cut:] = 1.0 - other[cut:]
        np.testing.assert_array_equal(novelty_z(other, 8640)[:cut], z[:cut])


def test_the_likelihood_without_the_channel_is_unchanged_and_with_it_uses_no_later_row():
    rng = np.random.default_rng(2)
    raw = np.abs(rng.standard_normal(3000))
    v = _stream()
    plain = anomaly_likelihood(raw, 500, 32, warmup=100, slow=20, peak=10)
    np.testing.assert_array_equal(anomaly_likelihood(raw, 500, 32, warmup=100, slow=20, peak=10, novel=None), plain)
    v[2500:2502] = (0.6, 0.33)
    with_novel = anomaly_likelihood(raw, 500, 32, warmup=100, slow=20, peak=10, novel=novel_rows(v, 500, 1))
    assert not np.array_equal(with_novel, plain)
    changed = v.copy()
    changed[2400:] = 7.0
    other = anomaly_likelihood(raw, 500, 32, warmup=100, slow=20, peak=10, novel=novel_rows(changed, 500, 1))
    # the peak rule may hold an alarm back up to 10 rows; nothing earlier than the change moves
    np.testing.assert_array_equal(other[:2400], with_novel[:2400])


def test_the_online_detector_flags_a_never_seen_blip_with_the_channel():
    v = _stream(2000)
    v[1700:1702] = (0.6, 0.33)
    kw = dict(window=8, hidden=8, online_warm=30, online_batch=8, long=1000)
    off = Detector("online", seed=0, online_novel=-1, **kw).fit_score(v, progress=False)
    on = Detector("online", seed=0, online_novel=1, **kw).fit_score(v, progress=False)
    assert on[1700:1712].max() > off[1700:1712].max()
    assert on[1700:1712].max() >= np.sort(on[400:1690])[-1]     # the top score after the warm-up rows


@pytest.mark.parametrize("bad", [-2, -10])
def test_a_bad_count_is_one_line(bad):
    from rnnlab.errors import ConfigError

    with pytest.raises(ConfigError, match="--online-novel"):
        Detector("online", online_novel=bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_value_that_is_not_finite_is_named(bad):
    """The detector refuses such a file first; called directly, the channel names the row too."""
    with pytest.raises(ValueError, match="row 2 is not a finite number"):
        novel_rows(np.array([1.0, 2.0, bad, 3.0]), 2, 3)
