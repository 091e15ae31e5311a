"""The compiled steps of the RNN, LN-LSTM and BN-LSTM kernels must equal their NumPy twins."""
import numpy as np
import pytest

from rnnlab.fast import accel, bnlstm, lnlstm, lstm, rnn

pytestmark = pytest.mark.skipif(not accel.available(), reason="numba is not installed: nothing compiled to test")

# float64 compiled vs NumPy: a few operations reordered, ~1e-15 (rtol 1e-12). float32: the compiled
# tanh/sigmoid are within ~3e-7 and a normalised cell chains a few of them: 2e-5 leaves ~10x.
TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-5)}
B, H = 4, 6
G = 4 * H


def K():
    return accel.steps(np.float64)


def both(compiled_fn, numpy_fn, make_args, dtype, scratch=()):
    """Run both twins on copies of the same arguments and compare every array argument after
    the runs except those at the positions ``scratch``; return the arguments after each run."""
    outs = []
    for fn in (compiled_fn, numpy_fn):
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in make_args()]
        fn(*args)
        outs.append(args)
    for k, (u, v) in enumerate(zip(*outs)):
        if isinstance(u, np.ndarray) and k not in scratch:
            assert u.dtype == v.dtype == dtype
            # see TOL.
            np.testing.assert_allclose(u, v, **TOL[dtype], err_msg=f"argument {k}")
    return outs


def arrays(rng, dtype, *shapes, scale=1.0):
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("relu", [False, True])
def test_rnn_steps(dtype, relu, rng):
    h, xw, bias = arrays(rng, dtype, (B, H), (B, H), (H,), scale=2.0)
    both(K().rnn_forward, rnn.forward_step, lambda: (h, xw, bias, relu), dtype)
    out = np.maximum(h, 0) if relu else np.tanh(h)
    dh, dy = arrays(rng, dtype, (B, H), (B, H))
    for has_dy in (True, False):
        mask = np.empty((B, H), bool)
        both(K().rnn_backward, lambda *a: rnn.backward_step(*a, mask=mask),
             lambda: (out, dh, dy, has_dy, relu, np.empty((B, H), dtype)), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("groups", [4, 1])
def test_layer_norm_rows(dtype, groups, rng):
    (x,) = arrays(rng, dtype, (3, B, G), scale=3.0)
    x[0, 0] += 10.0   # a large mean
    tmp = np.empty((B, G), dtype)
    _, (xn, _, _, s) = both(K().ln_rows, lambda *a: lnlstm.ln_rows(*a, tmp=tmp),
                      lambda: (x, groups, 1e-5, np.empty((3, B, groups), dtype)), dtype)
    dy, gamma = arrays(rng, dtype, (3, B, G), (G,))
    m, col = np.empty((B, groups, 2), dtype), np.empty(G, dtype)
    both(K().ln_backward, lambda *a: lnlstm.ln_backward(*a, tmp=tmp, m=m, col=col),
         lambda: (dy, xn, s, gamma, groups, np.empty_like(dy), np.zeros(G, dtype), np.zeros(G, dtype)), dtype)


def _gates(rng, dtype):
    scale, shift = lstm.preact_scale(H, dtype), lstm.preact_shift(H, dtype)
    act = np.tanh(rng.standard_normal((B, G))).astype(dtype) * scale + shift
    return act


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("groups", [4, 1])
def test_lnlstm_steps(dtype, groups, rng):
    xhat_x, xh, c_prev = arrays(rng, dtype, (B, G), (B, G), (B, H), scale=2.0)
    gx, gh, bias, gamma_c, beta_c = arrays(rng, dtype, (G,), (G,), (G,), (H,), (H,))
    scale, shift = lstm.preact_scale(H, dtype), lstm.preact_shift(H, dtype)
    tmp, tmp_h = np.empty((B, G), dtype), np.empty((B, H), dtype)

    def args():
        return (xhat_x, xh, groups, 1e-5, gx, gh, bias, scale, shift, c_prev, gamma_c, beta_c,
                np.empty((B, G), dtype), np.empty((B, groups), dtype), np.empty((B, H), dtype),
                np.empty((B, H), dtype), np.empty((B, 1), dtype), np.empty((B, H), dtype), np.empty((B, H), dtype))
    _, out = both(K().lnlstm_forward, lambda *a: lnlstm.forward_step(*a, tmp=tmp, tmp_h=tmp_h), args, dtype)
    xh_n, act, s_h, xc, s_c, tu = out[1], out[12], out[13], out[15], out[16], out[17]
    dh, dy, dc = arrays(rng, dtype, (B, H), (B, H), (B, H))
    scratch = dict(tmp=tmp, tmp_h=tmp_h, dtu=np.empty((B, H), dtype), m=np.empty((B, 4, 2), dtype),
                   col=np.empty(G, dtype))
    for has_dy in (True, False):
        both(K().lnlstm_backward, lambda *a: lnlstm.backward_step(*a, **scratch),
             lambda: (act, c_prev, tu, xc, s_c, gamma_c, xh_n, s_h, gh, groups, dh, dy, has_dy, dc,
                      np.empty((B, G), dtype), np.empty((B, G), dtype), np.zeros(H, dtype), np.zeros(H, dtype),
                      np.zeros(G, dtype)), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("coupled", [True, False])
def test_batch_norm_steps(dtype, coupled, rng):
    (x,) = arrays(rng, dtype, (3, B, G), scale=3.0)
    mu, var = arrays(rng, dtype, (3, G), (3, G))
    var = np.abs(var) + 0.5
    s = (1.0 / np.sqrt(var + 1e-5)).astype(dtype)
    tmp = np.empty((B, G), dtype)
    _, (xn, _, _, _, _, s_n) = both(K().bn_normalize, lambda *a: bnlstm.bn_normalize(*a, tmp=tmp),
                                     lambda: (x, coupled, 1e-5, mu, var, s), dtype)
    dy, gamma = arrays(rng, dtype, (3, B, G), (G,))
    both(K().bn_backward, lambda *a: bnlstm.bn_backward(*a, tmp=tmp),
         lambda: (dy, xn, s_n, gamma, coupled, np.empty_like(dy), np.empty(G, dtype), np.empty(G, dtype),
                  np.zeros(G, dtype), np.zeros(G, dtype)), dtype, scratch=(6, 7))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("coupled", [True, False])
def test_bnlstm_steps(dtype, coupled, rng):
    xhat_x, xh, c_prev = arrays(rng, dtype, (B, G), (B, G), (B, H), scale=2.0)
    gx, gh, bias, gamma_c, beta_c = arrays(rng, dtype, (G,), (G,), (G,), (H,), (H,))
    mu_h, var_h, mu_c, var_c = arrays(rng, dtype, (G,), (G,), (H,), (H,))
    var_h, var_c = np.abs(var_h) + 0.5, np.abs(var_c) + 0.5
    s_h, s_c = (1 / np.sqrt(var_h + 1e-5)).astype(dtype), (1 / np.sqrt(var_c + 1e-5)).astype(dtype)
    scale, shift = lstm.preact_scale(H, dtype), lstm.preact_shift(H, dtype)
    tmp, tmp_h = np.empty((B, G), dtype), np.empty((B, H), dtype)

    def args():
        return (xhat_x, xh, coupled, 1e-5, mu_h, var_h, s_h, gx, gh, bias, scale, shift, c_prev,
                np.empty((B, G), dtype), np.empty((B, H), dtype), mu_c, var_c, s_c, gamma_c, beta_c,
                np.empty((B, H), dtype), np.empty((B, H), dtype), np.empty((B, H), dtype))
    _, out = both(K().bnlstm_forward, lambda *a: bnlstm.forward_step(*a, tmp=tmp, tmp_h=tmp_h), args, dtype)
    xh_n, s_hn, act, s_cn, xc, tu = out[1], out[6], out[13], out[17], out[20], out[21]
    dh, dy, dc = arrays(rng, dtype, (B, H), (B, H), (B, H))
    for has_dy in (True, False):
        both(K().bnlstm_backward, lambda *a: bnlstm.backward_step(*a, tmp=tmp, tmp_h=tmp_h),
             lambda: (act, c_prev, tu, xc, s_cn, gamma_c, xh_n, s_hn, gh, coupled, dh, dy, has_dy, dc,
                      np.empty((B, G), dtype), np.empty((B, G), dtype), np.empty((B, H), dtype),
                      np.empty(G, dtype), np.empty(G, dtype), np.zeros(H, dtype), np.zeros(H, dtype),
                      np.zeros(G, dtype), np.zeros(G, dtype)), dtype, scratch=(16, 17, 18, 22))


@pytest.mark.parametrize("value, compiled", [("1", False), ("0", True), ("", True), ("yes", True)])
def test_numba_disable_jit_means_the_numpy_steps(monkeypatch, value, compiled):
    """NUMBA_DISABLE_JIT=1 makes numba run the steps as interpreted Python (a 20-step char-LM run took
    8.9 s against 1.7 s with the NumPy steps, Zen 3, load 5.7): then they count as absent. numba
    reads the variable as an integer; anything else it ignores, and so do we."""
    from rnnlab.fast import accel

    monkeypatch.setenv("NUMBA_DISABLE_JIT", value)
    assert accel._jit_disabled() is not compiled
