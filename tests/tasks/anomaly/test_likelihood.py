"""The peak rule (``likelihood.peaks``, ``--peak``): one alarm per run of onsets, never looking ahead;
the likelihood at two time scales (``--slow``)."""
import argparse

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.tasks.anomaly.config import DetectorConfig
from rnnlab.tasks.anomaly.likelihood import (anomaly_likelihood, gaussian_tail, likelihood_z, onsets, peaks,
                                             two_scale_z)


def test_peaks_by_hand():
    onset = np.array([0, 0.2, 0.3, 0.5, 0, 0, 0.4, 0, 0.3, 1.0, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0])
    np.testing.assert_array_equal(peaks(onset, 3),  # run of 3 -> its 3rd row; 1 at once; cap at 3 rows
                                  [0, 0, 0, 0.5, 0, 0, 0, 0.4, 0, 1.0, 0, 0, 0, 0.3, 0, 0, 0])
    np.testing.assert_array_equal(peaks(onset, 10),  # a run's last value on the row after it
                                  [0, 0, 0, 0, 0.5, 0, 0, 0.4, 0, 1.0, 0, 0, 0, 0, 0, 0, 0.5])
    np.testing.assert_array_equal(peaks(onset, 0), onset)  # 0: every onset, as before
    np.testing.assert_array_equal(peaks(onset, 1)[[1, 6, 8, 11]], [0.2, 0.4, 0.3, 0.1])  # 1: the run's first row


def test_a_range_alarm_is_reported_after_its_runs_alarm_went_out():
    """A run of onsets whose alarm is out (its wait-th row) scores 0 after it, but for a 1 (a range
    alarm), which nothing can exceed: NAB's exchange-4_cpm's first window was lost that way."""
    onset = np.array([0.1, 0.2, 0.3, 1.0, 0.4, 0])
    np.testing.assert_array_equal(peaks(onset, 2), [0, 0.2, 0, 1.0, 0, 0])
    np.testing.assert_array_equal(peaks(onset, 10), [0, 0, 0, 1.0, 0, 0])   # a 1 ends the wait as before


def test_a_rising_run_raises_one_alarm_at_its_peak():
    score = np.array([0.1, 0.1, 0.3, 0.4, 0.45, 0.2, 0.1, 0.1])  # rises over 3 rows
    assert np.count_nonzero(onsets(score, 4) >= 0.3) == 3  # the onset rule: 3 detections at threshold 0.3
    out = peaks(onsets(score, 4), 10)
    assert np.flatnonzero(out >= 0.3).tolist() == [5] and out[5] == 0.45  # one, the peak, the row after


@pytest.mark.parametrize("post", [anomaly_likelihood, gaussian_tail])
def test_peak_scores_never_look_ahead(post):
    rng = np.random.default_rng(0)
    raw = rng.gamma(1.0, 1.0, 900)
    raw[600:606] += np.linspace(2, 12, 6)
    alarms = np.zeros(900, bool)
    alarms[[400, 700]] = True
    base = post(raw, 200, 10, long=300, warmup=20, alarms=alarms, peak=10)
    assert np.count_nonzero(base) < np.count_nonzero(post(raw, 200, 10, long=300, warmup=20, alarms=alarms))
    assert base[400] == 1.0  # a range alarm: at once
    for t in (450, 603, 605, 650):
        changed = raw.copy()
        changed[t + 1:] = rng.gamma(1.0, 5.0, 900 - t - 1)
        other = post(changed, 200, 10, long=300, warmup=20, alarms=alarms, peak=10)
        np.testing.assert_array_equal(other[:t + 1], base[:t + 1])


@pytest.mark.parametrize("name,default,given", [("peak", 10, 5), ("slow", 20, 20)])
def test_rule_setting_default_and_old_runs_keep_it_off(name, default, given):
    from rnnlab.commands.detect_nab import _options

    assert getattr(DetectorConfig(), name) == default and _options(argparse.Namespace())[name] == default
    assert _options(argparse.Namespace(), {"window": 16})[name] == 0  # an interrupted run from before the flag
    assert _options(argparse.Namespace(**{name: given}), {"window": 16})[name] == given
    with pytest.raises(ConfigError, match=f"--{name}"):
        DetectorConfig(**{name: -1}).validate()


def _spiky(n=3000, seed=0):
    """A measure with ordinary single-row spikes (a server metric's forecast errors): gamma noise, and a
    spike of 4-6 every 40-ish rows."""
    rng = np.random.default_rng(seed)
    raw = rng.gamma(2.0, 0.25, n)
    spikes = rng.choice(n, n // 40, replace=False)
    raw[spikes] += rng.uniform(4, 6, len(spikes))
    return raw


def test_two_scale_z_is_the_row_wise_larger_and_slow_0_is_the_short_window_alone():
    raw = _spiky()
    np.testing.assert_array_equal(two_scale_z(raw, 5, 0, 1000), likelihood_z(raw, 5, 1000))
    z = two_scale_z(raw, 5, 20, 1000)
    np.testing.assert_array_equal(z, np.maximum(likelihood_z(raw, 5, 1000), likelihood_z(raw, 20, 1000)))
    base = anomaly_likelihood(raw, 500, long=1000, warmup=100, peak=10)
    np.testing.assert_array_equal(anomaly_likelihood(raw, 500, long=1000, warmup=100, peak=10, slow=0), base)


def test_a_sustained_moderate_rise_hidden_among_spikes_stands_out_over_the_slow_window():
    raw = _spiky()
    quiet = np.ones(3000, bool)
    quiet[2400:2445] = False
    raw[2400:2440] = 2.5 + 0.1 * np.random.default_rng(1).standard_normal(40)  # below every spike, for 40 rows
    raw[2440:2445] = 0.5
    fast = anomaly_likelihood(raw, 500, long=2000, warmup=100, peak=10)
    both = anomaly_likelihood(raw, 500, long=2000, warmup=100, peak=10, slow=20)
    # over 5 rows the rise is no rarer than the stream's spikes; over 20 it is the rarest stretch
    assert fast[2400:2460].max() <= fast[600:2400].max()
    assert both[2400:2460].max() > both[600:2400].max()


@pytest.mark.parametrize("t", [450, 1203, 2410, 2600])
def test_two_scale_scores_never_look_ahead(t):
    rng = np.random.default_rng(2)
    raw = _spiky()
    base = anomaly_likelihood(raw, 300, 10, long=1000, warmup=50, peak=10, slow=20)
    changed = raw.copy()
    changed[t + 1:] = rng.gamma(1.0, 5.0, len(raw) - t - 1)
    np.testing.assert_array_equal(anomaly_likelihood(changed, 300, 10, long=1000, warmup=50, peak=10, slow=20)[:t + 1],
                                  base[:t + 1])
