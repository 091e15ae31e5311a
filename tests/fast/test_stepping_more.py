"""Generation with the tanh RNN and the IRNN steps through rnnlab.fast.stepping.RNNRunner, equal to the
reference stepper (the cell's own step_forward) and to the full forward."""
import contextlib

import numpy as np
import pytest

from rnnlab import fast, generate
from rnnlab.data import Vocab
from rnnlab.fast import accel
from rnnlab.gradcheck import randomize
from rnnlab.models import CharRNN, ModelConfig

VOCAB = Vocab("\n abcdefghij")


def _model(cell, proj_size=0, embedding_size=6):
    cfg = ModelConfig(len(VOCAB), cell, hidden_size=7, num_layers=3, embedding_size=embedding_size,
                      proj_size=proj_size, seed=0)
    return randomize(CharRNN(cfg), np.random.default_rng(0), scale=0.6).eval()


def test_rnn_runner_float32(rng):
    model = _model("rnn").astype(np.float32)
    ids = rng.integers(len(VOCAB), size=(2, 10))
    stepper = generate.Stepper(model).reset(2)
    got = np.stack([stepper.feed(ids[:, t]).copy() for t in range(10)], axis=1)
    assert got.dtype == np.float32 and accel.steps(np.float32) is not None or not accel.available()
    (expected, _), _ = model.forward(ids)
    # float32 RNN, stepped vs full forward: measured bit-identical here (default, Sandybridge, Haswell), but a
    # BLAS kernel may group the (B*T, D) and (B, D) products differently: bound ~H*2^-24 ~ 4e-7 per product,
    # over 10 steps x 3 layers ~1e-5 worst case; rtol 1e-4 / atol 1e-5 sit 10x above that bound.
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _norm_model(cell, proj_size=0):
    from rnnlab.gradcheck.specs import random_population

    model = _model(cell, proj_size)
    if cell == "bnlstm":
        for layer in model.rnn.layers:   # 12 steps past 3 trained slots: the last slot is reused
            random_population(layer.cell, np.random.default_rng(1), trained_steps=3)
    return model


# the runner of the layer checked: the tanh RNN's and IRNN's of the second layer, the norm LSTMs' of the first
RUNNERS = [("rnn", 1, "RNNRunner"), ("irnn", 1, "RNNRunner"),
           ("lnlstm", 0, "NormLSTMRunner"), ("bnlstm", 0, "NormLSTMRunner")]


@pytest.mark.parametrize("cell, layer, runner", RUNNERS, ids=[c for c, _, _ in RUNNERS])
@pytest.mark.parametrize("proj_size", [0, 4], ids=["noproj", "proj"])
@pytest.mark.parametrize("batch", [1, 2])
def test_runner_equals_the_reference_stepper_and_the_forward(cell, layer, runner, proj_size, batch,
                                                             element_steps):
    model = _norm_model(cell, proj_size)
    ids = np.random.default_rng(3).integers(len(VOCAB), size=(batch, 12))
    runs = []
    for use_fast in (True, False):
        with contextlib.nullcontext() if use_fast else fast.reference_only():
            stepper = generate.Stepper(model).reset(batch)
            assert type(stepper.runners[layer]).__name__ == (runner if use_fast else "CellRunner")
            logits = np.stack([stepper.feed(ids[:, t]).copy() for t in range(ids.shape[1])], axis=1)
        runs.append((logits, [tuple(a.copy() for a in s) for s in stepper.states]))
    (expected, statesT), _ = model.forward(ids)
    for logits, states in runs:
        # float64 model, stepped vs full forward: same products grouped differently: ~1e-14; rtol 1e-12.
        np.testing.assert_allclose(logits, expected, rtol=1e-12, atol=1e-13)
        for mine, ref in zip(states, statesT):
            for a, b in zip(mine, ref):
                # same: float64 rounding only; rtol 1e-12, atol 1e-13.
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_a_training_bn_lstm_steps_through_its_own_code():
    """In training mode the BN-LSTM's step updates its population statistics: the runner leaves it
    to the cell, and the result (statistics included) is the reference stepper's."""
    ids = np.random.default_rng(3).integers(len(VOCAB), size=(3, 5))
    runs = []
    for use_fast in (True, False):
        model = _norm_model("bnlstm").train()
        with contextlib.nullcontext() if use_fast else fast.reference_only():
            stepper = generate.Stepper(model).reset(3)
            logits = np.stack([stepper.feed(ids[:, t]).copy() for t in range(5)], axis=1)
        runs.append((logits, {k: v.copy() for k, v in model.rnn.layers[0].cell.buffers.items()}))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for key in runs[1][1]:
        np.testing.assert_array_equal(runs[0][1][key], runs[1][1][key])
