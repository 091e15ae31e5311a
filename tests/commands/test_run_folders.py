"""Run folders across tasks: the lock (one live writer; a dead holder's lock is taken over), resume
keeping the run's own settings (only flags given replace them), and a folder left by a run that
never saved a checkpoint being made again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from rnnlab.cli import main
from rnnlab.io.lock import LOCK_FILE, RunInUse, RunLock
from rnnlab.tasks.tagging.data import write_conll
from rnnlab.tasks.tagging.synthetic import synthetic_sentences

from .test_cmd_forecast import hourly_series, write_long_csv

FORECAST = ["--window", "48", "--horizon", "24", "--hidden-size", "6", "--batch-size", "8", "--eval-every", "2"]
TAG = ["--word-dim", "8", "--case-dim", "3", "--char-dim", "5", "--char-hidden", "4", "--hidden-size", "8",
       "--batch-size", "8", "--lr", "0.01", "--eval-every", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("runfolders")
    series = write_long_csv(root / "sensors.csv", hourly_series(2, length=300, timestamps=True))
    for name, n, seed in (("train", 60, 1), ("dev", 20, 2)):
        write_conll(root / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    return root, series


def _argv(task, data, out, *extra):
    root, series = data
    if task == "forecast":
        return ["forecast", "train", str(series), "--out", str(out), *FORECAST, *extra]
    return ["tag", "train", "--train", str(root / "train.tsv"), "--dev", str(root / "dev.tsv"), "--out", str(out),
            *TAG, *extra]


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunInUse, match=rf"in use by another rnnlab process \(pid {os.getpid()}\)"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # released: free again


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from rnnlab.io.lock import RunLock
        RunLock({str(tmp_path)!r}).acquire()
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInUse, match=rf"pid {holder.pid}\)"):
            RunLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = RunLock(tmp_path).acquire()  # the kernel dropped the dead process's lock
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    lock.release()


@pytest.mark.parametrize("task", ["forecast", "tag"])
def test_training_into_a_held_folder_is_refused_in_one_line(task, data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        assert main(_argv(task, data, out, "--max-steps", "2")) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"in use by another rnnlab process (pid {os.getpid()})" in err
        assert not (out / "config.json").exists()
    assert main(_argv(task, data, out, "--max-steps", "2")) == 0  # free again
    capsys.readouterr()
    with RunLock(out):
        resume = ["forecast" if task == "forecast" else "tag", "train", "--resume", str(out)]
        assert main(resume) == 2
        assert f"--resume {out} is in use by another rnnlab process" in capsys.readouterr().err


def test_charlm_training_into_a_held_folder_is_refused(tiny_run, capsys):
    with RunLock(tiny_run):
        assert main(["train", "--resume", str(tiny_run)]) == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err


def _capture_run_task(monkeypatch, module):
    seen = {}

    def fake(task, cfg, run_dir, **kw):
        seen["cfg"] = cfg
        return {"best": None, "stop": "captured", "steps": 1, "elapsed_s": 0.0, "exit_code": 0}

    monkeypatch.setattr(module + ".run_task", fake)
    return seen


@pytest.mark.parametrize("task, module", [("forecast", "rnnlab.tasks.forecast.api"),
                                          ("tag", "rnnlab.tasks.tagging.api")])
def test_resume_without_flags_keeps_the_runs_budget(task, module, data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(_argv(task, data, out, "--max-steps", "4")) == 0
    saved = json.loads((out / "config.json").read_text())
    seen = _capture_run_task(monkeypatch, module)
    assert main([task, "train", "--resume", str(out)]) == 0
    assert (seen["cfg"].max_steps, seen["cfg"].max_minutes) == (4, saved["max_minutes"])
    assert main([task, "train", "--resume", str(out), "--max-steps", "6"]) == 0   # a flag given replaces it
    assert (seen["cfg"].max_steps, seen["cfg"].max_minutes) == (6, 0.0)
    capsys.readouterr()


def test_charlm_resume_without_flags_keeps_the_runs_budget(tiny_run, monkeypatch, capsys):
    seen = _capture_run_task(monkeypatch, "rnnlab.tasks.charlm.api")
    assert main(["train", "--resume", str(tiny_run)]) == 0
    assert seen["cfg"].max_steps == 8
    capsys.readouterr()


@pytest.mark.parametrize("task", ["forecast", "tag"])
def test_a_folder_that_never_saved_a_checkpoint_is_made_again(task, data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"task": "crashed before its first checkpoint"}')
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    assert main(_argv(task, data, out, "--max-steps", "2")) == 0
    assert (out / "last.npz").is_file()
    assert json.loads((out / "config.json").read_text())["max_steps"] == 2
    assert '{"step": 1}\n' not in (out / "metrics.jsonl").read_text()  # the stale lines are gone
    capsys.readouterr()


def test_detect_nab_into_a_held_folder_is_refused(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tasks" / "anomaly" / "test_detect_cli.py"
    spec = importlib.util.spec_from_file_location("detect_cli_helpers", path)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    root = helpers._nab(tmp_path / "nab", htm=False)
    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out):
        assert main(["detect", "nab", str(root), "--out", str(out), *helpers.FAST]) == 2
        assert f"--out {out} is in use by another rnnlab process (pid {os.getpid()})" in capsys.readouterr().err
    assert main(["detect", "nab", str(root), "--out", str(out), *helpers.FAST]) == 0
    assert (out / "results.json").is_file()
