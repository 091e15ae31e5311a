"""The Python API (Forecaster), ensembles, save/load, and one-line errors for bad input."""
import numpy as np
import pytest

from rnnlab.errors import CheckpointError, DataError
from rnnlab.tasks.forecast import Forecaster
from rnnlab.tasks.forecast.data import read_csv

from .conftest import hourly_series, write_long_csv

SMALL = dict(window=48, horizon=24, season=24, hidden_size=8, batch_size=16, eval_every=20, lr=1e-2)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    series = hourly_series(5, timestamps=True)
    fcs = [Forecaster(seed=s, **SMALL).fit(series, out=str(root / f"s{s}"), max_steps=40, max_minutes=0)
           for s in (0, 1)]
    return root, series, fcs


def test_fit_predict_shapes_intervals_and_evaluate(fitted):
    root, series, (fc, _) = fitted
    f = fc.predict(series)
    assert f.point.shape == (5, 24) and f.quantiles.shape == (5, 24, 3) and f.levels == [0.1, 0.5, 0.9]
    assert np.all(f.lower <= f.point) and np.all(f.point <= f.upper) and np.isfinite(f.quantiles).all()
    assert fc.predict(series, horizon=6).point.shape == (5, 6)
    hist = [s.__class__(s.id, s.values[:-24], s.timestamps[:-24]) for s in series]
    out = fc.evaluate(hist, np.stack([s.values[-24:] for s in series]))
    assert {"smape", "mase", "owa", "coverage"} <= out.keys()
    assert out["owa"] < 1.0  # beats Naive2 on clean seasonal data (starts at seasonal naive)


def test_save_load_and_ensemble(fitted, tmp_path):
    root, series, (a, b) = fitted
    path = a.save(tmp_path / "model.npz")
    again = Forecaster.load(path)
    np.testing.assert_array_equal(again.predict(series).quantiles, a.predict(series).quantiles)
    np.testing.assert_array_equal(Forecaster.load(root / "s0").predict(series).point, a.predict(series).point)
    ens = Forecaster.load(root / "s0", root / "s1")
    # float64 mean of two forecasts (same decode in both): ~1 ulp relative; rtol 1e-12.
    np.testing.assert_allclose(ens.predict(series).quantiles,
                               (a.predict(series).quantiles + b.predict(series).quantiles) / 2, rtol=1e-12)


def test_an_ensemble_of_different_models_is_refused(fitted, tmp_path):
    root, series, _ = fitted
    other = Forecaster(**{**SMALL, "hidden_size": 4}).fit(series, out=str(tmp_path / "o"), max_steps=2, max_minutes=0)
    with pytest.raises(CheckpointError, match="same settings"):
        Forecaster.load(root / "s0", other.run_dir)


def test_a_series_shorter_than_the_window_is_forecast_from_the_values_it_has(fitted):
    _, series, (fc, _) = fitted
    full = fc.predict(series[:2]).point
    short = [series[0], series[1].__class__("tiny", series[1].values[:10]), series[2].__class__("one", [7.0])]
    f = fc.predict(short)
    assert f.point.shape == (3, 24) and np.isfinite(f.quantiles).all()
    np.testing.assert_allclose(f.point[0], full[0])          # grouping by length changes nothing for the rest
    assert np.all(f.point[2] > 0)                             # log scale: one value is a level


def test_a_horizon_longer_than_the_models_is_refused(fitted):
    _, series, (fc, _) = fitted
    with pytest.raises(DataError, match=r"--horizon 30 is longer than the model's horizon of 24"):
        fc.predict(series, horizon=30)


def test_non_positive_values_for_a_log_scale_model(fitted):
    _, series, (fc, _) = fitted
    bad = [series[0].__class__("neg", series[0].values - 100)]
    with pytest.raises(DataError, match="series 'neg' has values <= 0"):
        fc.predict(bad)


def test_bad_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_csv(empty)
    with pytest.raises(DataError, match="no such file"):
        read_csv(tmp_path / "missing.csv")
    text = tmp_path / "text.csv"
    text.write_text("timestamp,value\n2024-01-01 00:00,1.0\n2024-01-01 01:00,abc\n2024-01-01 02:00,3\n")
    with pytest.raises(DataError) as info:
        read_csv(text)
    assert "\n" not in str(info.value) and "abc" in str(info.value)


def test_csv_round_trip_gives_hourly_timestamps(tmp_path):
    path = write_long_csv(tmp_path / "s.csv", hourly_series(2, length=60, timestamps=True))
    series = read_csv(path)
    assert [s.id for s in series] == ["s0", "s1"] and series[0].timestamps is not None
