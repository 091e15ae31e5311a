"""The compiled element-wise steps (rnnlab.fast.accel) must equal the NumPy steps they replace."""
from functools import partial

import numpy as np
import pytest

from rnnlab.fast import accel, gru, lstm

pytestmark = pytest.mark.skipif(not accel.available(), reason="numba is not installed: nothing compiled to test")


class _Compiled:
    """The compiled steps, looked up when a test runs (so collection needs no numba)."""

    def __getattr__(self, name):
        return getattr(accel.steps(np.float64), name)


K = _Compiled()

# float64: compiled kernels vs NumPy, the same formulas with another order of a few operations: ~1e-15,
# rtol 1e-13. float32: the compiled tanh is within 2.7e-7 (measured below), ~4 ulps, so 2e-6 leaves room
# for a few such steps; both far below any wrong equation.
TOL = {np.float64: dict(rtol=1e-13, atol=1e-14), np.float32: dict(rtol=2e-6, atol=2e-6)}


def test_float32_tanh_is_within_its_stated_error():
    rng = np.random.default_rng(0)
    tiny = 10 ** rng.uniform(-30, 0, 1_000_000) * rng.choice([-1, 1], 1_000_000)
    x = np.concatenate([np.linspace(-12, 12, 2_000_001), rng.standard_normal(1_000_000) * 3, tiny,
                        [0.0, -0.0, 7.9, 7.91, 100.0, -100.0]]).astype(np.float32)
    out = np.empty_like(x)
    K.tanh_into(x, out)
    exact = np.tanh(x.astype(np.float64))
    err = np.abs(out - exact)
    assert err.max() < 3e-7                                   # measured: 2.6e-7
    nonzero = exact != 0
    assert (err[nonzero] / np.abs(exact[nonzero])).max() < 3e-7   # relative, down to 1e-30: 2.7e-7 (~5 ulp)
    assert np.all(out[exact == 0] == 0) and out.dtype == np.float32


def test_nan_and_inf_propagate_as_in_numpy():
    """A NaN must stay NaN (the divergence guard looks for it); fast-math would hide it."""
    x = np.array([np.nan, np.inf, -np.inf], dtype=np.float32)
    out = np.empty_like(x)
    K.tanh_into(x, out)
    assert np.isnan(out[0])
    # tanh(+-inf) in float32: 1.0 exactly in NumPy, the compiled tanh is within its stated 3e-7 error.
    np.testing.assert_allclose(out[1:], [1.0, -1.0], atol=3e-7)


def _lstm_forward_inputs(rng, dtype, B=3, H=5, hw_rows=None):
    G = 4 * H
    a = (rng.standard_normal((B, G)) * 3).astype(dtype)
    hw = rng.standard_normal((hw_rows or B, G)).astype(dtype)
    bias = rng.standard_normal(G).astype(dtype)
    c_prev = rng.standard_normal((B, H)).astype(dtype)
    return a, hw, bias, lstm.preact_scale(H, dtype), lstm.preact_shift(H, dtype), c_prev


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hw_rows", [None, 1], ids=["hw-per-row", "hw-broadcast"])
def test_lstm_forward_step(dtype, hw_rows, rng):
    a, hw, bias, scale, shift, c_prev = _lstm_forward_inputs(rng, dtype, hw_rows=hw_rows)
    B, H = c_prev.shape
    outs = []
    for compiled in (True, False):
        a_k, c, tc, h = a.copy(), np.empty_like(c_prev), np.empty_like(c_prev), np.empty_like(c_prev)
        if compiled:
            K.lstm_forward(a_k, hw, bias, scale, shift, c_prev, c, tc, h)
        else:
            lstm.forward_step(a_k, hw, bias, scale, shift, c_prev, c, tc, h, np.empty_like(c))
        outs.append((a_k, c, tc, h))
    for u, v in zip(*outs):
        # see TOL.
        np.testing.assert_allclose(u, v, **TOL[dtype])
        assert u.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_forward_step_updates_the_state_in_place(dtype, rng):
    """Generation passes c as both c_prev and c, and writes h over the state it read."""
    a, hw, bias, scale, shift, c_prev = _lstm_forward_inputs(rng, dtype)
    expect_c, expect_tc, expect_h = np.empty_like(c_prev), np.empty_like(c_prev), np.empty_like(c_prev)
    K.lstm_forward(a.copy(), hw, bias, scale, shift, c_prev, expect_c, expect_tc, expect_h)
    c = c_prev.copy()
    K.lstm_forward(a.copy(), hw, bias, scale, shift, c, c, np.empty_like(c), c_prev)
    np.testing.assert_array_equal(c, expect_c)
    np.testing.assert_array_equal(c_prev, expect_h)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_dy", [True, False])
def test_lstm_backward_step(dtype, with_dy, rng):
    B, H = 3, 5
    act = rng.uniform(-1, 1, (B, 4 * H)).astype(dtype)
    c_prev, tc, dh, dy, dc = (rng.standard_normal((B, H)).astype(dtype) for _ in range(5))
    tc = np.tanh(tc)
    masks = dict(M=np.repeat(np.array([1, 1, 0, 1], dtype=dtype), H), K=np.repeat(np.array([0, 0, 1, 0], dtype=dtype), H))
    numpy_step = partial(lstm.backward_step, deriv=np.empty_like(act), tmp=np.empty_like(dh), **masks)
    outs = []
    for step in (K.lstm_backward, numpy_step):   # the same arguments for both twins
        da, dc_k = np.empty_like(act), dc.copy()
        step(act, c_prev, tc, dh.copy(), dy, with_dy, dc_k, da)
        outs.append((da, dc_k))
    for u, v in zip(*outs):
        # see TOL.
        np.testing.assert_allclose(u, v, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gru_forward_step(dtype, rng):
    B, H = 3, 5
    xw = (rng.standard_normal((B, 3 * H)) * 2).astype(dtype)
    hw, b_hn = rng.standard_normal((B, 3 * H)).astype(dtype), rng.standard_normal(H).astype(dtype)
    bias = rng.standard_normal(3 * H).astype(dtype)
    h_prev = rng.standard_normal((B, H)).astype(dtype)
    outs = []
    for compiled in (True, False):
        xw_k, hw_k, hn, h = xw.copy(), hw.copy(), np.empty_like(h_prev), np.empty_like(h_prev)
        (K.gru_forward if compiled else gru.forward_step)(xw_k, hw_k, bias, b_hn, h_prev, hn, h)
        outs.append((xw_k, hn, h))
    for u, v in zip(*outs):
        # see TOL.
        np.testing.assert_allclose(u, v, **TOL[dtype])
    h = h_prev.copy()   # in place, as generation steps it
    K.gru_forward(xw.copy(), hw.copy(), bias, b_hn, h, np.empty_like(h), h)
    np.testing.assert_array_equal(h, outs[0][2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_dy", [True, False])
def test_gru_backward_step(dtype, with_dy, rng):
    B, H = 3, 5
    gates = rng.uniform(0, 1, (B, 3 * H)).astype(dtype)     # [r, z, n]
    gates[:, 2 * H:] = np.tanh(gates[:, 2 * H:] * 3 - 1)
    hn, h_prev, dh, dy = (rng.standard_normal((B, H)).astype(dtype) for _ in range(4))
    numpy_step = partial(gru.backward_step, deriv=np.empty((B, 2 * H), dtype), dn=np.empty_like(dh))
    outs = []
    for step in (K.gru_backward, numpy_step):   # the same arguments for both twins
        dx, dhw, direct = np.empty((B, 3 * H), dtype), np.empty((B, 3 * H), dtype), np.empty_like(dh)
        step(gates, hn, h_prev, dh.copy(), dy, with_dy, dx, dhw, direct)
        outs.append((dx, dhw, direct))
    for u, v in zip(*outs):
        # see TOL.
        np.testing.assert_allclose(u, v, **TOL[dtype])


def test_switch_and_dtypes():
    assert accel.steps(np.float32) is not None and accel.steps(np.float64) is not None
    assert accel.steps(np.float16) is None   # anything else runs the NumPy steps
    accel.set_enabled(False)
    try:
        assert not accel.enabled() and accel.steps(np.float32) is None
    finally:
        accel.set_enabled(True)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_nan_input_reaches_the_outputs_of_a_float32_layer(cell, rng):
    """The divergence guard finds NaN in the states; the compiled steps must not swallow it."""
    from rnnlab.cells import make_cell
    from rnnlab.layers import Recurrent

    layer = Recurrent(make_cell(cell, 4, 8, seed=np.random.default_rng(0), dtype=np.float32))
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    x[1, 2, 0] = np.nan
    (y, _), _ = layer.forward(x)
    assert np.isnan(y[1, 2:]).all() and np.isfinite(y[0]).all() and np.isfinite(y[1, :2]).all()


def test_rnnlab_accel_0_switches_the_compiled_steps_off():
    import os
    import subprocess
    import sys

    code = "from rnnlab.fast import accel; print(accel.enabled(), accel.steps('float32') is None); print(accel.describe())"
    env = dict(os.environ, RNNLAB_ACCEL="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "False True" and "RNNLAB_ACCEL=0" in out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,weight_decay", [("Adam", 0.0), ("Adam", 0.1), ("AdamW", 0.01)])
def test_adam_update_equals_numpy(dtype, kind, weight_decay):
    """The one-pass compiled update against the optimizer's NumPy update, over 20 steps."""
    from rnnlab import optim

    runs = []
    for compiled in (True, False):
        accel.set_enabled(compiled)
        try:
            rng = np.random.default_rng(0)
            p = rng.standard_normal((50, 30)).astype(dtype)
            g = np.zeros_like(p)
            opt = getattr(optim, kind)([("w", p, g)], lr=1e-2, weight_decay=weight_decay)
            assert (opt._compiled(p, g) is not None) == compiled
            for _ in range(20):
                g[:] = rng.standard_normal(p.shape)
                opt.step()
        finally:
            accel.set_enabled(True)
        runs.append((p, opt.state["m"]["w"], opt.state["v"]["w"]))
    for u, v in zip(*runs):
        # optimiser states after 20 steps, compiled vs NumPy: float64 ~1e-15 per step (rtol 1e-13); float32
        # ~6e-8 per step, a few ulps over 20 steps (rtol 2e-6); atol 1e-7 for the second moments near 0.
        np.testing.assert_allclose(u, v, rtol=1e-13 if dtype == np.float64 else 2e-6, atol=1e-7)


def test_amsgrad_keeps_the_numpy_update():
    from rnnlab.optim import Adam

    p = np.zeros(3, np.float32)
    assert Adam([("w", p, np.zeros_like(p))], amsgrad=True)._compiled(p, np.zeros_like(p)) is None
