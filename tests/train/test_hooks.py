"""Evaluation hooks: every validation score reaches the hook, and a hook stops the loop cleanly."""
import json

import numpy as np

from rnnlab.tasks.charlm import train
from rnnlab.train import TrainConfig
from rnnlab.train.hooks import notify, on_evaluation, Evaluation


def _cfg(tmp_path, **kw):
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(rng.choice(["the ", "cat ", "sat ", "on ", "a ", "mat. "], size=1500)))
    base = dict(corpus=str(corpus), cell="lstm", hidden_size=12, embedding_size=6, batch_size=4, seq_len=12,
                max_steps=12, eval_every=3, log_every=3, seed=0)
    return TrainConfig(**{**base, **kw})


def _val_steps(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if r.get("split") == "val"]


def test_a_hook_hears_every_evaluation(tmp_path):
    seen = []
    with on_evaluation(lambda ev: seen.append(ev) and None):
        summary = train(_cfg(tmp_path), out=str(tmp_path / "run"), log=lambda *_: None)
    assert [ev.step for ev in seen] == [3, 6, 9, 12] == _val_steps(tmp_path / "run")
    assert all(ev.key == "loss" and ev.mode == "min" and not ev.final for ev in seen)
    assert min(ev.value for ev in seen) == summary["best"]
    assert summary["stop"] == "max_steps"


def test_a_hook_stops_the_loop_cleanly_with_its_reason(tmp_path):
    def stop_at_six(ev):
        return "pruned" if ev.step >= 6 else None

    with on_evaluation(stop_at_six):
        summary = train(_cfg(tmp_path), out=str(tmp_path / "run"), log=lambda *_: None)
    assert summary["stop"] == "pruned" and summary["steps"] == 6 and summary["exit_code"] == 0
    assert _val_steps(tmp_path / "run") == [3, 6]
    assert (tmp_path / "run" / "last.npz").is_file() and (tmp_path / "run" / "best.npz").is_file()
    # outside the block the loop is on its own again
    summary = train(_cfg(tmp_path), out=str(tmp_path / "run2"), log=lambda *_: None)
    assert summary["stop"] == "max_steps" and summary["steps"] == 12


def test_nested_hooks_all_hear_and_the_innermost_stop_wins():
    calls = []
    ev = Evaluation(3, {"loss": 1.0}, "loss", "min", False, "run")
    with on_evaluation(lambda e: calls.append("outer") or "outer"):
        with on_evaluation(lambda e: calls.append("inner") or "inner"):
            assert notify(ev) == "inner"
        assert notify(ev) == "outer"
    assert notify(ev) is None
    assert calls == ["outer", "inner", "outer"]
