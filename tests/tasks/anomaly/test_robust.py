"""Issue 22, fault 7: one extreme value must not make a detector blind for the rest of the file,
and absurd inputs are named in a warning."""
import numpy as np
import pytest

from rnnlab.tasks.anomaly import Detector, probationary_rows
from rnnlab.tasks.anomaly.likelihood import range_alarms, range_scores
from rnnlab.tasks.anomaly.robust import absurd_rows, range_exempt

TINY = dict(window=8, hidden=6, latent=3, epochs=3, batch=16, samples=2)


def _series(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n)
    stamps = np.datetime64("2020-01-01T00:00") + t * np.timedelta64(1, "h")
    return values, stamps


@pytest.mark.parametrize("extreme_row", [40, 200])  # in the probationary period (90 rows), and after it
@pytest.mark.parametrize("kind", ["pred", "encdec", "vae", "online"])
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


def test_absurd_values_that_recur_widen_the_range():
    """A metric idling near 0.1 that jumps to about 100 every 300 rows (NAB's ec2_cpu_utilization_77c1ca):
    the jumps are absurd next to the idle rows' spread, but they are the stream's own pattern. The
    first stretch of them stays out of the range (one absurd value must not hide later spikes); the
    next one raises its alarm and widens the range, so the jumps raise 2 alarms, not one per jump."""
    rng = np.random.default_rng(0)
    v = 0.1 + 0.001 * rng.standard_normal(3000)
    jumps = np.arange(500, 3000, 300)  # after the 450 probationary rows
    for j in jumps:
        v[j:j + 3] = 97.0 + rng.random(3)
    start = probationary_rows(len(v))
    assert absurd_rows(v, start)[jumps].all()
    exempt = range_exempt(v, start)
    assert exempt[500:503].all() and not exempt[800:].any()
    onsets = np.flatnonzero(range_scores(v, start, warmup=0) == 1.0)
    assert onsets.tolist() == [500, 800], onsets  # the first two jumps, then none
    every = range_alarms(v, ignore=absurd_rows(v, start))
    assert every[jumps].all()  # the mask of all absurd rows: an alarm at every jump
    # one absurd burst is still kept out of the range: a later spike inside its range is an alarm
    w = np.sin(np.arange(600) / 5.0)
    w[200:202] = 1e6
    w[450] = 1000.0
    assert range_alarms(w, ignore=range_exempt(w, 90))[450]
