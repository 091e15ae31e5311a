"""The Ray backend on a local cluster of 2 CPUs: the same results as a local run, byte for byte; errors keep
their type; a worker that dies is reported and its fit retried once. Skipped without Ray (rnnlab[ray])."""
import json
import os
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from rnnlab.cli import main  # noqa: E402
from rnnlab.experiments import Options, run  # noqa: E402
from rnnlab.train.executor import WorkerLost, make_executor  # noqa: E402
from rnnlab.train.executor_ray import RayExecutor  # noqa: E402

from .test_executor import always_dies, dies_once  # noqa: E402

# the workers cannot import these test modules by name: send their functions by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
ray.cloudpickle.register_pickle_by_value(sys.modules[dies_once.__module__])
TIME_KEYS = {"wall_s", "seconds", "ms_per_step", "seconds_to_solve", "curve_seconds"}


@pytest.fixture(scope="module")
def cluster():
    """One local cluster (2 CPUs) for the module: executors made while it runs join it and leave it up."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def square_with_pid(x):
    return x * x, os.getpid()


def fails(x):
    if x == 1:
        raise KeyError(f"missing {x}")
    return x


def test_order_errors_and_dead_workers(cluster, tmp_path):
    lines = []
    with make_executor(ray="local", log=lines.append) as ex:
        assert isinstance(ex, RayExecutor) and ex.workers == 2
        seen = []
        results = ex.map(square_with_pid, [(x,) for x in range(6)], on_result=lambda i, v: seen.append(i))
        assert [r[0] for r in results] == [0, 1, 4, 9, 16, 25] and sorted(seen) == list(range(6))
        assert all(r[1] != os.getpid() for r in results)
        with pytest.raises(KeyError, match="missing 1"):
            ex.map(fails, [(x,) for x in range(3)])
        assert ex.map(dies_once, [(str(tmp_path / "m"), 1)]) == [101]
        assert any("died running fit 1" in line and "once more" in line for line in lines)
        lost = ex.map(always_dies, [(1,)])
        assert isinstance(lost[0], WorkerLost) and any("the fit is lost" in line for line in lines)
    assert ray.is_initialized()  # it joined the module's cluster: not its own to shut down


def _nab(root):
    def stamps(n):
        t = np.datetime64("2021-03-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
        return [str(s).replace("T", " ") + ":00" for s in t]

    labels = {}
    for k, (key, spike) in enumerate({"grp/a.csv": 300, "grp/b.csv": 350}.items()):
        rng = np.random.default_rng(k)
        v = np.sin(np.arange(400) / 5.0) + 0.1 * rng.standard_normal(400)
        v[spike:spike + 5] += 5
        path = root / "data" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("timestamp,value\n" + "".join(f"{t},{x:.5f}\n" for t, x in zip(stamps(400), v)))
        labels[key] = [[stamps(400)[spike - 10], stamps(400)[spike + 10]]]
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    return root


def test_detect_nab_on_ray_is_byte_identical_to_the_local_run(cluster, tmp_path, capsys):
    root = _nab(tmp_path / "nab")
    argv = ["detect", "nab", str(root), "--detector", "pred", "--seeds", "2", "--window", "8", "--hidden", "4",
            "--epochs", "1", "--long", "200"]
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray"]) == 0
    assert "fits on a local Ray cluster (2 CPUs" in capsys.readouterr().out
    files = sorted((tmp_path / "local" / "scores").rglob("*.csv"))
    assert len(files) == 4
    for f in files:
        assert f.read_bytes() == (tmp_path / "ray" / f.relative_to(tmp_path / "local")).read_bytes(), f
    a, b = (json.loads((tmp_path / d / "results.json").read_text())["results"]["pred"] for d in ("local", "ray"))
    assert a["normalized"] == b["normalized"] and a["held_out"] == b["held_out"]
    assert a["thresholds"] == b["thresholds"]


def test_a_study_over_three_seeds_on_ray_equals_the_local_run(cluster, tmp_path):
    common = dict(quick=True, seeds=3, budget="steps", steps=40, cells=["gru"], groups=["T=20"], log=lambda s: None)
    local = run("adding", Options(out=str(tmp_path / "local"), **common))
    remote = run("adding", Options(out=str(tmp_path / "ray"), ray="local", **common))

    def records(result):
        return [(row["label"], {k: v for k, v in rec.items() if k not in TIME_KEYS})
                for row in result["rows"] for rec in row["runs"]]
    a, b = records(local), records(remote)
    assert len(a) >= 3 and [r["seed"] for _, r in a] == [0, 1, 2] * (len(a) // 3)
    assert a == b
