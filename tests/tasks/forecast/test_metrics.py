"""M4 metrics on hand-computed cases, and the organisers' published M4 Hourly figures on the real data."""
from pathlib import Path

import numpy as np
import pytest

from rnnlab.tasks.forecast.metrics import Scores, evaluate, mase, mase_points, mase_scale, owa, smape, smape_points

DATA_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data"
needs_m4 = pytest.mark.skipif(not (DATA_DIR / "m4").is_dir(),
                              reason=f"M4 Hourly data not found in {DATA_DIR / 'm4'} (../shared/data from the repo root)")


def test_smape_by_hand():
    y, f = np.array([100.0, 50.0, 0.0, 10.0]), np.array([110.0, 50.0, 0.0, -10.0])
    # float64 200*|y-f|/(|y|+|f|) on small integers: 1-2 roundings; default rtol 1e-7.
    np.testing.assert_allclose(smape_points(y, f), [200 * 10 / 210, 0, 0, 200])
    # float64 mean of 4 such values: a few ulps; approx default rel 1e-6.
    assert smape(y, f) == pytest.approx((200 * 10 / 210 + 200) / 4)
    with pytest.raises(ValueError, match="differ in shape"):
        smape([1, 2], [1])


def test_mase_by_hand_and_short_series_fallback():
    x = np.array([1.0, 3, 2, 5, 4, 4])
    assert mase_scale(x, 2) == pytest.approx(np.mean([1, 2, 2, 1]))   # |2-1| |5-3| |4-2| |4-5|
    # float64 mean of 5 integers: 1 rounding; default rel 1e-6.
    assert mase_scale(x, 1) == pytest.approx(np.mean([2, 1, 3, 1, 0]))
    assert mase_scale(x, 24) == mase_scale(x, 1)                      # n <= m: m = 1
    # float64 ratio of small-integer means: a few ulps; default rel 1e-6.
    assert mase(x, [5, 7], [4, 4], 2) == pytest.approx(2 / 1.5)
    # same ratios per point: a few ulps; default rtol 1e-7.
    np.testing.assert_allclose(mase_points(x, [5, 7], [4, 4], 2), [1 / 1.5, 3 / 1.5])
    assert np.isnan(mase([2.0, 2, 2], [1], [1], 1))                 # constant: undefined (test_faults.py)


def test_evaluate_averages_points_then_owa_is_ratio_of_averages():
    ins = [np.arange(1.0, 11), np.arange(10.0, 0, -1)]
    act = np.array([[11.0, 12], [1, 1]])
    fc = np.array([[10.0, 10], [2, 3]])
    s = evaluate(ins, act, fc, m=1)
    pts = np.concatenate([smape_points(a, f) for a, f in zip(act, fc)])
    # float64 mean of the same points in another order: a few ulps; default rel 1e-6.
    assert s.smape == pytest.approx(pts.mean())
    assert s.mase == pytest.approx(np.mean([1, 2, 1, 2]))              # both scales are 1
    n2 = Scores(2 * s.smape, 4 * s.mase)
    # float64 (a/b + c/d)/2: a few ulps; default rel 1e-6.
    assert owa(s, n2) == pytest.approx((0.5 + 0.25) / 2)
    with pytest.raises(ValueError, match="counts must agree"):
        evaluate(ins, act[:1], fc, 1)


@needs_m4
def test_published_m4_hourly_figures():
    """Organisers' M4 Hourly results: Naive 43.003/11.608, sNaive 13.912/1.193, Naive2 18.383/2.395,
    OWA of sNaive 0.627 (the table's OWA is that of the rounded sMAPE and MASE: the unrounded
    ratio is 0.62750)."""
    from rnnlab.timeseries.series import load_m4
    from rnnlab.tasks.forecast.baselines import forecast_all

    data = load_m4("m4-hourly", DATA_DIR)
    ins = [s.values for s in data.train]
    got = {m: evaluate(ins, data.test, forecast_all(m, ins, 48, 24).forecasts, 24)
           for m in ("naive", "snaive", "naive2")}
    rounded = {m: Scores(round(s.smape, 3), round(s.mase, 3)) for m, s in got.items()}
    assert rounded["snaive"] == (13.912, 1.193)
    assert rounded["naive2"] == (18.383, 2.395)
    assert rounded["naive"] == (43.003, 11.608)
    assert round(owa(rounded["snaive"], rounded["naive2"]), 3) == 0.627
    # M4's published OWA is given to 3 decimals (0.627): off by <= 5e-4; abs 1e-3.
    assert owa(got["snaive"], got["naive2"]) == pytest.approx(0.627, abs=1e-3)
    assert owa(got["naive2"], got["naive2"]) == 1.0
