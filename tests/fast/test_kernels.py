"""The fused LSTM/GRU kernels (rnnlab.fast) must equal the reference loop over the cells' step functions."""
import contextlib

import numpy as np
import pytest

from rnnlab import fast
from rnnlab.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.gradcheck.core import check_case
from rnnlab.gradcheck.specs import randomize, sequence_case
from rnnlab.layers import Recurrent, RNNStack
from rnnlab.layers import recurrent as recurrent_module
from rnnlab.module import grad_enabled, no_grad

CELLS = [LSTMCell, GRUCell]


def run_both(layer, x, state0, dy, dstateT):
    """Forward + backward with the fused kernel, then with the reference loop."""
    results = []
    for use_kernel in (True, False):
        fast.set_enabled(use_kernel)
        try:
            layer.zero_grad()
            (y, stateT), cache = layer.forward(x, state0)
            dx, dstate0 = layer.backward((dy, dstateT), cache)
        finally:
            fast.set_enabled(True)
        grads = {name: g.copy() for name, _, g in layer.named_parameters()}
        results.append({"y": y.copy(), "stateT": [s.copy() for s in stateT], "dx": np.array(dx),
                        "dstate0": [np.array(d) for d in dstate0], "grads": grads})
    return results


# callers give dtype-justified values: float64 kernel vs reference, rounding only (~1e-14), rtol 1e-12.
def assert_same(a, b, rtol, atol):
    for key in ("y", "dx"):
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=atol, err_msg=key)
    for key in ("stateT", "dstate0"):
        for i, (u, v) in enumerate(zip(a[key], b[key])):
            np.testing.assert_allclose(u, v, rtol=rtol, atol=atol, err_msg=f"{key}[{i}]")
    assert a["grads"].keys() == b["grads"].keys()
    for name in a["grads"]:
        np.testing.assert_allclose(a["grads"][name], b["grads"][name], rtol=rtol, atol=atol, err_msg=name)


@pytest.fixture
def small_chunks(monkeypatch):
    # Several backward blocks, the first one short: T = 7 with blocks of 3 -> 1 + 3 + 3.
    monkeypatch.setattr(recurrent_module, "CHUNK", 3)


@pytest.mark.parametrize("cell_cls", CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_kernel_equals_reference_float64(cell_cls, reverse, with_state, small_chunks, rng, element_steps):
    layer = randomize(Recurrent(cell_cls(4, 5), reverse=reverse), rng)
    B, T, H = 3, 7, 5
    x = rng.standard_normal((B, T, 4))
    n_state = layer.cell.state_size
    state0 = tuple(rng.standard_normal((B, H)) for _ in range(n_state)) if with_state else None
    dy = rng.standard_normal((B, T, H))
    dstateT = tuple(rng.standard_normal((B, H)) for _ in range(n_state))
    fused, ref = run_both(layer, x, state0, dy, dstateT)
    # float64, a fused kernel against the reference loop: the same operations in another order, so the
    # difference is rounding only (~1e-15 per op, a few hundred ops over T <= 7 steps): 1e-12 has 1000x margin
    assert_same(fused, ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cell_cls", CELLS, ids=lambda c: c.__name__)
def test_kernel_equals_reference_without_upstream(cell_cls, rng, element_steps):
    """dy=None (only the final state matters) and dstateT=None (only the outputs), B=1, T=1."""
    for B, T in ((2, 4), (1, 1)):
        layer = randomize(Recurrent(cell_cls(3, 4)), rng)
        x = rng.standard_normal((B, T, 3))
        dstateT = tuple(rng.standard_normal((B, 4)) for _ in range(layer.cell.state_size))
        fused, ref = run_both(layer, x, None, None, dstateT)
        # float64, fused kernel vs reference: same products in another grouping, small T and widths: ~1e-14.
        assert_same(fused, ref, rtol=1e-12, atol=1e-13)
        fused, ref = run_both(layer, x, None, rng.standard_normal((B, T, 4)), None)
        # same: float64 rounding only; rtol 1e-12, atol 1e-13.
        assert_same(fused, ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cell_cls", CELLS, ids=lambda c: c.__name__)
def test_kernel_float32_matches_reference_and_stays_float32(cell_cls, rng, element_steps):
    layer = Recurrent(cell_cls(16, 32, seed=1))
    x = rng.standard_normal((8, 20, 16)).astype(np.float32)
    dy = rng.standard_normal((8, 20, 32)).astype(np.float32)
    fused, ref = run_both(layer, x, None, dy, None)
    assert fused["y"].dtype == fused["dx"].dtype == np.float32
    assert all(g.dtype == np.float32 for g in fused["grads"].values())
    # float32 (eps 1.2e-7) over T = 20 steps of width 32, and the compiled steps' tanh is within 2.7e-7
    # (docs/conventions.md): the rounding compounds through the recurrence to ~1e-5; 2e-4 still fails any
    # wrong equation (an O(1) error)
    assert_same(fused, ref, rtol=2e-4, atol=2e-5)


def test_stack_with_kernels_equals_reference(rng):
    stack = randomize(RNNStack("lstm", 3, 4, 2), rng)
    x = rng.standard_normal((2, 5, 3))
    results = []
    for use_kernel in (True, False):
        with fast.reference_only() if not use_kernel else contextlib.nullcontext():
            stack.zero_grad()
            (y, _), cache = stack.forward(x)
            dx, _ = stack.backward((np.ones_like(y), None), cache)
        results.append((y.copy(), np.array(dx), [g.copy() for _, _, g in stack.named_parameters()]))
    (y1, dx1, g1), (y2, dx2, g2) = results
    # float64, kernel against reference: rounding only, as above
    np.testing.assert_allclose(y1, y2, rtol=1e-12)
    # same: float64 rounding only; rtol 1e-12, atol 1e-13.
    np.testing.assert_allclose(dx1, dx2, rtol=1e-12, atol=1e-13)
    for a, b in zip(g1, g2):
        # same: float64 rounding only; rtol 1e-12, atol 1e-13.
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cell_cls", CELLS, ids=lambda c: c.__name__)
def test_gradcheck_through_fused_kernel_with_several_blocks(cell_cls, small_chunks, rng, element_steps):
    layer = randomize(Recurrent(cell_cls(3, 4)), rng)
    assert fast.kernel_for(layer.cell) is not None
    rows = check_case(cell_cls.__name__, sequence_case("T=7, blocks of 3", layer, 2, 7, rng))
    bad = [r for r in rows if not r.passed]
    assert rows and not bad, bad


def test_dispatch_is_by_exact_class():
    assert fast.kernel_for(LSTMCell(2, 3)) is fast.lstm
    assert fast.kernel_for(GRUCell(2, 3)) is fast.gru
    assert fast.kernel_for(RNNCell(2, 3)) is fast.rnn   # every cell has one (tests/fast/test_kernels_more.py)

    class Variant(LSTMCell):  # overrides the step math: the kernel would be wrong for it
        abstract = True

    assert fast.kernel_for(Variant(2, 3)) is None
    with fast.reference_only():
        assert fast.kernel_for(LSTMCell(2, 3)) is None
    assert fast.enabled()


def test_a_subclass_runs_its_own_steps(rng):
    """A cell that overrides step_forward must be run by the reference loop, not the kernel."""
    calls = []

    class Counting(LSTMCell):
        abstract = True

        def step_forward(self, t, xw, hw, state):
            calls.append(t)
            return super().step_forward(t, xw, hw, state)

    Recurrent(Counting(2, 3)).forward(rng.standard_normal((1, 4, 2)))
    assert calls == [0, 1, 2, 3]


@pytest.mark.parametrize("cell_cls", CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("reverse", [False, True])
def test_no_grad_forward_equals_forward_and_refuses_backward(cell_cls, reverse, rng, element_steps):
    """Under no_grad the kernel keeps one step's gates, not T: same outputs and final state."""
    layer = randomize(Recurrent(cell_cls(4, 5), reverse=reverse), rng)
    x = rng.standard_normal((3, 6, 4))
    state0 = tuple(rng.standard_normal((3, 5)) for _ in range(layer.cell.state_size))
    check_no_grad_forward(layer, x, state0)
    assert grad_enabled()


def check_no_grad_forward(layer, x, state0):
    """The forward under no_grad equals the forward, bit for bit, and its cache refuses a backward. The
    cell's buffers (a BN-LSTM's population statistics, updated in training mode) are restored between them."""
    buffers = {k: v.copy() for k, v in layer.cell.buffers.items()}
    (y, stateT), _ = layer.forward(x, state0)
    y = y.copy()
    for k, v in buffers.items():
        layer.cell.buffers[k][...] = v
    with no_grad():
        (y_ng, stateT_ng), cache = layer.forward(x, state0)
    np.testing.assert_array_equal(y_ng, y)
    for a, b in zip(stateT_ng, stateT):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="no_grad"):
        layer.backward((np.ones_like(y_ng), None), cache)


def test_workspace_reuses_activations_between_steps_but_never_live_ones(rng):
    """A second training step reuses the first one's arrays once its cache is gone; while a
    cache or an output is alive, a new forward must not overwrite it."""
    layer = Recurrent(LSTMCell(3, 4, seed=0))
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    (y1, _), cache1 = layer.forward(x)
    y1_before = y1.copy()
    (y2, _), cache2 = layer.forward(2 * x)         # cache1 and y1 still alive: fresh arrays
    np.testing.assert_array_equal(y1, y1_before)
    assert not np.shares_memory(y1, y2)
    hs_id = id(cache2.hs)
    del y1, cache1, y2, cache2
    (y3, _), cache3 = layer.forward(x)             # everything released: the same memory again
    assert id(cache3.hs) == hs_id
    np.testing.assert_array_equal(y3, y1_before)


@pytest.mark.parametrize("cell_cls", CELLS, ids=lambda c: c.__name__)
def test_kernel_step_products_go_through_the_blas_choice(cell_cls, rng, monkeypatch):
    """RNNLAB_BLAS=auto offers every float32 step product of the fused loops (forward h W_h and
    backward dA W_h^T) to rnnlab.blas.choice; no MKL needed: the timing is faked to pick OpenBLAS."""
    from rnnlab.blas import choice

    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)
    monkeypatch.setattr(choice, "_requested", "auto")
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setattr(choice, "_time_both", lambda B, K, N: {"openblas": 1e-6, "mkl": 2e-6})
    layer = Recurrent(cell_cls(16, 32, seed=1))
    x = rng.standard_normal((8, 20, 16)).astype(np.float32)
    (y, _), cache = layer.forward(x)
    layer.backward((np.ones_like(y), None), cache)
    G = 4 * 32 if cell_cls is LSTMCell else 3 * 32
    assert {(B, K, N) for B, K, N, _ in choice._cache} == {(8, 32, G), (8, G, 32)}


@pytest.mark.parametrize("cell_cls", CELLS, ids=lambda c: c.__name__)
def test_kernel_float32_with_mkl_step_products_matches_reference(cell_cls, rng, monkeypatch, element_steps):
    from rnnlab.blas import choice

    if not choice.mkl_loadable():
        pytest.skip("the mkl extra is not installed")
    monkeypatch.setattr(choice, "_requested", "mkl")
    layer = Recurrent(cell_cls(16, 32, seed=1))
    x = rng.standard_normal((8, 20, 16)).astype(np.float32)
    dy = rng.standard_normal((8, 20, 32)).astype(np.float32)
    fused, ref = run_both(layer, x, None, dy, None)
    # the same float32 bound as test_kernel_float32_matches_reference_and_stays_float32 (another summation order)
    assert_same(fused, ref, rtol=2e-4, atol=2e-5)
