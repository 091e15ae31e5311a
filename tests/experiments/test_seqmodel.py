"""The last-step sequence model and its task on the one training loop."""
import math
import os
import pickle
import signal

import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint
from rnnlab.models.seqmodel import SeqModel, first_below
from rnnlab.experiments.seqtask import EpochBatches, RandomBatches, SequenceTask, fit_sequence
from rnnlab.layers import MSELoss
from rnnlab.train.verify import check_exact_resume
from rnnlab.train.loopconfig import LoopConfig


def _memory_batch(rng):  # target: the first input of the sequence, carried over 8 steps
    x = rng.normal(size=(32, 8, 1)).astype(np.float32)
    return x, x[:, 0].copy()


def _memory_task(**kw):
    spec = {"cell": "lstm", "input_size": 1, "hidden_size": 16, "output_size": 1, "seed": 0}
    return SequenceTask(spec, RandomBatches(_memory_batch, 7), _memory_batch(np.random.default_rng(99)),
                        "regression", **kw)


def test_parameters_are_prefixed_and_counted():
    model = SeqModel("gru", 2, 4, 1)
    names = [n for n, _, _ in model.named_parameters()]
    assert "rnn.l0.cell.W_h" in names and "out.W" in names
    assert model.num_parameters() == 3 * 4 * (2 + 4 + 1) + 4 + 4 * 1 + 1  # W_x, W_h, b, b_hn; Linear


def test_gradient_reaches_the_first_step_through_time_only():
    rng = np.random.default_rng(0)
    model = SeqModel("lstm", 3, 5, 2, seed=1, dtype=np.float64)
    x, y = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 2))
    yhat, cache = model.forward(x)
    _, lcache = MSELoss().forward(yhat, y)
    dx = model.backward(MSELoss().backward(1.0, lcache), cache)
    eps = 1e-6
    x2 = x.copy()
    x2[1, 0, 2] += eps
    up = MSELoss().forward(model.forward(x2)[0], y)[0]
    x2[1, 0, 2] -= 2 * eps
    down = MSELoss().forward(model.forward(x2)[0], y)[0]
    # float64 central difference: truncation O(eps_fd^2) plus rounding ~eps_machine*|loss|/eps_fd; rel 1e-5
    # covers both for this small model, abs 1e-9 for a near-zero entry.
    assert dx[1, 0, 2] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)
    assert abs(dx[1, 0, 2]) > 0


def test_fit_learns_a_memory_task_and_records_history(tmp_path):
    task = _memory_task()
    before = task.evaluate(task.build_model())["loss"]
    res = fit_sequence(task, LoopConfig(lr=1e-2, max_steps=300, eval_every=100, guard="skip"), tmp_path / "run")
    assert [h["step"] for h in res.history] == [100, 200, 300]
    assert res.history[-1]["eval_loss"] < 0.3 * before
    assert not res.diverged and res.steps == 300
    assert (tmp_path / "run" / "best.npz").is_file() and (tmp_path / "run" / "config.json").is_file()


def test_fit_stops_on_target_and_on_divergence(tmp_path):
    res = fit_sequence(_memory_task(stop_below=math.inf), LoopConfig(max_steps=50, eval_every=10), tmp_path / "a")
    assert res.stop == "target reached" and res.steps == 10

    def poisoned(rng):
        x, y = _memory_batch(rng)
        x[0, 0, 0] = np.nan  # every step non-finite: must be skipped, never applied
        return x, y

    spec = {"cell": "rnn", "input_size": 1, "hidden_size": 4, "output_size": 1, "seed": 0}
    task = SequenceTask(spec, RandomBatches(poisoned, 1), _memory_batch(np.random.default_rng(0)), "regression")
    res = fit_sequence(task, LoopConfig(max_steps=100, eval_every=10, guard="skip"), tmp_path / "b")
    assert res.diverged and res.bad_steps == 21
    assert not (tmp_path / "b" / "last.npz").exists() or all(
        np.isfinite(v).all() for v in load_checkpoint(tmp_path / "b" / "last.npz")[0].values() if v.dtype.kind == "f")


def test_evaluate_classification_accuracy_in_eval_mode():
    x = np.zeros((5, 2, 1), np.float32)
    spec = {"cell": "lstm", "input_size": 1, "hidden_size": 4, "output_size": 3, "seed": 0}
    model = SeqModel(**spec)
    labels = model.forward(x)[0].argmax(axis=1)
    task = SequenceTask(spec, EpochBatches(x, labels, 5, 0), (x, labels), "classification")
    out = task.evaluate(model)
    assert out["acc"] == 1.0 and model.rnn.training  # restored to training mode afterwards
    assert task.selection.key == "acc" and task.selection.better(0.9, 0.8)
    assert first_below([{"v": 3}, {"v": 1}, {"v": 0}], "v", 2) == {"v": 1}


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_sequence_task_resumes_exactly_after_an_interruption(tmp_path, kind):
    """Stop at a random step (a KeyboardInterrupt inside the step), resume: identical to one straight run."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6, 2)).astype(np.float32)
    y = (x[:, 0, :1] > 0).astype(np.int64)[:, 0] if kind == "classification" else x[:, 0, :1].copy()
    spec = {"cell": "gru", "input_size": 2, "hidden_size": 6, "output_size": 2 if kind == "classification" else 1,
            "seed": 3, "num_layers": 2}
    cfg = LoopConfig(lr=5e-3, max_steps=23, eval_every=5, log_every=1, schedule="cosine", guard="skip")
    check_exact_resume(lambda: SequenceTask(spec, EpochBatches(x, y, 8, 1), (x, y), kind), cfg, tmp_path,
                       stop_at=int(rng.integers(1, 22)))


def test_the_resume_check_catches_a_task_that_forgets_its_data_position(tmp_path):
    """The check can fail: a batch source whose position is not saved resumes from the start."""
    class Forgetful(EpochBatches):
        def load(self, state):
            pass

    x = np.random.default_rng(0).normal(size=(24, 4, 1)).astype(np.float32)
    spec = {"cell": "rnn", "input_size": 1, "hidden_size": 3, "output_size": 1, "seed": 0}
    cfg = LoopConfig(max_steps=12, eval_every=4, log_every=1)
    with pytest.raises(AssertionError):
        check_exact_resume(lambda: SequenceTask(spec, Forgetful(x, x[:, 0], 4, 0), (x, x[:, 0]), "regression"),
                           cfg, tmp_path, stop_at=5)


def test_a_signal_stops_the_study_instead_of_recording_a_cut_short_run(tmp_path, monkeypatch):
    from rnnlab.train.signals import Interrupted
    from rnnlab.train.trainer import Trainer

    original = Trainer.train_step

    def signalled(self, *a, **k):
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "train_step", signalled)
    with pytest.raises(Interrupted) as exc:
        fit_sequence(_memory_task(), LoopConfig(lr=1e-2, max_steps=50, eval_every=10), tmp_path / "run")
    assert exc.value.exit_code == 143
    back = pickle.loads(pickle.dumps(exc.value))  # as from a study's worker process
    assert isinstance(back, KeyboardInterrupt) and back.exit_code == 143
    assert (tmp_path / "run" / "last.npz").is_file()  # the stopped run is still resumable
