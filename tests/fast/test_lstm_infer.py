"""The forward-only LSTM loop (rnnlab.fast.lstm_infer), run under no_grad, must equal the training
forward (float64 to 1e-12, float32 to its rounding), on every path: compiled steps and their NumPy
twins, vectors and token ids (embedding and one-hot), variable lengths, reversed layers, initial
states, stacked layers with a projection, and the char-LM's loss."""
import tracemalloc

import numpy as np
import pytest

from rnnlab import no_grad
from rnnlab.cells import LSTMCell
from rnnlab.fast import accel, lstm, lstm_infer
from rnnlab.gradcheck.specs import randomize
from rnnlab.layers import Embedding, OneHot, Recurrent, RNNStack, SoftmaxCrossEntropy
from rnnlab.layers import recurrent as recurrent_module
from rnnlab.models import CharRNN, ModelConfig

# float64: compiled vs NumPy inference steps reorder a few operations per element: ~1e-15; 1e-12 leaves 1000x.
F64 = {"rtol": 1e-12, "atol": 1e-12}
D, H = 4, 5


def both(fn):
    """fn() with gradients on (the training forward), then under no_grad."""
    out = fn()
    with no_grad():
        return out, fn()


def assert_same_outputs(a, b, **tol):
    (y, sT), (y2, sT2) = a, b
    np.testing.assert_allclose(y2, y, **tol, err_msg="y")
    for u, v in zip(sT, sT2):
        for p, q in zip(u if isinstance(u, tuple) else (u,), v if isinstance(v, tuple) else (v,)):
            np.testing.assert_allclose(q, p, **tol, err_msg="stateT")


# -- one step -----------------------------------------------------------------------------------
def step_inputs(rng, dtype, B=3, H=6, V=4):
    G = 4 * H
    table = rng.standard_normal((V, G)).astype(dtype)
    ids = rng.integers(0, V, B)
    return {"xw": table[ids], "table": table, "ids": ids, "hw": rng.standard_normal((B, G)).astype(dtype),
            "bias": rng.standard_normal(G).astype(dtype), "scale": lstm.preact_scale(H, dtype),
            "shift": lstm.preact_shift(H, dtype), "c": rng.standard_normal((B, H)).astype(dtype)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_step_is_the_training_step_without_its_cache(dtype, rng):
    """Operand for operand the training step's arithmetic: bit-identical h, c and gates."""
    s = step_inputs(rng, dtype)
    B, H = s["c"].shape
    a, c_train, h_train = s["xw"].copy(), np.empty_like(s["c"]), np.empty_like(s["c"])
    lstm.forward_step(a, s["hw"], s["bias"], s["scale"], s["shift"], s["c"], c_train, np.empty_like(s["c"]),
                      h_train, ig=np.empty_like(s["c"]))
    hw, c, h = s["hw"].copy(), s["c"].copy(), np.empty_like(s["c"])
    lstm_infer.infer_step(s["xw"], hw, s["bias"], s["scale"], s["shift"], c, h, np.empty((B, H), dtype))
    np.testing.assert_array_equal(hw, a)
    np.testing.assert_array_equal(c, c_train)
    np.testing.assert_array_equal(h, h_train)


@pytest.mark.skipif(not accel.available(), reason="numba is not installed: nothing compiled to test")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows", [False, True], ids=["xw", "table_rows"])
def test_compiled_step_equals_numpy_step(dtype, rows, rng, monkeypatch):
    monkeypatch.setattr(accel, "_enabled", True)   # the compiled steps themselves, even under RNNLAB_ACCEL=0
    s = step_inputs(rng, dtype)
    # float32: the compiled sigmoid/tanh are within ~3e-7 (a few ulps); one step: 2e-6 leaves ~7x.
    tol = F64 if dtype == np.float64 else {"rtol": 2e-6, "atol": 2e-6}
    hw, c, h = s["hw"].copy(), s["c"].copy(), np.empty_like(s["c"])
    lstm_infer.infer_step(s["xw"], hw, s["bias"], s["scale"], s["shift"], c, h, np.empty_like(c))
    K = accel.steps(dtype)
    hw2, c2, h2 = s["hw"].copy(), s["c"].copy(), np.empty_like(s["c"])
    if rows:
        K.lstm_infer_rows(s["table"], s["ids"], hw2, s["bias"], s["scale"], s["shift"], c2, h2)
    else:
        K.lstm_infer(s["xw"], hw2, s["bias"], s["scale"], s["shift"], c2, h2)
    for got, want in ((hw2, hw), (c2, c), (h2, h)):
        np.testing.assert_allclose(got, want, **tol)
        assert got.dtype == dtype


# -- one layer ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "state0"])
@pytest.mark.parametrize("lengths", [None, [3, 7, 1, 5]], ids=["full", "lengths"])
def test_layer_no_grad_equals_training_forward(reverse, with_state, lengths, rng, element_steps):
    layer = randomize(Recurrent(LSTMCell(D, H), reverse=reverse), rng)
    B, T = 4, 7
    x = rng.standard_normal((B, T, D))
    state0 = (rng.standard_normal((B, H)), rng.standard_normal((B, H))) if with_state else None
    lengths = None if lengths is None else np.array(lengths)
    train, infer = both(lambda: [np.array(v) if i == 0 else v for i, v in
                                 enumerate(layer.forward(x, state0, lengths)[0])])
    assert_same_outputs(train, infer, **F64)


@pytest.mark.parametrize("embed", ["embedding", "one_hot"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("lengths", [None, [2, 6, 1, 4, 6]], ids=["full", "lengths"])
def test_token_input_reads_table_rows_and_equals_training_forward(embed, reverse, lengths, rng, element_steps,
                                                                 monkeypatch):
    V, B, T = 7, 5, 6
    emb = randomize(Embedding(V, D), rng) if embed == "embedding" else OneHot(V, dtype=np.float64)
    layer = randomize(Recurrent(LSTMCell(emb.output_size, H), reverse=reverse), rng)
    ids = rng.integers(0, V, (B, T))
    state0 = (rng.standard_normal((B, H)), rng.standard_normal((B, H)))
    lengths = None if lengths is None else np.array(lengths)
    gathered = []
    real_project = recurrent_module.project
    monkeypatch.setattr(recurrent_module, "project", lambda *a: gathered.append(1) or real_project(*a))
    train, infer = both(lambda: [np.array(v) if i == 0 else v for i, v in
                                 enumerate(layer.forward(emb.tokens(ids), state0, lengths)[0])])
    assert gathered == [1]     # the training forward gathers XW; the no_grad one reads the table's rows
    assert_same_outputs(train, infer, **F64)


def test_no_grad_allocates_no_sequence_sized_gate_array(rng):
    """The forward-only loop keeps no (T, B, 4H) array: neither the gathered token projection nor
    T steps of gates and cell states (a fresh layer, so its workspace is empty)."""
    V, B, T, H = 6, 8, 100, 16
    emb = randomize(Embedding(V, D), rng)
    layer = randomize(Recurrent(LSTMCell(D, H)), rng)
    ids = rng.integers(0, V, (B, T))
    gates_nbytes = T * B * 4 * H * 8   # 410 KB; the outputs hs, (T + 1, B, H), are a quarter of it
    with no_grad():
        # A first forward of another layer loads the compiled steps (numba allocates while it does).
        randomize(Recurrent(LSTMCell(D, H)), rng).forward(emb.tokens(ids))
        tracemalloc.start()
        layer.forward(emb.tokens(ids))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < gates_nbytes / 2, (peak, gates_nbytes)
    with pytest.raises(RuntimeError, match="no_grad"):
        with no_grad():
            (y, _), cache = layer.forward(emb.tokens(ids))
        layer.backward((np.ones_like(y), None), cache)


# -- stacks, the char-LM and its loss ----------------------------------------------------------------
@pytest.mark.parametrize("lengths", [None, [5, 2, 6]], ids=["full", "lengths"])
def test_stack_with_projection_and_states_equals_training_forward(lengths, rng, element_steps):
    stack = randomize(RNNStack("lstm", D, H, 3, proj_size=3), rng)
    B, T = 3, 6
    x = rng.standard_normal((B, T, D))
    states0 = [(rng.standard_normal((B, H)), rng.standard_normal((B, H))) for _ in range(3)]
    lengths = None if lengths is None else np.array(lengths)
    train, infer = both(lambda: [np.array(v) if i == 0 else v for i, v in
                                 enumerate(stack.forward(x, states0, lengths)[0])])
    assert_same_outputs(train, infer, **F64)


@pytest.mark.parametrize("with_mask", [False, True], ids=["all", "masked"])
def test_charlm_logits_and_loss_equal_training_forward(with_mask, rng, element_steps):
    V, B, T = 11, 4, 20      # B * T > V: the model feeds token ids to its first layer
    model = randomize(CharRNN(ModelConfig(vocab_size=V, hidden_size=H, num_layers=2, embedding_size=D)), rng)
    ids = rng.integers(0, V, (B, T + 1))
    mask = (rng.random((B, T)) < 0.7).astype(np.float64) if with_mask else None
    loss = SoftmaxCrossEntropy()

    def run():
        (logits, states), _ = model.forward(ids[:, :-1])
        value, cache = loss.forward(logits, ids[:, 1:], mask)
        return np.array(logits), states, value, cache

    (lg, st, value, _), (lg2, st2, value2, cache2) = both(run)
    assert_same_outputs((lg, st), (lg2, st2), **F64)
    # float64 loss, a mean of log-softmax terms computed in the two modes: ~1e-15 relative; 1e-12.
    assert abs(value2 - value) <= 1e-12 * abs(value)
    assert cache2.probs is None
    with pytest.raises(RuntimeError, match="no_grad"):
        loss.backward(1.0, cache2)


def test_float32_model_stays_float32_and_close(rng, element_steps):
    model = CharRNN(ModelConfig(vocab_size=9, hidden_size=16, num_layers=2, embedding_size=6))
    ids = rng.integers(0, 9, (6, 12))
    (lg, _), _ = model.forward(ids)
    lg = np.array(lg)
    with no_grad():
        (lg2, states), _ = model.forward(ids)
    assert lg2.dtype == np.float32 and all(s.dtype == np.float32 for st in states for s in st)
    # float32 no_grad vs training forward, 2 layers x 12 steps of width 16: compiled tanh (~3e-7) and float32
    # products of length 16 (~16*2^-24) compound to ~1e-6 on logits O(1); rtol 1e-5, atol 1e-6.
    np.testing.assert_allclose(lg2, lg, rtol=1e-5, atol=1e-6)
