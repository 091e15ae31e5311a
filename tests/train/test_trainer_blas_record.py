"""Two fresh runs of one command under RNNLAB_BLAS=auto multiply with the same libraries (the
per-machine record, rnnlab.blas.choice_cache), even where a new timing would pick the other one."""
import json

import numpy as np
import pytest

from rnnlab.blas import choice
from rnnlab.checkpoint import load_checkpoint
from rnnlab.tasks.charlm import train
from rnnlab.train import TrainConfig


def _run(tmp_path, name):
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        corpus.write_text("".join(rng.choice(["the ", "cat ", "sat ", "on ", "a ", "mat.\n"], size=1500)))
    cfg = TrainConfig(corpus=str(corpus), cell="lstm", hidden_size=48, num_layers=1, embedding_size=8,
                      batch_size=4, seq_len=8, eval_every=5, max_steps=8, seed=3)
    out = tmp_path / name
    train(cfg, out=str(out), log=lambda *a, **k: None)
    return out


@pytest.fixture
def auto(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", str(tmp_path / "record.json"))
    monkeypatch.setattr(choice, "_requested", "auto")
    monkeypatch.setattr(choice, "_cache", {})


def _second_process_where_timing_flips(monkeypatch, now_faster):
    monkeypatch.setattr(choice, "_cache", {})

    def flipped(B, K, N):
        raise AssertionError(f"({B}, {K}, {N}) timed again ({now_faster} would win now) instead of "
                             "taking this machine's recorded choice")

    monkeypatch.setattr(choice, "_time_both", flipped)


def test_a_second_fresh_run_takes_the_recorded_choices(tmp_path, monkeypatch, auto):
    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)
    monkeypatch.setattr(choice, "_time_both", lambda B, K, N: {"openblas": 1e-6, "mkl": 2e-6})
    first = _run(tmp_path, "first")
    _second_process_where_timing_flips(monkeypatch, "mkl")
    second = _run(tmp_path, "second")
    blas = [json.loads((run / "config.json").read_text())["blas"]["chosen"] for run in (first, second)]
    assert blas[0] and blas[0] == blas[1] and set(blas[0].values()) == {"openblas"}


def test_with_real_mkl_two_fresh_runs_are_bit_identical(tmp_path, monkeypatch, auto):
    if not choice.mkl_loadable():
        pytest.skip("the mkl extra is not installed")
    monkeypatch.setattr(choice, "_time_both", lambda B, K, N: {"openblas": 2e-6, "mkl": 1e-6})
    first = _run(tmp_path, "first")
    _second_process_where_timing_flips(monkeypatch, "openblas")
    second = _run(tmp_path, "second")
    wa, _ = load_checkpoint(first / "last.npz")
    wb, _ = load_checkpoint(second / "last.npz")
    assert set(json.loads((second / "config.json").read_text())["blas"]["chosen"].values()) == {"mkl"}
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
