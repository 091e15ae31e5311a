"""benchmarks/nab_online_store.py: the saved errors of both networks re-score to exactly what the
online detector gives (the docs' re-scored figures rest on this), with and without a daily step."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab.tasks.anomaly import Detector

NET = dict(window=8, hidden=8, online_warm=30, online_batch=8)
STAMPS = np.datetime64("2020-01-01T00:00") + np.arange(800) * np.timedelta64(1, "h")


@pytest.mark.parametrize("stamps", [STAMPS, None])
def test_saved_errors_rescore_to_the_detectors_scores(store, stamps):
    rng = np.random.default_rng(3)
    values = np.sin(2 * np.pi * np.arange(800) / 24) + 0.05 * rng.standard_normal(800)
    values[600:606] += 2.5  # an anomaly inside the range: the networks must see it
    saved = store.stream_errors(values, stamps, seed=1, online_pick=50, **NET)
    assert ("season" in saved) == (stamps is not None) and saved["season_period"] == (24 if stamps is not None else 0)
    got = store.default_scores(values, saved, store.Cfg(online_pick=50, long=400))
    det = Detector("online", seed=1, online_pick=50, long=400, **NET)
    want = det.fit_score(values, stamps, progress=False)
    np.testing.assert_array_equal(got, want)
    assert want[600:620].max() > 0.3  # the planted anomaly scores: the comparison is not of zeros
