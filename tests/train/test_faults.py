"""Runs survive every stop: real processes stopped by SIGINT, SIGTERM and kill -9 at random points,
then resumed, end bit-identical to a run that was never stopped; bad output folders are refused
in one line before any data is read."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint
from rnnlab.train.progress import MetricsLog

STEPS = 120
ARGS = ["--max-steps", str(STEPS), "--hidden-size", "16", "--num-layers", "2", "--embedding-size", "8",
        "--batch-size", "4", "--seq-len", "8", "--eval-every", "10", "--log-every", "1", "--dropout", "0.1",
        "--seed", "4"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran\n"]
    path = tmp_path_factory.mktemp("corpus") / "c.txt"
    path.write_text("".join(rng.choice(words, size=3000)), encoding="utf-8")
    return path


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rnnlab", "train", *args]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(*args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def straight(corpus) -> Path:
    """The run that is never stopped."""
    out = corpus.parent / "straight"
    done = _run(str(corpus), "--out", str(out), *ARGS, cwd=corpus.parent)
    assert done.returncode == 0, done.stderr
    return out


def _rows(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "elapsed", "rate")}
            for r in MetricsLog(run / "metrics.jsonl").read()]


def _same_run(a: Path, b: Path) -> None:
    assert _rows(a) == _rows(b)
    for name in ("last.npz", "best.npz"):
        wa, ma = load_checkpoint(a / name)
        wb, mb = load_checkpoint(b / name)
        assert wa.keys() == wb.keys()
        for key in wa:
            np.testing.assert_array_equal(wa[key], wb[key], err_msg=f"{name}:{key}")
        assert ma["trainer"]["step"] == mb["trainer"]["step"]


def _train_rows(run: Path) -> int:
    path = run / "metrics.jsonl"
    if not path.exists():
        return 0
    return path.read_text(errors="replace").count('"split": "train"')


def _start_and_stop(corpus: Path, out: Path, after_rows: int, sig: int, repeat: int = 1) -> int:
    proc = subprocess.Popen(_cmd(str(corpus), "--out", str(out), *ARGS), cwd=corpus.parent, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _train_rows(out) < after_rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    for _ in range(repeat):
        if proc.poll() is None:
            proc.send_signal(sig)
            time.sleep(0.002)
    proc.communicate(timeout=120)
    return proc.returncode


@pytest.mark.parametrize("sig, code, seed", [(signal.SIGINT, 130, 1), (signal.SIGINT, 130, 2),
                                             (signal.SIGTERM, 143, 3)])
def test_stopped_at_a_random_step_then_resumed_is_bit_identical(corpus, straight, tmp_path, sig, code, seed):
    after = int(np.random.default_rng(seed).integers(2, STEPS - 10))
    out = tmp_path / "run"
    rc = _start_and_stop(corpus, out, after, sig)
    if rc == 0:
        pytest.fail("the run finished before the signal arrived; the test machine is too fast for this stop point")
    assert rc == code
    meta = load_checkpoint(out / "last.npz")[1]
    assert 0 < meta["trainer"]["step"] < STEPS
    resumed = _run("--resume", str(out), cwd=corpus.parent)
    assert resumed.returncode == 0, resumed.stderr
    _same_run(straight, out)


def test_a_second_ctrl_c_during_the_final_save_changes_nothing(corpus, straight, tmp_path):
    out = tmp_path / "run"
    assert _start_and_stop(corpus, out, 37, signal.SIGINT, repeat=2) == 130
    assert _run("--resume", str(out), cwd=corpus.parent).returncode == 0
    _same_run(straight, out)


def test_kill_9_loses_at_most_the_steps_since_the_last_checkpoint(corpus, straight, tmp_path):
    out = tmp_path / "run"
    assert _start_and_stop(corpus, out, 55, signal.SIGKILL) == -signal.SIGKILL
    resumed = _run("--resume", str(out), cwd=corpus.parent)
    assert resumed.returncode == 0, resumed.stderr
    _same_run(straight, out)


def test_a_finished_run_resumed_without_a_new_budget_adds_nothing(corpus, straight, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(straight, out)
    before = _rows(out)
    again = _run("--resume", str(out), cwd=corpus.parent)
    assert again.returncode == 0 and "done (max_steps)" in again.stdout
    assert _rows(out) == before


def test_resume_with_a_step_budget_after_a_time_budget_trains_on(corpus, tmp_path):
    out = tmp_path / "run"
    args = [a for a in ARGS]
    args[args.index("--max-steps") + 1] = "0"
    timed = _run(str(corpus), "--out", str(out), *args, "--max-minutes", "0.002", cwd=corpus.parent)
    assert timed.returncode == 0 and "time budget" in timed.stdout
    step = load_checkpoint(out / "last.npz")[1]["trainer"]["step"]
    more = _run("--resume", str(out), "--max-steps", str(step + 25), cwd=corpus.parent)
    assert more.returncode == 0, more.stderr
    assert load_checkpoint(out / "last.npz")[1]["trainer"]["step"] == step + 25
    vals = [r["step"] for r in _rows(out) if r["split"] == "val"]
    assert len(vals) == len(set(vals))  # no duplicate validation rows


def test_leftover_temporaries_are_swept_on_resume(corpus, straight, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(straight, out)
    junk = [out / ".last.npz.k3j2.tmp", out / ".metrics.jsonl.abc.tmp"]
    for path in junk:
        path.write_bytes(b"x" * 1000)
    (out / "notes.tmp").write_text("mine")
    assert _run("--resume", str(out), cwd=corpus.parent).returncode == 0
    assert not any(p.exists() for p in junk)
    assert (out / "notes.tmp").exists()  # only rnnlab's own temporaries are touched


def _error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def test_bad_output_folders_are_refused_in_one_line(corpus, straight, tmp_path):
    assert "already holds a run" in _error_line(_run(str(corpus), "--out", str(straight), *ARGS, cwd=tmp_path))
    assert "is a file" in _error_line(_run(str(corpus), "--out", str(corpus), cwd=tmp_path))
    assert "is a file" in _error_line(_run(str(corpus), "--out", str(corpus / "run"), cwd=tmp_path))
    forced = tmp_path / "forced"
    shutil.copytree(straight, forced)
    (forced / "metrics.jsonl").write_text('{"step": 999, "split": "val", "loss": 0.1}\n')  # an old run's row
    done = _run(str(corpus), "--out", str(forced), *ARGS, "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _rows(forced)[-1]["step"] == STEPS and len(_rows(forced)) == len(_rows(straight))


def test_an_immutable_output_folder_is_refused_before_reading_data(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        missing = tmp_path / "no-such-corpus.txt"   # never read: the folder is checked first
        line = _error_line(_run(str(missing), "--out", str(folder / "run"), cwd=tmp_path))
        assert "cannot write to the run folder" in line and "--out" in line
    finally:
        subprocess.run(["chattr", "-i", str(folder)])


def test_a_read_only_mount_is_refused_in_one_line(corpus, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    script = (f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && "
              f"{sys.executable} -m rnnlab train {corpus} --out {folder}/run")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=ENV, capture_output=True, text=True,
                          timeout=120)
    if "mount" in done.stderr and "Traceback" not in done.stderr and done.returncode != 2:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()[:80]}")
    line = _error_line(done)
    assert "Read-only file system" in line and "--out" in line
