"""Token input (rnnlab.layers.tokens): an embedding and the first input projection as one lookup.

Every result must equal the unfused computation: the embedding's vectors
through the layer's product, then the embedding's own backward.
"""
import numpy as np
import pytest

from rnnlab.cells import make_cell
from rnnlab.fast import parallel
from rnnlab.gradcheck import randomize
from rnnlab.layers import Embedding, OneHot, Recurrent, SoftmaxCrossEntropy
from rnnlab.layers import tokens
from rnnlab.layers.tokens import Tokens, add_rows, project, segment_add
from rnnlab.models import CharRNN, ModelConfig
from rnnlab.models import charlm


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_segment_add_equals_add_at(dtype, rng, element_steps):
    ids = rng.integers(0, 6, size=(5, 7))                 # ids 6..9 never occur, most others repeat
    rows = rng.standard_normal((5, 7, 3)).astype(dtype)
    out = np.ones((10, 3), dtype)                          # accumulates
    add_rows(ids, rows, out)
    expected = np.ones((10, 3), dtype)
    np.add.at(expected, ids.ravel(), rows.reshape(-1, 3))
    # the same additions in another order (a segment sum against np.add.at): float32 a few ulps of sums of
    # up to 35 rows (1e-5), float64 likewise (1e-13)
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("one_hot_max", [128, 0], ids=["one-hot product", "sort and reduceat"])
def test_numpy_segment_add_both_ways(one_hot_max, rng, monkeypatch):
    monkeypatch.setattr(tokens, "ONE_HOT_MAX", one_hot_max)
    ids = rng.integers(0, 6, size=40)
    rows = rng.standard_normal((40, 3))
    out = np.ones((10, 3))
    segment_add(ids, rows, out)
    expected = np.ones((10, 3))
    np.add.at(expected, ids, rows)
    # float64 scatter-add of 40 rows onto 1.0 in another order than np.add.at: <= 40 eps ~ 1e-14; rtol 1e-13.
    np.testing.assert_allclose(out, expected, rtol=1e-13)


def test_segment_add_of_nothing_changes_nothing():
    out = np.ones((4, 2))
    segment_add(np.zeros(0, np.int64), np.zeros((0, 2)), out)
    assert (out == 1).all()


def _layer_and_input(cell, source, rng, reverse=False, B=4, T=6, V=7, H=5):
    layer = randomize(Recurrent(make_cell(cell, source.output_size, H), reverse=reverse), rng)
    if isinstance(source, Embedding):
        source.params["W"][:] = rng.standard_normal(source.params["W"].shape)
    return layer, rng.integers(0, V, size=(B, T))


def _fused_and_unfused(layer, source, ids, dy, dstateT):
    """(outputs, final state, initial-state gradients, all gradients) both ways."""
    runs = []
    for fused in (True, False):
        layer.zero_grad()
        source.zero_grad()
        x = source.tokens(ids) if fused else source.forward(ids)[0]
        (y, sT), cache = layer.forward(x)
        dx, ds0 = layer.backward((dy, dstateT), cache)
        if fused:
            assert dx is None                             # nothing to hand back: the table got it
        elif isinstance(source, Embedding):
            source.backward(dx, source.forward(ids)[1])
        grads = {n: g.copy() for n, _, g in list(layer.named_parameters()) + list(source.named_parameters())}
        runs.append((np.array(y), [np.array(s) for s in sT], [np.array(d) for d in ds0], grads))
    return runs


# float64 by default (callers pass float32 values): fused vs separate embedding lookups sum the same
# products in another order through <= 2 layers: ~1e-14; rtol 1e-12, atol 1e-13 for near-zero entries.
def _assert_same(runs, rtol=1e-12, atol=1e-13):
    (y1, s1, d1, g1), (y2, s2, d2, g2) = runs
    np.testing.assert_allclose(y1, y2, rtol=rtol, atol=atol)
    for a, b in zip(s1 + d1, s2 + d2):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    assert g1.keys() == g2.keys()
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "bnlstm"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("one_hot", [False, True])
def test_token_input_equals_the_gathered_vectors(cell, reverse, one_hot, rng, element_steps):
    source = OneHot(7, dtype=np.float64) if one_hot else Embedding(7, 3, dtype=np.float64)
    layer, ids = _layer_and_input(cell, source, rng, reverse)
    dy = rng.standard_normal((4, 6, 5))
    dstateT = tuple(rng.standard_normal((4, 5)) for _ in range(layer.cell.state_size))
    _assert_same(_fused_and_unfused(layer, source, ids, dy, dstateT))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_token_input_with_the_batch_split_over_threads(cell, rng):
    pytest.importorskip("threadpoolctl")
    source = Embedding(7, 3, dtype=np.float64)
    layer, ids = _layer_and_input(cell, source, rng, B=16)
    dy = rng.standard_normal((16, 6, 5))
    parallel.set_threads(2)
    try:
        runs = _fused_and_unfused(layer, source, ids, dy, None)
    finally:
        parallel.set_threads(None)
    _assert_same(runs)


def test_tokens_are_checked_against_the_vocabulary():
    with pytest.raises(ValueError, match="out of range"):
        Embedding(5, 2).tokens(np.array([[0, 5]]))
    with pytest.raises(ValueError, match="features"):
        Recurrent(make_cell("lstm", 3, 4)).forward(Tokens(np.zeros((1, 2), np.int64), None, None, 5))


@pytest.mark.parametrize("cell,embedding", [("lstm", 4), ("gru", 0)])
def test_char_model_trains_the_same_fused_or_not(cell, embedding, rng, monkeypatch):
    """Whole model, float32 as in training: logits and every gradient agree to rounding."""
    ids = rng.integers(0, 9, size=(6, 11))
    runs = []
    for fused in (True, False):
        monkeypatch.setattr(charlm, "FUSE_INPUT", fused)
        model = CharRNN(ModelConfig(9, cell, 16, 2, embedding))
        assert model.fuse_input(ids[:, :-1]) is fused
        loss = SoftmaxCrossEntropy()
        (logits, _), cache = model.forward(ids[:, :-1])
        assert (cache.embed is None) is fused
        _, lcache = loss.forward(logits, ids[:, 1:])
        model.backward((loss.backward(1.0, lcache), None), cache)
        runs.append((logits, {n: g.copy() for n, _, g in model.named_parameters()}))
    # float32 (the model's dtype): the fused lookup E W_x against embedding then product sums the same terms
    # in another order; through 2 layers and the softmax that is ~1e-6, and the gradients a few float32 ulps
    # (2^-24 ~ 6e-8) summed over 60 tokens: measured <= 0.19 % of the old bound (rtol 1e-4, atol 1e-6) under
    # OPENBLAS_CORETYPE unset, Sandybridge and Haswell, so rtol 1e-5 still leaves ~50x
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-5, atol=1e-6)
    for name, g in runs[0][1].items():
        np.testing.assert_allclose(g, runs[1][1][name], rtol=1e-5, atol=1e-6, err_msg=name)
        assert np.abs(g).max() > 0, name                       # every parameter got a gradient


def test_small_batches_keep_the_embedding_vectors():
    model = CharRNN(ModelConfig(50, "lstm", 8, 1, 4))
    assert not model.fuse_input(np.zeros((2, 5), np.int64))   # 10 positions < 50 tokens
    assert model.fuse_input(np.zeros((8, 8), np.int64))


def test_projection_gathers_the_rows_of_the_projected_table(rng, element_steps):
    table, W_x = rng.standard_normal((7, 3)).astype(np.float32), rng.standard_normal((3, 8)).astype(np.float32)
    ids = rng.integers(0, 7, size=(5, 4))
    for ids_tm in (ids, ids[::-1]):                       # a reversed layer reads its ids backwards
        out = np.empty((5, 4, 8), np.float32)
        project(ids_tm, table, W_x, out)
        np.testing.assert_array_equal(out, (table @ W_x)[ids_tm])
