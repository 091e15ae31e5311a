"""Embedding, Linear and SoftmaxCrossEntropy vs their torch counterparts (float64 unless stated)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from rnnlab.gradcheck import randomize  # noqa: E402
from rnnlab.layers import Embedding, Linear, SoftmaxCrossEntropy  # noqa: E402
from rnnlab.torch_bridge import (  # noqa: E402
    embedding_from_torch, embedding_grads_to_torch, embedding_to_torch, linear_from_torch,
    linear_grads_to_torch, linear_to_torch, to_torch_tensors,
)


# Tolerance (float64 on both sides): eps = 2.2e-16, and these problems are tiny (T <= 6 steps, widths
# <= 8), so each output is a few hundred rounded operations: about 1e-13 relative whichever order the
# BLAS kernel sums in (OPENBLAS_CORETYPE changes it). rtol 1e-10 leaves 1000x to spare and still fails
# any wrong equation (its error is O(1)); atol 1e-13 covers entries that are 0 up to rounding.
def assert_close(actual, expected, name, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{name}: not finite"
    rel = np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-300)
    assert rel <= rtol, f"{name}: relative error {rel:.3e}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-13, err_msg=name)


def randomize_torch(module, rng):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, size=tuple(p.shape))))
    return module


def torch_grads(module, prefix=""):
    return {prefix + k: v.grad.numpy() for k, v in module.named_parameters()}


# -- Embedding ----------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["import", "export"])
def test_embedding_matches_torch_with_repeated_ids(direction):
    rng = np.random.default_rng(0)
    V, E = 6, 4
    ids = np.array([[0, 5, 5, 1, 5], [2, 0, 3, 5, 0]])  # 5 and 0 repeat: gradients must accumulate
    theirs = torch.nn.Embedding(V, E, dtype=torch.float64)
    ours = randomize(Embedding(V, E), rng)
    if direction == "import":
        embedding_from_torch(ours, randomize_torch(theirs, rng).state_dict())
    else:
        theirs.load_state_dict(to_torch_tensors(embedding_to_torch(ours)))
    gy = rng.standard_normal(ids.shape + (E,))

    yt = theirs(torch.from_numpy(ids))
    (yt * torch.from_numpy(gy)).sum().backward()
    y, cache = ours.forward(ids)
    assert ours.backward(gy, cache) is None
    assert_close(y, yt.detach().numpy(), "y")
    assert_close(embedding_grads_to_torch(ours)["weight"], torch_grads(theirs)["weight"], "dW")
    assert not ours.grads["W"][4].any()  # an unused id gets no gradient


def test_embedding_gradient_accumulates_across_backward_calls():
    rng = np.random.default_rng(1)
    ours = randomize(Embedding(3, 2), rng)
    theirs = torch.nn.Embedding(3, 2, dtype=torch.float64)
    theirs.load_state_dict(to_torch_tensors(embedding_to_torch(ours)))
    for ids in (np.array([[1, 1]]), np.array([[1, 2]])):  # torch also sums .grad over calls
        gy = rng.standard_normal((1, 2, 2))
        (theirs(torch.from_numpy(ids)) * torch.from_numpy(gy)).sum().backward()
        ours.backward(gy, ours.forward(ids)[1])
    assert_close(ours.grads["W"], theirs.weight.grad.numpy(), "dW")


# -- Linear --------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("direction", ["import", "export"])
@pytest.mark.parametrize("shape", [(3, 5, 4), (6, 4), (1, 1, 4)], ids=["BTD", "BD", "B1T1"])
def test_linear_matches_torch(shape, direction, bias):
    rng = np.random.default_rng(len(shape) + 10 * bias)
    D, K = 4, 3
    theirs = torch.nn.Linear(D, K, bias=bias, dtype=torch.float64)
    ours = randomize(Linear(D, K, bias=bias), rng)
    if direction == "import":
        linear_from_torch(ours, randomize_torch(theirs, rng).state_dict())
    else:
        theirs.load_state_dict(to_torch_tensors(linear_to_torch(ours)))
    x = rng.standard_normal(shape)
    gy = rng.standard_normal(shape[:-1] + (K,))

    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    (yt * torch.from_numpy(gy)).sum().backward()
    y, cache = ours.forward(x)
    dx = ours.backward(gy, cache)
    assert_close(y, yt.detach().numpy(), "y")
    assert_close(dx, xt.grad.numpy(), "dx")
    ours_g, theirs_g = linear_grads_to_torch(ours), torch_grads(theirs)
    assert set(ours_g) == set(theirs_g)
    for name in theirs_g:
        assert_close(ours_g[name], theirs_g[name], f"d{name}")


# -- SoftmaxCrossEntropy -------------------------------------------------------------------
def ce_pair(logits, targets, mask=None, dloss=1.0):
    """(loss, dlogits) from rnnlab and from torch, for the same inputs."""
    ce = SoftmaxCrossEntropy()
    loss, cache = ce.forward(logits, targets, mask)
    dz = ce.backward(dloss, cache)

    V = logits.shape[-1]
    zt = torch.tensor(logits, requires_grad=True)
    flat_z, flat_t = zt.reshape(-1, V), torch.from_numpy(targets.reshape(-1))
    if mask is None:
        lt = F.cross_entropy(flat_z, flat_t)
    else:
        m = torch.from_numpy(mask.reshape(-1).astype(logits.dtype))
        lt = (F.cross_entropy(flat_z, flat_t, reduction="none") * m).sum() / m.sum()
    (lt * dloss).backward()
    return (loss, dz), (lt.item(), zt.grad.numpy())


@pytest.mark.parametrize("shape", [(2, 3, 5), (7, 4), (1, 1, 3)], ids=["BTV", "NV", "B1T1"])
@pytest.mark.parametrize("masked", [False, True], ids=["mean", "masked"])
def test_cross_entropy_matches_torch(shape, masked):
    rng = np.random.default_rng(len(shape) + 3 * masked)
    logits = 3.0 * rng.standard_normal(shape)
    targets = rng.integers(0, shape[-1], size=shape[:-1])
    mask = None
    if masked:
        mask = (rng.random(shape[:-1]) > 0.4).astype(np.float64)
        mask.flat[0] = 1.0
        if mask.size > 1:
            mask.flat[-1] = 0.0  # at least one padded position, so the mask matters
    dloss = rng.uniform(0.5, 2.0)
    (loss, dz), (loss_t, dz_t) = ce_pair(logits, targets, mask, dloss)
    assert_close(loss, loss_t, "loss")
    assert_close(dz, dz_t, "dlogits")
    if masked:
        assert not dz.reshape(-1, shape[-1])[mask.reshape(-1) == 0].any()


# float32: eps 1.2e-7; the log-sum-exp over 4 logits of size 1e4 loses a few ulps of the 2e4 loss and of
# the probabilities in dlogits, so 1e-5 relative is ~100 ulps: machine-independent, far below an error.
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("masked", [False, True], ids=["mean", "masked"])
def test_cross_entropy_extreme_logits_finite_and_match_torch(dtype, rtol, masked):
    logits = np.array([[[1e4, -1e4, 0.0, 1e4],     # tie at +1e4: probabilities 1/2, 1/2
                        [-1e4, -1e4, -1e4, -1e4],  # all equal and very negative: uniform
                        [1e4, -1e4, -1e4, 3.0]],   # target at -1e4: loss 2e4, no overflow
                       [[-1e4, 1e4, 2.0, -3.0],
                        [0.5, -1e4, 1e4, 1e4],
                        [1e4, 1e4, 1e4, -1e4]]], dtype=dtype)
    targets = np.array([[0, 2, 1], [1, 3, 0]])
    mask = np.array([[1, 1, 1], [0, 1, 1]], dtype=dtype) if masked else None
    (loss, dz), (loss_t, dz_t) = ce_pair(logits, targets, mask, 1.0)
    assert np.isfinite(loss) and np.all(np.isfinite(dz)) and dz.dtype == dtype
    assert loss > 1e3  # the -1e4 target really costs ~2e4 nats
    assert_close(loss, loss_t, "loss", rtol)
    assert_close(dz, dz_t, "dlogits", rtol)
