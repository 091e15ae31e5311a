"""Inference (rnnlab.no_grad) runs the LSTM/GRU loop feature-major (rnnlab.fast.infer):
it must give what the training forward gives, for every kind of input."""
import numpy as np
import pytest

from rnnlab.cells import GRUCell, LSTMCell
from rnnlab.gradcheck import randomize
from rnnlab.layers import Embedding, OneHot, Recurrent, RNNStack
from rnnlab.models import CharRNN, ModelConfig
from rnnlab.module import no_grad

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=2e-6)}


def _both(module, *inputs):
    """(training forward, no_grad forward) of ``module``, outputs copied."""
    (y, sT), _ = module.forward(*inputs)
    y = np.array(y)   # a view of the workspace: copied before the next forward
    with no_grad():
        (y_ng, sT_ng), cache = module.forward(*inputs)
    return (y, sT), (np.array(y_ng), sT_ng), cache


def _assert_close(a, b, dtype):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), **TOL[dtype])


@pytest.mark.parametrize("cell_cls", [LSTMCell, GRUCell], ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_no_grad_layer_equals_the_training_forward(cell_cls, dtype, reverse, with_state, rng, element_steps):
    B, T, D, H = 6, 9, 5, 11
    layer = randomize(Recurrent(cell_cls(D, H), reverse=reverse), rng).astype(dtype)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    state0 = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(layer.cell.state_size)) \
        if with_state else None
    (y, sT), (y_ng, sT_ng), cache = _both(layer, x, state0)
    assert y_ng.shape == (B, T, H) and y_ng.dtype == dtype
    _assert_close(y_ng, y, dtype)
    for a, b in zip(sT_ng, sT):
        assert a.shape == (B, H)
        _assert_close(a, b, dtype)
    np.testing.assert_array_equal(cache.hs[1:][::-1] if reverse else cache.hs[1:], y_ng.transpose(1, 0, 2))
    with pytest.raises(RuntimeError, match="no_grad"):
        layer.backward((np.ones_like(y_ng), None), cache)


@pytest.mark.parametrize("cell_cls", [LSTMCell, GRUCell], ids=lambda c: c.__name__)
@pytest.mark.parametrize("source", ["embedding", "one-hot"])
@pytest.mark.parametrize("reverse", [False, True])
def test_no_grad_token_input(cell_cls, source, reverse, rng, element_steps):
    emb = Embedding(7, 4, dtype=np.float64) if source == "embedding" else OneHot(7, dtype=np.float64)
    layer = randomize(Recurrent(cell_cls(emb.output_size, 5), reverse=reverse), rng)
    ids = rng.integers(0, 7, size=(4, 6))
    (y, sT), _ = layer.forward(emb.forward(ids)[0])
    with no_grad():
        (y_ng, sT_ng), _ = layer.forward(emb.tokens(ids))
    np.testing.assert_allclose(y_ng, y, rtol=1e-12, atol=1e-12)
    for a, b in zip(sT_ng, sT):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_no_grad_stack_reads_the_layer_below_as_it_is(cell, rng):
    """Layer 2 takes layer 1's feature-major output view directly; the model's logits agree."""
    stack = randomize(RNNStack(cell, 3, 6, num_layers=3), rng)
    x = rng.standard_normal((5, 7, 3))
    (y, _), (y_ng, _), _ = _both(stack, x)
    np.testing.assert_allclose(y_ng, y, rtol=1e-12, atol=1e-12)
    model = CharRNN(ModelConfig(9, cell, 16, 2, 4))
    ids = rng.integers(0, 9, size=(8, 12))
    (logits, _), (logits_ng, _), _ = _both(model, ids)
    np.testing.assert_allclose(logits_ng, logits, rtol=1e-5, atol=1e-5)


def test_training_after_inference_still_works(rng):
    """The two paths share workspace arrays (other shapes, same sizes): a training step after
    an evaluation must see nothing of it."""
    layer = randomize(Recurrent(LSTMCell(3, 4)), rng)
    x, dy = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4))
    (y1, _), cache = layer.forward(x)
    dx1, _ = layer.backward((dy, None), cache)
    dx1 = dx1.copy()
    with no_grad():
        layer.forward(2 * x)
    (y2, _), cache = layer.forward(x)
    dx2, _ = layer.backward((dy, None), cache)
    np.testing.assert_array_equal(dx2, dx1)
