"""Issue 22, fault 7: one extreme value must not make a detector blind for the rest of the file,
and absurd inputs are named in a warning."""
import numpy as np
import pytest

from rnnlab.tasks.anomaly import Detector, probationary_rows
from rnnlab.tasks.anomaly.likelihood import range_alarms

TINY = dict(window=8, hidden=6, latent=3, epochs=3, batch=16, samples=2)


def _series(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    stamps = np.datetime64("2020-01-01T00:00") + t * np.timedelta64(1, "h")
    return values, stamps


@pytest.mark.parametrize("extreme_row", [40, 200])  # in the probationary period (90 rows), and after it
@pytest.mark.parametrize("kind", ["pred", "encdec", "vae"])
def test_one_extreme_value_does_not_blind_the_detector(kind, extreme_row):
    values, stamps = _series()
    values[extreme_row] = 1e6
    values[450] = 1000.0  # a later spike
    warnings = []
    det = Detector(kind, seed=0, refit_every=0, **TINY)
    scores = det.fit_score(values, stamps, warn=warnings.append)
    start = probationary_rows(len(values))
    later = scores[max(extreme_row, start) + 60:]
    assert scores[450] >= 0.5, scores[440:460]
    assert scores[450] == later.max()  # the spike is the top of the rest of the file
    assert any(f"row {extreme_row}" in w for w in warnings), warnings
    assert not any("row 450" in w for w in warnings)  # 1000 is a spike, not absurd


def test_range_alarms_ignore_absurd_values_in_the_range():
    v = np.array([0.0, 1.0, 0.5, 1e6, 0.4, 5.0, 0.3])
    # without the mask, 1e6 widens the range and 5.0 is inside it; with it, 5.0 is an alarm
    assert range_alarms(v).tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert range_alarms(v, ignore=np.arange(7) == 3).tolist() == [0, 0, 0, 1, 0, 1, 0]
