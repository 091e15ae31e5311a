"""The typed model spec (ForecastSpec): the checkpoint's ``meta["model"]`` dict unchanged, old runs' dicts
loaded with the defaults of their missing optional keys, and ill-typed or unknown values refused in one line."""
import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.cli import main
from rnnlab.errors import CheckpointError
from rnnlab.tasks.forecast import ForecastConfig, Forecaster
from rnnlab.tasks.forecast.model import make_model
from rnnlab.tasks.forecast.spec import ForecastSpec
from rnnlab.tasks.forecast.task import KIND, make_spec

from .conftest import hourly_series, spec_of, write_long_csv

# meta["model"] as the forecaster wrote it before the spec was typed (key order included), for
# ForecastConfig(window=48, horizon=12, season=24) on positive hourly series
WRITTEN = {"model": "encdec", "cell": "gru", "hidden_size": 64, "num_layers": 1, "seed": 0, "window": 48,
           "horizon": 12, "season": 24, "norm": "log", "base": "snaive", "periods": [24.0, 168.0],
           "quantiles": [0.1, 0.5, 0.9], "robust": True, "phase": "end", "input_size": 5, "future_size": 5}


def test_the_spec_dict_written_today_round_trips_exactly(tmp_path):
    spec = make_spec(ForecastConfig(window=48, horizon=12, season=24).validate(), hourly_series(3))
    assert isinstance(spec, ForecastSpec)
    assert spec.to_dict() == WRITTEN and list(spec.to_dict()) == list(WRITTEN)
    assert ForecastSpec.from_dict(WRITTEN) == spec and ForecastSpec.from_dict(WRITTEN).to_dict() == WRITTEN
    # through a checkpoint file (JSON metadata): same dict back, same spec
    path = save_checkpoint(tmp_path / "m.npz", {"w": np.zeros(2)}, {"kind": KIND, "model": spec.to_dict()})
    _, meta = load_checkpoint(path)
    assert meta["model"] == WRITTEN and ForecastSpec.from_dict(meta["model"]) == spec


def test_an_old_spec_without_its_optional_keys_loads_with_their_defaults(tmp_path):
    old = {k: v for k, v in WRITTEN.items() if k not in ("phase", "robust")}
    spec = ForecastSpec.from_dict(old)
    assert spec.robust is False and spec.phase is None and spec.clock_phase == "start"
    assert "phase" not in spec.to_dict()      # written back without the key, as the run was saved
    # a model file of such a run forecasts as one saved with phase "start" and robust off
    series = hourly_series(2, length=120)
    model = make_model(spec)
    rng = np.random.default_rng(0)
    state = {k: rng.standard_normal(v.shape) * 0.1 for k, v in model.state_dict().items()}
    arrays = {f"param/{k}": v for k, v in state.items()}
    save_checkpoint(tmp_path / "old.npz", arrays, {"kind": KIND, "model": old})
    save_checkpoint(tmp_path / "new.npz", arrays,
                    {"kind": KIND, "model": spec.replace(phase="start").to_dict()})
    f_old = Forecaster.load(tmp_path / "old.npz").predict(series)
    f_new = Forecaster.load(tmp_path / "new.npz").predict(series)
    np.testing.assert_array_equal(f_old.quantiles, f_new.quantiles)
    save_checkpoint(tmp_path / "end.npz", arrays, {"kind": KIND, "model": spec.replace(phase="end").to_dict()})
    assert np.abs(Forecaster.load(tmp_path / "end.npz").predict(series).quantiles - f_old.quantiles).max() > 1e-6
    assert Forecaster.load(tmp_path / "old.npz").spec.phase is None


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": "64"}, r"key 'hidden_size' must be an integer >= 1, got '64'"),
    ({"hidden_size": True}, r"key 'hidden_size' must be an integer >= 1"),
    ({"window": 0}, r"key 'window' must be an integer >= 1, got 0"),
    ({"seed": -1}, r"key 'seed' must be an integer >= 0"),
    ({"model": "transformer"}, r"key 'model' must be one of direct, encdec"),
    ({"cell": ["gru"]}, r"key 'cell' must be one of lstm, gru"),
    ({"norm": "exp"}, r"key 'norm' must be one of log, standard"),
    ({"phase": 1}, r"key 'phase' must be one of end, start"),
    ({"robust": "yes"}, r"key 'robust' must be true or false"),
    ({"quantiles": [0.5, 1.5]}, r"key 'quantiles' must be a non-empty list of numbers strictly between 0 and 1"),
    ({"quantiles": []}, r"key 'quantiles' must be a non-empty list"),
    ({"quantiles": "0.5"}, r"key 'quantiles' must be a non-empty list"),
    ({"periods": [24.0, float("nan")]}, r"key 'periods' must be a list of positive numbers"),
    ({"periods": [24.0]}, r"key 'input_size' is 5, but 1 periods give 3 features"),
    ({"layers": 2}, r"unknown key 'layers'"),
    ({"horizon": None}, r"key 'horizon' must be an integer >= 1, got None"),
])
def test_ill_typed_or_unknown_keys_are_refused_naming_the_key(change, message):
    with pytest.raises(CheckpointError, match=message) as info:
        ForecastSpec.from_dict({**WRITTEN, **change}, "run/best.npz: model")
    assert str(info.value).startswith("run/best.npz: model: ") and "\n" not in str(info.value)


def test_a_missing_required_key_or_a_non_dict_is_refused():
    with pytest.raises(CheckpointError, match=r"key 'horizon' is missing"):
        ForecastSpec.from_dict({k: v for k, v in WRITTEN.items() if k != "horizon"})
    with pytest.raises(CheckpointError, match=r"must be a dict of model settings, got list"):
        ForecastSpec.from_dict([1, 2])


def test_a_hostile_model_spec_in_a_checkpoint_is_one_line_on_the_command_line(tmp_path, capsys):
    spec = spec_of(hidden_size=3)
    arrays = {f"param/{k}": v for k, v in make_model(spec).state_dict().items()}
    bad = {**spec.to_dict(), "hidden_size": 1e300}
    save_checkpoint(tmp_path / "m.npz", arrays, {"kind": KIND, "model": bad})
    data = tmp_path / "d.csv"
    write_long_csv(data, hourly_series(2, length=100, timestamps=True))
    code = main(["forecast", "predict", str(tmp_path / "m.npz"), str(data), "--out", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "m.npz: model: key 'hidden_size' must be an integer >= 1" in err and "Traceback" not in err


def test_the_dict_interface_still_answers_with_a_deprecation_warning():
    spec = spec_of()
    with pytest.warns(DeprecationWarning, match=r"use spec.horizon"):
        assert spec["horizon"] == spec.horizon == 4
    with pytest.warns(DeprecationWarning):
        assert spec.get("phase", "start") == "start"
