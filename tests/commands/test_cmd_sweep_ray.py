"""``rnnlab sweep --ray`` on a local Ray cluster of 2 CPUs: the same trials, byte for byte, as a local sweep;
pruning on the loop's metric across workers; a worker that dies is reported and its trial run once more, or
marked FAIL. Skipped without Ray (rnnlab[ray]); tests/experiments/test_sweep_exec.py runs the driver in CI."""
import io
import os
import sys

import pytest

ray = pytest.importorskip("ray")
optuna = pytest.importorskip("optuna")

from rnnlab.cli import main  # noqa: E402
from rnnlab.experiments.sweep import Sweep  # noqa: E402
from rnnlab.experiments.sweep_exec import run_on  # noqa: E402
from rnnlab.experiments.sweep_spec import parse_spec  # noqa: E402
from rnnlab.train.executor import make_executor  # noqa: E402
from rnnlab.train.hooks import Evaluation, notify  # noqa: E402

from .test_cmd_sweep import SPACE  # noqa: E402  (the same tiny char-LM space as the local sweep's tests)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this module



from ..train.test_executor_ray import cluster  # noqa: E402,F401  (one local Ray cluster of 2 CPUs per module)


def _space(tmp_path, make_text, n, pruner, lr='{ type = "float", low = 1e-4, high = 0.05, log = true }',
           seed=3):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(1500))
    path = tmp_path / f"space-{pruner}.toml"
    path.write_text(SPACE.format(n=n, corpus=corpus, pruner=pruner, lr=lr, seed=seed))
    return path


def _trials(out, name):
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'sweep.db'}")
    return [(t.number, t.state.name, t.params, t.value, t.intermediate_values) for t in study.trials]


def test_on_ray_the_trials_equal_a_local_sweeps_byte_for_byte(cluster, tmp_path, make_text, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one BLAS thread here as in the workers
    space = _space(tmp_path, make_text, 4, "none")
    assert main(["sweep", str(space), "--out", str(tmp_path / "local")]) == 0
    assert main(["sweep", str(space), "--out", str(tmp_path / "ray"), "--ray"]) == 0
    assert "trials on a local Ray cluster (2 CPUs" in capsys.readouterr().err
    local, remote = _trials(tmp_path / "local", "space-none"), _trials(tmp_path / "ray", "space-none")
    # TPE's first 10 trials are its seeded random draws in the order asked: the same settings, and a fit
    # depends only on its settings, so the values are equal as floats, not approximately
    assert len(local) == 4 and all(t[1] == "COMPLETE" for t in local) and remote == local


def test_on_ray_trials_are_pruned_on_the_loops_metric(cluster, tmp_path, make_text):
    # 1e-7 does not learn in 12 steps; TPE's seeded random draws (seed 2) are 0.03, 0.03, then 1e-7 four times
    space = _space(tmp_path, make_text, 6, "median", lr="[0.03, 1e-7]", seed=2)
    assert main(["sweep", str(space), "--out", str(tmp_path / "out"), "--ray"]) == 0
    study = optuna.load_study(study_name="space-median", storage=f"sqlite:///{tmp_path / 'out' / 'sweep.db'}")
    states = [t.state.name for t in study.trials]
    assert [t.params["lr"] for t in study.trials] == [0.03, 0.03, 1e-7, 1e-7, 1e-7, 1e-7]
    # the two 0.03 trials run first, side by side: the first to finish completes (the second may be pruned
    # against it, as timing falls); each 1e-7 trial starts after one of them completed and is pruned at once
    assert "COMPLETE" in states[:2] and states[2:] == ["PRUNED"] * 4, states
    assert [t.user_attrs["pruned_at"] for t in study.trials[2:]] == [3] * 4
    for t in study.trials:
        if t.state.name == "COMPLETE":
            assert sorted(t.intermediate_values) == [3, 6, 9, 12] and t.value == min(t.intermediate_values.values())
        else:  # stopped by the pruner at its last report
            assert t.user_attrs["pruned_at"] == max(t.intermediate_values)


class Dies:
    """A stand-in command whose first run (or every run, ``always``) kills its worker process."""

    title, metric, direction, reports = "rnnlab fake", "loss", "minimize", True

    def __init__(self, marker, always=False):
        self.marker, self.always = str(marker), always

    def run(self, params, out):
        if self.always or not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(3)
        for step in (10, 20):
            notify(Evaluation(step, {"loss": (1 + params["x"]) / step}, "loss", "min", False, str(out)))
        return 0

    def command_line(self, params):
        return f"rnnlab fake --x {params['x']}"

    def result(self, out, metric):
        return None


@pytest.mark.parametrize("always", [False, True])
def test_a_worker_that_dies_is_reported_and_its_trial_run_once_more(cluster, tmp_path, always):
    spec = parse_spec({"task": "train", "n_trials": 1, "space": {"x": [1.0]}}, tmp_path / "fake.toml")
    stream, lines = io.StringIO(), []
    with make_executor(ray="local", log=lines.append) as ex:
        result = run_on(Sweep(spec, Dies(tmp_path / "marker", always), out=tmp_path / "out", stream=stream), ex)
    assert any("died running fit 1" in line and "once more" in line for line in lines)
    states = [t["state"] for t in result["trials"]]
    if always:  # lost twice: FAIL, said so; three failures in a row stop the sweep
        assert states == ["FAIL"] * 3 and "its worker died twice; the trial is marked FAIL" in stream.getvalue()
    else:
        assert states == ["COMPLETE"] and result["best"]["value"] == 2 / 20
