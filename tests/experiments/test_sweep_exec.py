"""A sweep's trials through an executor (the driver of ``--ray``), here the in-process ``Serial`` one, so that
it runs in CI without Ray: the same trials and values as a local sweep, pruning, a lost worker, Ctrl-C."""
import io

import pytest

from rnnlab.experiments.sweep import Sweep
from rnnlab.experiments.sweep_exec import run_on
from rnnlab.experiments.sweep_spec import parse_spec
from rnnlab.train.executor import Serial, WorkerLost
from rnnlab.train.hooks import Evaluation, notify
from rnnlab.train.signals import Interrupted

optuna = pytest.importorskip("optuna")


class Curve:
    """A 'training loop' whose validation loss at step s is (1 + x) / s + y; stops where a hook asks;
    ``interrupt_on``: the n-th call ends as a Ctrl-C would (exit status 130)."""

    title, metric, direction, reports = "rnnlab fake", "loss", "minimize", True

    def __init__(self, interrupt_on=None):
        self.calls, self.interrupt_on = 0, interrupt_on

    def run(self, params, out):
        self.calls += 1
        if self.calls == self.interrupt_on:
            notify(Evaluation(10, {"loss": 9.0}, "loss", "min", False, str(out)))
            return 130
        for step in (10, 20, 30, 40):
            loss = (1 + params["x"]) / step + params.get("y", 0.0)
            if notify(Evaluation(step, {"loss": loss}, "loss", "min", False, str(out))):
                return 0
        return 0

    def command_line(self, params):
        return "rnnlab fake " + " ".join(f"--{k} {v!r}" for k, v in params.items())

    def result(self, out, metric):
        return None


def _spec(tmp_path, **extra):
    data = {"task": "train", "n_trials": 6, "seed": 5,
            "space": {"x": {"type": "float", "low": 0.0, "high": 4.0}, "y": [0.0, 0.5]},
            "pruner": {"kind": "none"}, **extra}
    return parse_spec(data, tmp_path / "fake.toml")


def _trials(result):
    return [(t["number"], t["state"], t["params"], t["value"], t["intermediate"]) for t in result["trials"]]


def test_through_an_executor_the_trials_equal_a_local_sweeps(tmp_path):
    local = Sweep(_spec(tmp_path), Curve(), out=tmp_path / "local", stream=io.StringIO()).run()
    stream = io.StringIO()
    driven = run_on(Sweep(_spec(tmp_path), Curve(), out=tmp_path / "driven", stream=stream), Serial())
    assert len(local["trials"]) == 6 and _trials(driven) == _trials(local)  # same draws, same values, exactly
    assert "trials on serial" in stream.getvalue() and driven["best"] == local["best"]


def test_pruning_through_an_executor(tmp_path):
    spec = _spec(tmp_path, n_trials=8, seed=0, space={"x": [0.0, 5.0]}, pruner={"startup_trials": 1})
    result = run_on(Sweep(spec, Curve(), out=tmp_path / "out", stream=io.StringIO()), Serial())
    pruned = [t for t in result["trials"] if t["state"] == "PRUNED"]
    assert result["counts"]["COMPLETE"] + len(pruned) == 8 and pruned
    assert all(t["params"]["x"] == 5.0 and t["pruned_at"] == 10 and list(t["intermediate"]) == [10] for t in pruned)
    assert result["best"]["params"] == {"x": 0.0} and result["best"]["value"] == 1 / 40


class LosesTheSecond(Serial):
    """An executor whose worker died twice under the second fit (what the Ray executor then returns)."""

    def stream(self, fn, next_args, *, on_result=None):
        n = 0
        while (a := next_args()) is not None:
            on_result(n, WorkerLost("the Ray worker died twice") if n == 1 else fn(*a))
            n += 1
        return n


def test_a_trial_whose_worker_died_twice_is_marked_failed_and_reported(tmp_path):
    stream = io.StringIO()
    sweep = Sweep(_spec(tmp_path, n_trials=3), Curve(), out=tmp_path / "out", stream=stream)
    result = run_on(sweep, LosesTheSecond())
    assert [t["state"] for t in result["trials"]] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert "trial 1: its worker died twice; the trial is marked FAIL" in stream.getvalue()


def test_an_interrupted_trial_is_marked_failed_never_a_result(tmp_path):
    sweep = Sweep(_spec(tmp_path), Curve(interrupt_on=3), out=tmp_path / "out", stream=io.StringIO())
    with pytest.raises(Interrupted):
        run_on(sweep, Serial())
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'out' / 'sweep.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert study.trials[2].value is None and study.best_trial.number in (0, 1)
