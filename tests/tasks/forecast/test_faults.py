"""Faults found from outside (issue 22): degenerate metric cases and absurd input values."""
import json
import warnings

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.timeseries.series import Series
from rnnlab.tasks.forecast import Forecaster
from rnnlab.tasks.forecast.metrics import Scores, evaluate, mase, mase_scale, owa

from .conftest import hourly_series

SMALL = dict(window=48, horizon=24, season=24, hidden_size=6, batch_size=8, eval_every=4, lr=1e-2)


def test_mase_of_a_constant_in_sample_series_is_undefined_not_an_error():
    assert mase_scale([2.0, 2, 2], 1) == 0
    assert np.isnan(mase([2.0, 2, 2], [2.0], [2.0], 1))
    assert np.isnan(mase_scale([3.0], 1))                        # one value: no difference at all


def test_evaluate_leaves_undefined_mase_series_out_of_the_mase_mean():
    s = evaluate([np.array([1.0, 2, 3]), np.array([5.0, 5, 5])], [[4.0], [5.0]], [[5.0], [6.0]], 1)
    assert s.mase == pytest.approx(1.0)                          # the constant series counts in sMAPE only
    # float64 mean of two ratios: a few ulps; approx default rel 1e-6.
    assert s.smape == pytest.approx((200 / 9 + 200 / 11) / 2)
    nothing = evaluate([np.array([5.0, 5, 5])], [[5.0]], [[5.0]], 1)
    assert nothing.smape == 0 and np.isnan(nothing.mase)


def test_owa_degenerate_cases():
    # float64 (a/b + c/d)/2 on small decimals: a few ulps; default rel 1e-6.
    assert owa(Scores(10.0, 2.0), Scores(20.0, 4.0)) == pytest.approx(0.5)
    assert owa(Scores(10.0, float("nan")), Scores(20.0, float("nan"))) == pytest.approx(0.5)   # MASE undefined
    assert owa(Scores(0.0, float("nan")), Scores(0.0, float("nan"))) == 1.0    # exact, as exact as Naive2
    assert owa(Scores(1.0, float("nan")), Scores(0.0, float("nan"))) == float("inf")  # worse than an exact Naive2
    assert owa(Scores(0.0, 0.0), Scores(0.0, 0.0)) == 1.0


def test_training_on_one_constant_series_runs_and_saves(tmp_path, capsys):
    data = tmp_path / "const.csv"
    data.write_text("value\n" + "5\n" * 600)
    run = tmp_path / "run"
    assert main(["forecast", "train", str(data), "--out", str(run), "--max-steps", "8", "--max-minutes", "0",
                 "--eval-every", "4", "--hidden-size", "4", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "selects on sMAPE" in out
    assert (run / "best.npz").is_file()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("split") == "val" and r["smape"] >= 0 for r in rows)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    return Forecaster(seed=0, **SMALL).fit(hourly_series(3, timestamps=True), out=str(root / "r"), max_steps=8,
                                           max_minutes=0)


def test_an_absurd_value_is_named_and_does_not_swamp_the_forecast(fitted):
    s = hourly_series(2, timestamps=True)
    clean = fitted.predict(s).point
    bad = s[0].values.copy()
    bad[-30] = 1e308
    with pytest.warns(UserWarning, match=r"series 's0': value 211 .*1e\+308"):
        f = fitted.predict([Series("s0", bad, s[0].timestamps), s[1]])
    assert np.isfinite(f.point).all()
    np.testing.assert_allclose(f.point[1], clean[1])                 # the other series is untouched
    typical = np.median(np.abs(s[0].values))
    assert np.max(np.abs(f.point[0])) < 100 * typical                 # one value cannot set the scale


def test_clean_inputs_raise_no_warning(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict(hourly_series(2, timestamps=True))
