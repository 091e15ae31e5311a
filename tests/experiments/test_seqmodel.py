"""The last-step sequence model and its training loop."""
import math

import numpy as np
import pytest

from rnnlab.experiments.seqmodel import FitConfig, SeqModel, evaluate, first_below, fit
from rnnlab.layers import MSELoss


def _loss(model, x, y):
    yhat, cache = model.forward(x)
    return MSELoss().forward(yhat, y)[0], yhat, cache


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_backward_matches_finite_differences(cell):
    rng = np.random.default_rng(0)
    model = SeqModel(cell, 3, 5, 2, seed=1, dtype=np.float64)
    x, y = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 2))
    model.zero_grad()
    loss, yhat, cache = _loss(model, x, y)
    lcache = MSELoss().forward(yhat, y)[1]
    dx = model.backward(MSELoss().backward(1.0, lcache), cache)
    eps = 1e-6
    for name, p, g in model.named_parameters():
        for idx in list(np.ndindex(p.shape))[:6]:
            old = p[idx]
            p[idx] = old + eps
            up = _loss(model, x, y)[0]
            p[idx] = old - eps
            down = _loss(model, x, y)[0]
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8), name
    # the input gradient reaches the first step through time only
    x2 = x.copy()
    x2[1, 0, 2] += eps
    up = _loss(model, x2, y)[0]
    x2[1, 0, 2] -= 2 * eps
    down = _loss(model, x2, y)[0]
    assert dx[1, 0, 2] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)
    assert abs(dx[1, 0, 2]) > 0


def test_parameters_are_prefixed_and_counted():
    model = SeqModel("gru", 2, 4, 1)
    names = [n for n, _, _ in model.named_parameters()]
    assert "rnn.l0.cell.W_h" in names and "out.W" in names
    assert model.num_parameters() == 3 * 4 * (2 + 4 + 1) + 4 + 4 * 1 + 1  # W_x, W_h, b, b_hn; Linear


def test_fit_learns_a_memory_task_and_records_history():
    rng = np.random.default_rng(0)

    def batch(step):  # target: the first input of the sequence, carried over 8 steps
        x = rng.normal(size=(32, 8, 1)).astype(np.float32)
        return x, x[:, 0].copy()

    test = batch(0)
    model = SeqModel("lstm", 1, 16, 1, seed=0)
    before = evaluate(model, *test, "regression")["loss"]
    res = fit(model, batch, test, FitConfig(lr=1e-2, max_steps=300, eval_every=100))
    assert [h["step"] for h in res.history] == [100, 200, 300]
    assert res.history[-1]["eval_loss"] < 0.3 * before
    assert not res.diverged and res.steps == 300


def test_fit_stops_on_target_and_on_divergence():
    rng = np.random.default_rng(1)
    data = lambda step: (rng.normal(size=(8, 3, 1)).astype(np.float32), np.zeros((8, 1), np.float32))
    res = fit(SeqModel("rnn", 1, 4, 1), data, data(0), FitConfig(max_steps=50, eval_every=10, stop_below=math.inf))
    assert res.stop == "target reached" and res.steps == 10

    def poisoned(step):
        x, y = data(step)
        x[0, 0, 0] = np.nan  # every step non-finite: must be skipped, never applied
        return x, y

    model = SeqModel("rnn", 1, 4, 1)
    before = {n: p.copy() for n, p, _ in model.named_parameters()}
    res = fit(model, poisoned, data(0), FitConfig(max_steps=100, eval_every=10, max_bad_steps=5))
    assert res.diverged and res.stop == "diverged" and res.bad_steps == 6
    assert all(np.array_equal(p, before[n]) for n, p, _ in model.named_parameters())


def test_evaluate_classification_accuracy_in_eval_mode():
    model = SeqModel("lstm", 1, 4, 3)
    x = np.zeros((5, 2, 1), np.float32)
    yhat, _ = model.forward(x)
    labels = yhat.argmax(axis=1)
    out = evaluate(model, x, labels, "classification")
    assert out["acc"] == 1.0 and model.rnn.training  # restored to training mode afterwards
    assert first_below([{"v": 3}, {"v": 1}, {"v": 0}], "v", 2) == {"v": 1}
