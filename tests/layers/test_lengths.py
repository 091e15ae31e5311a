"""Variable-length batches (``lengths``): Recurrent, Bidirectional and RNNStack.

The oracle is the definition: row b of a padded batch must equal row b run
alone, unpadded, over its own lengths[b] positions (outputs, final state, dx,
initial-state gradient), the weight gradients of the batch must equal the
sum over the rows run alone, and nothing may read the padding (it holds NaN
here, in x and in dy). Parity with torch's packed sequences is in
tests/parity/test_packed_parity.py.
"""
import contextlib

import numpy as np
import pytest

from rnnlab import fast, no_grad
from rnnlab.cells import CELLS, make_cell
from rnnlab.gradcheck.specs import random_population, randomize
from rnnlab.layers import Bidirectional, Embedding, Recurrent, RNNStack
from rnnlab.layers import recurrent as recurrent_module
from rnnlab.train.guard import hidden_max

D, H = 3, 4
LENGTHS = {"max=T": (6, [4, 6, 1, 3, 4]), "max<T": (7, [2, 5, 1, 5])}
MODES = {"kernel": contextlib.nullcontext, "reference": fast.reference_only}


def make_layer(name, rng, reverse=False):
    kw = {"max_steps": 8} if name == "bnlstm" else {}
    layer = randomize(Recurrent(make_cell(name, D, H, **kw), reverse=reverse), rng)
    if name == "bnlstm":  # eval mode: population statistics, so rows do not interact
        random_population(layer.cell, rng, trained_steps=3)
        layer.eval()
    return layer


def padded_problem(rng, B, T, lengths, width_in, width_out, n_state, with_state):
    x = rng.standard_normal((B, T, width_in))
    dy = rng.standard_normal((B, T, width_out))
    for b, L in enumerate(lengths):  # the padding must never be read
        x[b, L:] = np.nan
        dy[b, L:] = np.nan
    state0 = tuple(rng.standard_normal((B, H)) for _ in range(n_state)) if with_state else None
    dstateT = tuple(rng.standard_normal((B, H)) for _ in range(n_state))
    return x, state0, dy, dstateT


def run(layer, x, state0, dy, dstateT, lengths=None):
    layer.zero_grad()
    (y, stateT), cache = layer.forward(x, state0, lengths)
    dx, dstate0 = layer.backward((dy, dstateT), cache)
    return {"y": np.array(y), "stateT": [np.array(s) for s in stateT], "dx": np.array(dx),
            "dstate0": [np.array(d) for d in dstate0],
            "grads": {name: g.copy() for name, _, g in layer.named_parameters()}}


def rows_alone(layer, x, state0, dy, dstateT, lengths):
    """Each row run on its own, unpadded; weight gradients summed over the rows."""
    rows, grads = [], None
    for b, L in enumerate(lengths):
        s0 = None if state0 is None else tuple(s[b:b + 1] for s in state0)
        r = run(layer, x[b:b + 1, :L], s0, dy[b:b + 1, :L], tuple(s[b:b + 1] for s in dstateT))
        grads = r["grads"] if grads is None else {k: grads[k] + r["grads"][k] for k in grads}
        rows.append(r)
    return rows, grads


# float64; padded vs one-row-at-a-time runs: only the BLAS's blocking and the order of the per-row
# gradient sums differ (a few rows, T <= 8): ~1e-14; rtol/atol 1e-12 leave 100x.
def close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=what)


def assert_rows_match(batch, rows, grads, lengths, with_state):
    for b, (L, r) in enumerate(zip(lengths, rows)):
        close(batch["y"][b, :L], r["y"][0], f"y row {b}")
        close(batch["dx"][b, :L], r["dx"][0], f"dx row {b}")
        assert not batch["y"][b, L:].any() and not batch["dx"][b, L:].any(), f"padding of row {b} not 0"
        for i, (s, s1) in enumerate(zip(batch["stateT"], r["stateT"])):
            close(s[b], s1[0], f"stateT[{i}] row {b}")
        if with_state:
            for i, (d, d1) in enumerate(zip(batch["dstate0"], r["dstate0"])):
                close(d[b], d1[0], f"dstate0[{i}] row {b}")
    for name in grads:
        close(batch["grads"][name], grads[name], f"grad {name}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "state0"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("shape", LENGTHS)
def test_each_row_equals_that_row_alone(shape, name, reverse, with_state, mode, rng):
    T, lengths = LENGTHS[shape]
    with MODES[mode]():
        layer = make_layer(name, rng, reverse)
        x, state0, dy, dstateT = padded_problem(rng, len(lengths), T, lengths, D, H,
                                                layer.cell.state_size, with_state)
        batch = run(layer, x, state0, dy, dstateT, np.array(lengths))
        rows, grads = rows_alone(layer, x, state0, dy, dstateT, lengths)
    assert_rows_match(batch, rows, grads, lengths, with_state)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("name", list(CELLS))
def test_full_lengths_are_bit_identical_to_no_lengths(name, reverse, mode, rng):
    B, T = 3, 5
    with MODES[mode]():
        layer = make_layer(name, rng, reverse)
        x, state0, dy, dstateT = padded_problem(rng, B, T, [T] * B, D, H, layer.cell.state_size, True)
        plain = run(layer, x, state0, dy, dstateT)
        full = run(layer, x, state0, dy, dstateT, np.full(B, T))
    for key in ("y", "dx"):
        np.testing.assert_array_equal(full[key], plain[key], err_msg=key)
    for key in ("stateT", "dstate0"):
        for a, b in zip(full[key], plain[key]):
            np.testing.assert_array_equal(a, b, err_msg=key)
    for name_ in plain["grads"]:
        np.testing.assert_array_equal(full["grads"][name_], plain["grads"][name_], err_msg=name_)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_active_kernel_equals_reference_loop(name, reverse, rng, element_steps, monkeypatch):
    """The kernels' ``active`` path, NumPy and compiled steps, over several backward blocks."""
    monkeypatch.setattr(recurrent_module, "CHUNK", 3)
    T, lengths = 7, [7, 2, 5, 1, 5]
    layer = make_layer(name, rng, reverse)
    x, state0, dy, dstateT = padded_problem(rng, len(lengths), T, lengths, D, H, layer.cell.state_size, True)
    fused = run(layer, x, state0, dy, dstateT, np.array(lengths))
    with fast.reference_only():
        ref = run(layer, x, state0, dy, dstateT, np.array(lengths))
    for key in ("y", "dx"):
        close(fused[key], ref[key], key)
    for key in ("stateT", "dstate0"):
        for a, b in zip(fused[key], ref[key]):
            close(a, b, key)
    for g in ref["grads"]:
        close(fused["grads"][g], ref["grads"][g], g)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_no_grad_forward_with_lengths_is_identical(name, rng):
    layer = make_layer(name, rng, reverse=True)
    lengths = np.array([3, 5, 1])
    x = rng.standard_normal((3, 5, D))
    (y, sT), _ = layer.forward(x, None, lengths)
    with no_grad():
        (y2, sT2), cache = layer.forward(x, None, lengths)
    np.testing.assert_array_equal(y, y2)
    for a, b in zip(sT, sT2):
        np.testing.assert_array_equal(a, b)
    if getattr(fast.kernel_for(layer.cell), "SUPPORTS_ACTIVE", False):  # the kernel kept nothing
        with pytest.raises(RuntimeError, match="no_grad"):
            layer.backward((np.ones_like(y), None), cache)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_token_input_with_lengths_equals_embedded_vectors(name, reverse, rng):
    V, B, T = 6, 4, 5
    lengths = np.array([2, 5, 1, 4])
    ids = rng.integers(0, V, size=(B, T))
    emb = randomize(Embedding(V, D), rng)
    layer = make_layer(name, rng, reverse)
    dy = rng.standard_normal((B, T, H))
    results = []
    for fused in (True, False):
        layer.zero_grad()
        emb.zero_grad()
        if fused:
            (y, sT), cache = layer.forward(emb.tokens(ids), None, lengths)
            dx, _ = layer.backward((dy, None), cache)
            assert dx is None
        else:
            x, ecache = emb.forward(ids)
            (y, sT), cache = layer.forward(x, None, lengths)
            dx, _ = layer.backward((dy, None), cache)
            emb.backward(dx, ecache)
        grads = {n: g.copy() for n, _, g in layer.named_parameters()}
        grads["emb"] = emb.grads["W"].copy()
        results.append((np.array(y), [np.array(s) for s in sT], grads))
    (y1, s1, g1), (y2, s2, g2) = results
    close(y1, y2, "y")
    for a, b in zip(s1, s2):
        close(a, b, "stateT")
    for n in g2:
        close(g1[n], g2[n], n)
    assert not y1[0, 2:].any()


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_bidirectional_rows_equal_rows_alone(name, rng):
    T, lengths = 6, [4, 6, 1, 3]
    bi = randomize(Bidirectional(make_cell(name, D, H), make_cell(name, D, H)), rng)
    n = bi.fwd.cell.state_size
    x, _, dy, _ = padded_problem(rng, len(lengths), T, lengths, D, 2 * H, n, False)
    state0 = tuple(tuple(rng.standard_normal((len(lengths), H)) for _ in range(n)) for _ in range(2))
    dstateT = tuple(tuple(rng.standard_normal((len(lengths), H)) for _ in range(n)) for _ in range(2))

    def go(x, s0, dy, dsT, lengths=None):
        bi.zero_grad()
        (y, sT), cache = bi.forward(x, s0, lengths)
        dx, ds0 = bi.backward((dy, dsT), cache)
        return y, sT, dx, ds0, {k: g.copy() for k, _, g in bi.named_parameters()}

    y, sT, dx, ds0, grads = go(x, state0, dy, dstateT, np.array(lengths))
    total = {k: 0 for k in grads}
    pick = lambda tree, b: tuple(tuple(a[b:b + 1] for a in d) for d in tree)  # noqa: E731
    for b, L in enumerate(lengths):
        y1, sT1, dx1, ds01, g1 = go(x[b:b + 1, :L], pick(state0, b), dy[b:b + 1, :L], pick(dstateT, b))
        close(y[b, :L], y1[0], "y")
        close(dx[b, :L], dx1[0], "dx")
        assert not y[b, L:].any() and not dx[b, L:].any()
        for d in range(2):
            for a, a1 in zip(sT[d], sT1[d]):
                close(a[b], a1[0], "stateT")
            for a, a1 in zip(ds0[d], ds01[d]):
                close(a[b], a1[0], "dstate0")
        total = {k: total[k] + g1[k] for k in total}
    for k in grads:
        close(grads[k], total[k], k)


def _reseed(stack):
    for k, drop in enumerate(stack.drops):
        if drop is not None:
            drop.rng = np.random.default_rng(k)


def test_stack_with_dropout_never_reads_padding(rng):
    B, T, lengths = 4, 6, np.array([6, 2, 1, 4])
    stack = randomize(RNNStack("lstm", D, H, 3, dropout=0.5, proj_size=2), rng)
    x = rng.standard_normal((B, T, D))
    dy = rng.standard_normal((B, T, 2))
    results = []
    for fill in (0.0, np.nan):   # what the padding holds must not matter
        xp, dyp = x.copy(), dy.copy()
        for b, L in enumerate(lengths):
            xp[b, L:] = fill
            dyp[b, L:] = fill
        _reseed(stack)
        stack.zero_grad()
        (y, sT), cache = stack.forward(xp, None, lengths)
        dx, ds0 = stack.backward((dyp, None), cache)
        assert np.isfinite(hidden_max(cache))
        results.append((np.array(y), np.array(dx), {k: g.copy() for k, _, g in stack.named_parameters()}))
        for b, L in enumerate(lengths):
            assert not y[b, L:].any() and not dx[b, L:].any()
    (y1, dx1, g1), (y2, dx2, g2) = results
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)


def test_stack_rows_equal_rows_alone_and_hidden_max(rng):
    T, lengths = 5, [3, 5, 1]
    stack = randomize(RNNStack("gru", D, H, 2, dropout=0.3, bidirectional=True), rng).eval()
    x, _, dy, _ = padded_problem(rng, len(lengths), T, lengths, D, 2 * H, 1, False)
    stack.zero_grad()
    (y, sT), cache = stack.forward(x, None, np.array(lengths))
    dx, _ = stack.backward((dy, None), cache)
    grads = {k: g.copy() for k, _, g in stack.named_parameters()}
    peak = max(np.abs(y[b, :L]).max() for b, L in enumerate(lengths))
    assert hidden_max(cache) >= peak   # the top layer's states, frozen copies included, are all finite
    total = {k: 0 for k in grads}
    for b, L in enumerate(lengths):
        stack.zero_grad()
        (y1, sT1), c1 = stack.forward(x[b:b + 1, :L])
        dx1, _ = stack.backward((dy[b:b + 1, :L], None), c1)
        close(y[b, :L], y1[0], "y")
        close(dx[b, :L], dx1[0], "dx")
        for layer_state, layer_state1 in zip(sT, sT1):
            for d in range(2):
                close(layer_state[d][0][b], layer_state1[d][0][0], "stateT")
        total = {k: total[k] + g for k, _, g in stack.named_parameters()}
    for k in grads:
        close(grads[k], total[k], k)


@pytest.mark.parametrize("lengths,match", [([0, 3], r"\[1, 4\]"), ([5, 3], r"\[1, 4\]"), ([2], "shape"),
                                           ([2.0, 3.0], "integer")])
def test_invalid_lengths_are_refused(lengths, match, rng):
    layer = make_layer("lstm", rng)
    with pytest.raises(ValueError, match=match):
        layer.forward(rng.standard_normal((2, 4, D)), None, np.array(lengths))
