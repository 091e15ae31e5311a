"""BN-LSTM and LN-LSTM vs the same equations written in torch operations, in float64.

torch has no such cells, so the test writes them out (Cooijmans et al. 2016,
Ba et al. 2016; gate order i, f, g, o) with torch.nn.functional.batch_norm /
explicit layer-norm arithmetic, lets autograd differentiate them, and
compares outputs, final states, every gradient and (BN, training) the
updated population statistics with rnnlab's hand-written backward.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from rnnlab.cells import BNLSTMCell, LNLSTMCell  # noqa: E402
from rnnlab.gradcheck import randomize  # noqa: E402
from rnnlab.gradcheck.specs import random_population  # noqa: E402
from rnnlab.layers import Recurrent  # noqa: E402

D, H = 3, 4
EPS = 1e-5
PARAMS = ("W_x", "W_h", "b", "gamma_x", "gamma_h", "gamma_c", "beta_c")


# Tolerance (float64 on both sides): eps = 2.2e-16, and these problems are tiny (T <= 6 steps, widths
# <= 8), so each output is a few hundred rounded operations: about 1e-13 relative whichever order the
# BLAS kernel sums in (OPENBLAS_CORETYPE changes it). rtol 1e-10 leaves 1000x to spare and still fails
# any wrong equation (its error is O(1)); the batch/layer statistics (a mean and a variance over <= 4 rows or
# units, eps 1e-5) add a few operations, not orders of magnitude.
def assert_close(actual, expected, name, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    scale = max(np.abs(expected).max(), 1e-300)
    rel = np.abs(actual - expected).max() / scale
    assert rel <= rtol, f"{name}: relative error {rel:.3e}"


# -- the equations in torch ------------------------------------------------------------
def bn(x, gamma, beta, mean, var, training, momentum):
    # F.batch_norm updates mean/var (views of the per-step buffers) in place when training
    return F.batch_norm(x, mean, var, weight=gamma, bias=beta, training=training, momentum=momentum, eps=EPS)


def ln(x, gamma, beta, groups):
    B = x.shape[0]
    xg = x.reshape(B, groups, -1)
    mu = xg.mean(dim=-1, keepdim=True)
    var = ((xg - mu) ** 2).mean(dim=-1, keepdim=True)
    y = ((xg - mu) / torch.sqrt(var + EPS)).reshape(B, -1) * gamma
    return y if beta is None else y + beta


def torch_forward(p, x, h, c, norm):
    """norm(key, t, z, gamma, beta) -> normalised z; returns y (B, T, H), h_T, c_T."""
    ys = []
    for t in range(x.shape[1]):
        a = norm("x", t, x[:, t] @ p["W_x"], p["gamma_x"], None) + norm("h", t, h @ p["W_h"], p["gamma_h"], None)
        a = a + p["b"]
        i, f, g, o = a.split(H, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(norm("c", t, c, p["gamma_c"], p["beta_c"]))
        ys.append(h)
    return torch.stack(ys, dim=1), h, c


def bn_norm(buffers, training, momentum, max_steps, trained_steps):
    def norm(key, t, z, gamma, beta):
        k = min(t, max_steps - 1) if training else min(t, max(trained_steps, 1) - 1)
        return bn(z, gamma, beta, buffers[f"mean_{key}"][k], buffers[f"var_{key}"][k], training, momentum)
    return norm


def ln_norm(per_gate):
    return lambda key, t, z, gamma, beta: ln(z, gamma, beta, 4 if per_gate and key != "c" else 1)


# -- running both ---------------------------------------------------------------------------
def compare(lay, norm_for, problem, buffers=None):
    x, h0, c0, gy, gh, gc = problem
    cell = lay.cell
    tb = {k: torch.tensor(v) for k, v in (buffers or {}).items()}
    tp = {k: torch.tensor(cell.params[k], requires_grad=True) for k in PARAMS}
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True) if h0 is not None else torch.zeros(x.shape[0], H, dtype=torch.float64)
    tc0 = torch.tensor(c0, requires_grad=True) if c0 is not None else torch.zeros(x.shape[0], H, dtype=torch.float64)
    y, hT, cT = torch_forward(tp, tx, th0, tc0, norm_for(tb))
    ((y * torch.tensor(gy)).sum() + (hT * torch.tensor(gh)).sum() + (cT * torch.tensor(gc)).sum()).backward()

    state0 = (h0, c0) if h0 is not None else None
    (ry, (rh, rc)), cache = lay.forward(x, state0)
    lay.zero_grad()
    dx, (dh0, dc0) = lay.backward((gy, (gh, gc)), cache)

    for name, ours, theirs in (("y", ry, y), ("h_T", rh, hT), ("c_T", rc, cT), ("dx", dx, tx.grad)):
        assert_close(ours, theirs.detach().numpy(), name)
    if h0 is not None:
        assert_close(dh0, th0.grad.numpy(), "dh0")
        assert_close(dc0, tc0.grad.numpy(), "dc0")
    for k in PARAMS:
        assert_close(cell.grads[k], tp[k].grad.numpy(), f"grad {k}")
    for k, v in tb.items():
        assert_close(cell.buffers[k], v.numpy(), f"buffer {k}")


def problem(rng, B, T, zero_state=False):
    x = rng.standard_normal((B, T, D))
    h0 = None if zero_state else rng.standard_normal((B, H))
    c0 = None if zero_state else rng.standard_normal((B, H))
    return x, h0, c0, rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))


# -- BN-LSTM ----------------------------------------------------------------------------------
@pytest.mark.parametrize("B,T,max_steps,zero_state", [(4, 5, 8, False), (3, 6, 3, False), (5, 3, 8, True)],
                         ids=["B=4,T=5", "past max_steps", "zero initial state"])
def test_bnlstm_training_matches_torch(B, T, max_steps, zero_state):
    rng = np.random.default_rng(B * 100 + T)
    lay = randomize(Recurrent(BNLSTMCell(D, H, max_steps=max_steps, momentum=0.2)), rng)
    random_population(lay.cell, rng, trained_steps=0)  # torch must update from the same starting point
    before = {k: v.copy() for k, v in lay.cell.buffers.items() if k != "trained_steps"}
    compare(lay, lambda tb: bn_norm(tb, True, 0.2, max_steps, 0), problem(rng, B, T, zero_state), before)
    assert lay.cell.buffers["trained_steps"][0] == min(T, max_steps)


@pytest.mark.parametrize("B,T", [(3, 5), (1, 1), (1, 4)])
def test_bnlstm_eval_matches_torch(B, T):
    rng = np.random.default_rng(B * 10 + T)
    lay = randomize(Recurrent(BNLSTMCell(D, H, max_steps=6)), rng)
    random_population(lay.cell, rng, trained_steps=2)  # steps 2.. reuse slot 1
    lay.eval()
    buffers = {k: v.copy() for k, v in lay.cell.buffers.items() if k != "trained_steps"}
    compare(lay, lambda tb: bn_norm(tb, False, 0.1, 6, 2), problem(rng, B, T), buffers)


# -- LN-LSTM ----------------------------------------------------------------------------------
@pytest.mark.parametrize("per_gate", [True, False], ids=["per-gate", "joint-4H"])
@pytest.mark.parametrize("B,T", [(3, 5), (1, 1)])
def test_lnlstm_matches_torch(B, T, per_gate):
    rng = np.random.default_rng(B * 10 + T + per_gate)
    lay = randomize(Recurrent(LNLSTMCell(D, H, per_gate=per_gate)), rng)
    compare(lay, lambda tb: ln_norm(per_gate), problem(rng, B, T))


def test_lnlstm_joint_normalisation_is_torch_layer_norm():
    """Cross-check the explicit ln() above against torch's own layer_norm (joint over 4H)."""
    rng = np.random.default_rng(0)
    z, gamma, beta = (torch.tensor(rng.standard_normal(s)) for s in ((3, 4 * H), 4 * H, 4 * H))
    assert_close(ln(z, gamma, beta, 1).numpy(), F.layer_norm(z, (4 * H,), gamma, beta, eps=EPS).numpy(), "ln")
