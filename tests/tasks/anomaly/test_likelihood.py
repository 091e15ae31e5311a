"""The peak rule (``likelihood.peaks``, ``--peak``): one alarm per run of onsets, never looking ahead."""
import argparse

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.tasks.anomaly.config import DetectorConfig
from rnnlab.tasks.anomaly.likelihood import anomaly_likelihood, gaussian_tail, onsets, peaks


def test_peaks_by_hand():
    onset = np.array([0, 0.2, 0.3, 0.5, 0, 0, 0.4, 0, 0.3, 1.0, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0])
    np.testing.assert_array_equal(peaks(onset, 3),  # run of 3 -> its 3rd row; 1 at once; cap at 3 rows
                                  [0, 0, 0, 0.5, 0, 0, 0, 0.4, 0, 1.0, 0, 0, 0, 0.3, 0, 0, 0])
    np.testing.assert_array_equal(peaks(onset, 10),  # a run's last value on the row after it
                                  [0, 0, 0, 0, 0.5, 0, 0, 0.4, 0, 1.0, 0, 0, 0, 0, 0, 0, 0.5])
    np.testing.assert_array_equal(peaks(onset, 0), onset)  # 0: every onset, as before
    np.testing.assert_array_equal(peaks(onset, 1)[[1, 6, 8, 11]], [0.2, 0.4, 0.3, 0.1])  # 1: the run's first row


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


def test_peak_setting_default_and_old_runs_keep_it_off():
    from rnnlab.commands.detect_nab import _options

    assert DetectorConfig().peak == 10 and _options(argparse.Namespace())["peak"] == 10
    assert _options(argparse.Namespace(), {"window": 16})["peak"] == 0  # an interrupted run from before --peak
    assert _options(argparse.Namespace(peak=5), {"window": 16})["peak"] == 5
    with pytest.raises(ConfigError, match="--peak"):
        DetectorConfig(peak=-1).validate()
