"""The sweep engine with a stand-in command (no training): values, pruning, failures, the progress bar."""
import io
import json
from pathlib import Path

import pytest

from rnnlab.errors import ConfigError
from rnnlab.experiments.sweep import Sweep
from rnnlab.experiments.sweep_spec import parse_spec
from rnnlab.train.hooks import Evaluation, notify

optuna = pytest.importorskip("optuna")


class Curve:
    """A 'training loop' whose validation loss at step s is (1 + x) / s; stops where a hook asks."""

    title, metric, direction, reports = "rnnlab fake", "loss", "minimize", True

    def __init__(self, fail_on=None):
        self.calls, self.stopped_at, self.fail_on = [], {}, fail_on

    def run(self, params, out: Path) -> int:
        self.calls.append(params)
        if self.fail_on is not None and params["x"] == self.fail_on:
            return 1
        for step in (10, 20, 30, 40):
            asked = notify(Evaluation(step, {"loss": (1 + params["x"]) / step, "acc": 0.5}, "loss", "min",
                                      False, str(out)))
            if asked:
                self.stopped_at[len(self.calls) - 1] = step
                return 0
        return 0

    def command_line(self, params):
        return f"rnnlab fake --x {params['x']}"

    def result(self, out, metric):
        return None


def _spec(tmp_path, **extra):
    data = {"task": "train", "n_trials": 6, "space": {"x": [0.0, 5.0]}, "pruner": {"startup_trials": 1}, **extra}
    return parse_spec(data, tmp_path / "fake.toml")


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_values_pruning_and_the_record(tmp_path):
    cmd = Curve()
    sweep = Sweep(_spec(tmp_path), cmd, out=tmp_path / "out", stream=Tty())
    result = sweep.run()
    trials = result["trials"]
    assert len(trials) == 6 and result["counts"]["FAIL"] == 0
    for t in trials:
        if t["state"] == "COMPLETE":
            # float64 (1 + x)/40 computed by the objective and here: a few ulps; approx default rel 1e-6.
            assert t["value"] == pytest.approx((1 + t["params"]["x"]) / 40)
        else:  # pruned: only a worse x, at the first report after another trial completed
            assert t["state"] == "PRUNED" and t["params"]["x"] == 5.0 and t["pruned_at"] == 10
    assert result["counts"]["PRUNED"] == len(cmd.stopped_at) >= 1
    assert result["best"]["params"] == {"x": 0.0} and result["best"]["command"] == "rnnlab fake --x 0.0"
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["counts"] == result["counts"]


def test_failed_trials_are_counted_apart_and_three_in_a_row_stop(tmp_path):
    stream = io.StringIO()
    sweep = Sweep(_spec(tmp_path, space={"x": [5.0]}), Curve(fail_on=5.0), out=tmp_path / "out", stream=stream)
    result = sweep.run()
    assert result["counts"]["FAIL"] == 3 and result["best"] is None
    assert "3 trials in a row failed" in stream.getvalue()


def test_a_metric_the_loop_does_not_report_is_one_line(tmp_path):
    sweep = Sweep(_spec(tmp_path, metric="f1", direction="maximize"), Curve(), out=tmp_path / "out",
                  stream=io.StringIO())
    with pytest.raises(ConfigError, match="'f1' is not a validation metric of rnnlab fake .*acc, loss"):
        sweep.run()


def test_another_metric_needs_its_direction(tmp_path):
    with pytest.raises(ConfigError, match="direction"):
        Sweep(_spec(tmp_path, metric="acc"), Curve(), out=tmp_path / "out")
