"""Time features: the phase counts from the series' end (the forecast origin), so a history cut at the
front keeps its features; timestamps give the true hour and weekday."""
import numpy as np
import pytest

from rnnlab.tasks.forecast import features as F

from .conftest import hourly_series, spec_of


def _features_of_last(spec, s, k, phase):
    """Time features of a series' last k values and of its forecast horizon, encoded as the forecaster does."""
    L = len(s)
    e = F.encode(spec, s.values[None, :], [F.clock(s, phase)], np.array([0]), dtype=np.float64)
    return e.x[0, L - k:, 1:], e.u[0, :, 1:]


@pytest.mark.parametrize("timestamps", [False, True])
def test_time_features_of_the_last_values_do_not_change_when_the_history_is_cut_at_the_front(timestamps):
    from rnnlab.tasks.forecast.data import last_values
    spec = spec_of(horizon=48)
    full = hourly_series(1, length=500, timestamps=timestamps)[0]
    for n in (72, 200, 31):
        cut = last_values([full], n)[0]
        assert len(cut) == n and cut.values[-1] == full.values[-1]
        a_enc, a_dec = _features_of_last(spec, full, n, "end")
        b_enc, b_dec = _features_of_last(spec, cut, n, "end")
        # float64 sin/cos of positions counted from the end, from a full and a cut series: angles up to
        # 2*pi*500/24 ~ 130 rad, so argument rounding ~130*eps ~ 3e-14; atol 1e-9 is loose, a wrong phase is O(1).
        np.testing.assert_allclose(b_enc, a_enc, atol=1e-9)
        # same as above for the decoder's features: ~3e-14; atol 1e-9.
        np.testing.assert_allclose(b_dec, a_dec, atol=1e-9)
    if not timestamps:   # the old phase (from the first value) moves with the cut: what the change fixes
        a_enc, _ = _features_of_last(spec, full, 72, "start")
        b_enc, _ = _features_of_last(spec, last_values([full], 72)[0], 72, "start")
        assert np.abs(a_enc - b_enc).max() > 0.5
        # from the end: the first forecast step is at phase 0 of every period
        _, dec = _features_of_last(spec, full, 1, "end")
        # phase 0 of every period: sin(0) = 0 and cos(0) = 1 exactly, or 1 ulp from 2*pi*k/p; atol 1e-12.
        np.testing.assert_allclose(dec[0], [0, 1, 0, 1], atol=1e-12)


def test_training_windows_and_forecasts_share_the_phase_counted_from_the_end():
    """A window drawn inside a series (training) gets the features a forecast from a history ending at the
    same position of the full series would get, when that series carries its full length."""
    from rnnlab.tasks.forecast.task import ForecastTask
    s = hourly_series(1, length=400)[0]
    spec = spec_of(horizon=24, window=48, phase="end", quantiles=[0.5])
    task = ForecastTask(spec, [s], batch=4, seed=0)
    assert task.clocks[0] == F.Clock(-400.0, 1.0)
    e, _ = task.next_batch()
    # every training window's features: sin/cos of (position - series length)
    w = F.encode(spec, np.stack([s.values[:48]]), [task.clocks[0]], np.array([0]), dtype=np.float64)
    t = np.arange(48) - 400.0
    # float64 sin of angles up to 2*pi*400/24 ~ 105 rad from two formulas: ~105*eps ~ 2e-14; atol 1e-9.
    np.testing.assert_allclose(w.x[0, :, 1], np.sin(2 * np.pi * t / 24), atol=1e-9)
    assert e.x.shape[-1] == 5
