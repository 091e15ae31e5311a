"""The fused kernels of the tanh/ReLU RNN, IRNN, BN-LSTM and LN-LSTM must equal the reference loop."""
import contextlib
import inspect

import numpy as np
import pytest

from rnnlab import fast
from rnnlab.cells import BNLSTMCell, IRNNCell, LNLSTMCell, RNNCell
from rnnlab.errors import ConfigError
from rnnlab.gradcheck.core import check_case
from rnnlab.gradcheck.specs import random_population, randomize, sequence_case
from rnnlab.layers import Recurrent
from rnnlab.layers import recurrent as recurrent_module
from rnnlab.module import no_grad

from .test_kernels import check_no_grad_forward

# name -> (make(D, H), mode): mode "train" or "eval" (BN-LSTM only: population statistics)
CELLS = {
    "rnn-tanh": (lambda d, h: RNNCell(d, h), "train"),
    "rnn-relu": (lambda d, h: RNNCell(d, h, nonlinearity="relu"), "train"),
    "irnn": (lambda d, h: IRNNCell(d, h), "train"),
    "lnlstm": (lambda d, h: LNLSTMCell(d, h), "train"),
    "lnlstm-joint": (lambda d, h: LNLSTMCell(d, h, per_gate=False), "train"),
    "bnlstm-train": (lambda d, h: BNLSTMCell(d, h, max_steps=6), "train"),
    "bnlstm-eval": (lambda d, h: BNLSTMCell(d, h, max_steps=6), "eval"),
}


def make_layer(name, rng, D=4, H=5, reverse=False, dtype=np.float64):
    make, mode = CELLS[name]
    layer = randomize(Recurrent(make(D, H), reverse=reverse), rng)
    if isinstance(layer.cell, BNLSTMCell):
        random_population(layer.cell, rng, trained_steps=3)   # eval with T > 3 reuses slot 2
    if mode == "eval":
        layer.eval()
    return layer.astype(dtype)


def run(layer, x, state0, dy, dstateT, use_kernel, **kw):
    """Forward + backward with the kernel or the reference loop, from the same buffers."""
    buffers = {k: v.copy() for k, v in layer.cell.buffers.items()}
    fast.set_enabled(use_kernel)
    try:
        assert (fast.kernel_for(layer.cell) is not None) == use_kernel
        layer.zero_grad()
        (y, stateT), cache = layer.forward(x, state0, **kw)
        dx, dstate0 = layer.backward((dy, dstateT), cache)
    finally:
        fast.set_enabled(True)
    out = {"y": np.array(y), "dx": np.array(dx), **{f"stateT{i}": np.array(s) for i, s in enumerate(stateT)},
           **{f"dstate0{i}": np.array(d) for i, d in enumerate(dstate0)},
           **{name: g.copy() for name, _, g in layer.named_parameters()},
           **{f"buffer {k}": v.copy() for k, v in layer.cell.buffers.items()}}
    for k, v in buffers.items():   # back to the same population statistics for the other run
        layer.cell.buffers[k][...] = v
    return out


def assert_close(a, b, tol):
    assert a.keys() == b.keys()
    for key in a:
        scale = max(1.0, float(np.abs(b[key]).max()) if b[key].size else 1.0)
        err = float(np.abs(a[key] - b[key]).max()) if b[key].size else 0.0
        assert err <= tol * scale, f"{key}: {err:.2e} > {tol:.0e} x {scale:.2g}"
        assert a[key].dtype == b[key].dtype


def inputs(layer, rng, B, T, dtype=np.float64, with_state=True, dy=True):
    D, H, n = layer.input_size, layer.hidden_size, layer.cell.state_size
    if layer.cell.training and isinstance(layer.cell, BNLSTMCell):
        # Batch statistics of 3 examples can have a tiny variance, which amplifies round-off
        # (both implementations' alike) past 1e-12; 5 keep it away from zero (as the gradcheck spec).
        B = max(B, 5)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    state0 = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(n)) if with_state else None
    dys = rng.standard_normal((B, T, H)).astype(dtype) if dy else None
    dstateT = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(n))
    return x, state0, dys, dstateT


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(recurrent_module, "CHUNK", 3)   # T = 7: backward blocks of 1 + 3 + 3 steps


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("B,T", [(3, 7), (4, 20), (3, 1)])   # T = 20 > CHUNK = 16: two blocks
def test_kernel_equals_reference_float64(name, reverse, B, T, rng, element_steps):
    layer = make_layer(name, rng, reverse=reverse)
    args = inputs(layer, rng, B, T)
    assert_close(run(layer, *args, True), run(layer, *args, False), 1e-12)


@pytest.mark.parametrize("name", CELLS)
def test_several_short_blocks_and_no_upstream(name, rng, small_chunks, element_steps):
    layer = make_layer(name, rng)
    for with_state, dy in ((False, True), (True, False)):
        x, state0, dys, dstateT = inputs(layer, rng, 3, 7, with_state=with_state, dy=dy)
        if not dy:
            assert_close(run(layer, x, state0, None, dstateT, True), run(layer, x, state0, None, dstateT, False), 1e-12)
        else:
            assert_close(run(layer, x, state0, dys, None, True), run(layer, x, state0, dys, None, False), 1e-12)


@pytest.mark.parametrize("name", [n for n in CELLS if n != "bnlstm-train"])
def test_batch_of_one(name, rng, element_steps):
    layer = make_layer(name, rng)
    for T in (1, 9):
        args = inputs(layer, rng, 1, T)
        assert_close(run(layer, *args, True), run(layer, *args, False), 1e-12)


@pytest.mark.parametrize("name", CELLS)
def test_float32_matches_reference_and_stays_float32(name, rng, element_steps):
    layer = make_layer(name, rng, D=16, H=32, dtype=np.float32)
    args = inputs(layer, rng, 8, 20, dtype=np.float32)
    fused, ref = run(layer, *args, True), run(layer, *args, False)
    assert all(v.dtype == np.float32 for v in fused.values())
    assert_close(fused, ref, 5e-5)


@pytest.mark.parametrize("max_steps,T", [(6, 4), (6, 9), (1, 3)])   # slots of their own; shared last slot
def test_bn_population_statistics_update_as_the_reference(max_steps, T, rng, element_steps):
    results = []
    for use_kernel in (True, False):
        layer = randomize(Recurrent(BNLSTMCell(3, 4, max_steps=max_steps, momentum=0.3)), np.random.default_rng(5))
        random_population(layer.cell, np.random.default_rng(6), trained_steps=2)
        x = rng.standard_normal((5, T, 3)) if use_kernel else results[0][0]
        with fast.reference_only() if not use_kernel else contextlib.nullcontext():
            layer.forward(x)
            with no_grad():   # still training mode: the statistics are updated all the same
                layer.forward(2 * x)
        results.append((x, {k: v.copy() for k, v in layer.cell.buffers.items()}))
    (_, fused), (_, ref) = results
    assert fused["trained_steps"][0] == ref["trained_steps"][0] == max(2, min(T, max_steps))
    for key in ref:
        # float64 running statistics (means/variances of <= 8 rows, momentum updates): ~1e-15; rtol 1e-12, atol 1e-14.
        np.testing.assert_allclose(fused[key], ref[key], rtol=1e-12, atol=1e-14, err_msg=key)


def test_bn_eval_beyond_the_trained_steps_uses_the_last_slot(rng, element_steps):
    layer = make_layer("bnlstm-eval", rng)   # trained_steps = 3
    args = inputs(layer, rng, 2, 8)
    assert_close(run(layer, *args, True), run(layer, *args, False), 1e-12)
    before = {k: v.copy() for k, v in layer.cell.buffers.items()}
    layer.forward(args[0])
    for k, v in layer.cell.buffers.items():   # eval never touches the population statistics
        np.testing.assert_array_equal(v, before[k])


def test_bn_training_refuses_a_batch_of_one(rng):
    layer = make_layer("bnlstm-train", rng)
    with pytest.raises(ConfigError, match="at least 2"):
        layer.forward(rng.standard_normal((1, 3, 4)))


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_no_grad_forward_equals_forward_and_refuses_backward(name, reverse, rng, element_steps):
    layer = make_layer(name, rng, reverse=reverse)
    x, state0, _, _ = inputs(layer, rng, 3, 6)
    check_no_grad_forward(layer, x, state0)


@pytest.mark.parametrize("name", CELLS)
def test_gradcheck_through_the_kernel_with_several_blocks(name, rng, small_chunks, element_steps):
    make, mode = CELLS[name]
    layer = make_layer(name, rng, D=3, H=3)
    assert fast.kernel_for(layer.cell) is not None
    case = sequence_case("T=7, blocks of 3", layer, 4, 7, rng)
    case.kink_pattern = None if not layer.cell.nonlinear_kinks else __import__(
        "rnnlab.gradcheck.specs", fromlist=["relu_pattern"]).relu_pattern
    rows = check_case(name, case)
    bad = [r for r in rows if not r.passed]
    assert rows and not bad, bad


def test_dispatch_is_by_exact_class():
    assert fast.kernel_for(RNNCell(2, 3)) is fast.rnn
    assert fast.kernel_for(IRNNCell(2, 3)) is fast.rnn
    assert fast.kernel_for(BNLSTMCell(2, 3)) is fast.bnlstm
    assert fast.kernel_for(LNLSTMCell(2, 3)) is fast.lnlstm

    class Variant(LNLSTMCell):
        abstract = True

    class VariantRNN(RNNCell):
        abstract = True

    assert fast.kernel_for(Variant(2, 3)) is None and fast.kernel_for(VariantRNN(2, 3)) is None


def test_a_nan_input_reaches_the_outputs(rng):
    """The divergence guard looks for NaN: the compiled ReLU and tanh must not swallow it."""
    for name in ("rnn-tanh", "irnn", "lnlstm"):
        layer = make_layer(name, rng, dtype=np.float32)
        x = rng.standard_normal((2, 5, 4)).astype(np.float32)
        x[1, 2, 0] = np.nan
        (y, _), _ = layer.forward(x)
        assert np.isnan(y[1, 2:]).all() and np.isfinite(y[0]).all(), name


@pytest.mark.skipif("lengths" not in inspect.signature(Recurrent.forward).parameters,
                    reason="Recurrent.forward takes no lengths yet")
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_variable_lengths_equal_the_reference(name, reverse, rng, element_steps):
    layer = make_layer(name, rng, reverse=reverse)
    assert getattr(fast.kernel_for(layer.cell), "SUPPORTS_ACTIVE", False)
    args = inputs(layer, rng, 5, 19)
    lengths = np.array([19, 4, 11, 19, 2])
    assert_close(run(layer, *args, True, lengths=lengths), run(layer, *args, False, lengths=lengths), 1e-12)


@pytest.fixture
def two_threads():
    from rnnlab.fast import parallel

    pytest.importorskip("threadpoolctl")
    parallel.set_threads(2)
    yield
    parallel.set_threads(None)


@pytest.mark.parametrize("name", [n for n in CELLS if n != "bnlstm-train"])
def test_batch_split_equals_one_thread(name, rng, two_threads):
    """The row-independent kernels (and the BN-LSTM with fixed statistics) split over threads."""
    from rnnlab.fast import parallel

    layer = make_layer(name, rng)
    args = inputs(layer, rng, 16, 19)
    assert len(parallel.partition(16)) == 2
    split = run(layer, *args, True)
    parallel.set_threads(1)
    assert_close(split, run(layer, *args, True), 1e-12)


def test_bn_training_is_not_split_over_threads(rng, two_threads):
    """Batch statistics couple the rows: in training the BN-LSTM runs the whole batch on one thread
    (Recurrent asks the kernel's can_split), with the same result as RNNLAB_THREADS=1."""
    from rnnlab.fast import parallel

    layer = make_layer("bnlstm-train", rng)
    args = inputs(layer, rng, 16, 5)
    before = {k: v.copy() for k, v in layer.cell.buffers.items()}
    split = run(layer, *args, True)
    for k, v in before.items():
        layer.cell.buffers[k][...] = v
    parallel.set_threads(1)
    assert_close(split, run(layer, *args, True), 0.0)


@pytest.mark.parametrize("rows", [[5] * 9, [5, 5, 4, 4, 4, 3, 3, 2, 2]], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_population_update_is_the_references_arithmetic_bit_for_bit(rows, dtype, rng):
    """Given the same batch statistics, the kernel's update (several slots at once, then the
    shared last slot step by step) writes exactly what the reference's step-by-step update writes."""
    T = len(rows)
    mu, var = rng.standard_normal((T, 8)).astype(dtype), rng.uniform(0.1, 2, (T, 8)).astype(dtype)
    cells = [BNLSTMCell(3, 2, max_steps=6, momentum=0.3, dtype=dtype) for _ in range(2)]
    for cell in cells:
        random_population(cell, np.random.default_rng(0), trained_steps=2)
    fast.bnlstm.update_population(cells[0], "x", mu, var, rows)
    for t in range(T):
        cells[1]._update_population("x", t, mu[t], var[t], rows[t])
    for key in cells[1].buffers:
        np.testing.assert_array_equal(cells[0].buffers[key], cells[1].buffers[key], err_msg=key)
