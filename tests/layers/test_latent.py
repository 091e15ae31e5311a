"""GaussianLatent, RepeatVector and GaussianNLL against torch autograd of the same equations (float64)."""
import math

import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.layers import GaussianLatent, GaussianNLL, RepeatVector, gaussian_nll

torch = pytest.importorskip("torch")
# float64 on both sides (rnnlab and torch): the same formulas in another order, so rounding only (~1e-15 on
# values of O(1)); absolute, because some compared terms (KL, gradients) are near 0
TOL = 1e-10


def _t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("B,D,Z", [(5, 4, 3), (1, 1, 1)])
def test_gaussian_latent_matches_torch(B, D, Z):
    rng = np.random.default_rng(0)
    layer = gradcheck.randomize(GaussianLatent(D, Z, seed=3), rng, scale=0.9)
    h, eps = rng.standard_normal((B, D)), rng.standard_normal((B, Z))
    dz, dkl = rng.standard_normal((B, Z)), 0.7
    (z, kl), cache = layer.forward(h, eps)
    layer.zero_grad()
    dh = layer.backward((dz, dkl), cache)

    th, tW, tb = _t(h), _t(layer.params["W"]), _t(layer.params["b"])
    a = th @ tW + tb
    mu, lv = a[:, :Z], a[:, Z:]
    tz = mu + torch.exp(lv / 2) * torch.tensor(eps)
    tkl = -0.5 * torch.sum(1 + lv - mu ** 2 - torch.exp(lv)) / B
    (torch.sum(tz * torch.tensor(dz)) + dkl * tkl).backward()
    # float64 reparameterised sample mu + exp(logvar/2) * eps: a few ulps; atol TOL (see TOL).
    np.testing.assert_allclose(z, tz.detach().numpy(), rtol=0, atol=TOL)
    # float64 KL, a sum of a few terms: rounding ~1e-15; abs TOL (1e-10), see TOL.
    assert kl == pytest.approx(float(tkl.detach()), abs=TOL)
    # float64 gradients: see TOL (1e-10 absolute for values of size O(1)).
    np.testing.assert_allclose(dh, th.grad.numpy(), rtol=0, atol=TOL)
    # float64 gradients: see TOL.
    np.testing.assert_allclose(layer.grads["W"], tW.grad.numpy(), rtol=0, atol=TOL)
    # float64 gradients: see TOL.
    np.testing.assert_allclose(layer.grads["b"], tb.grad.numpy(), rtol=0, atol=TOL)


def test_gaussian_latent_draws_from_its_own_generator_and_kl_is_zero_at_the_prior():
    layer = GaussianLatent(3, 2, seed=1, dtype=np.float64)
    layer.params["W"][...] = 0.0
    (z1, kl), _ = layer.forward(np.ones((4, 3)))
    (z2, _), _ = layer.forward(np.ones((4, 3)))
    assert kl == 0.0 and not np.array_equal(z1, z2)  # mu = 0, logvar = 0: q is the prior
    again = GaussianLatent(3, 2, seed=1, dtype=np.float64)
    again.params["W"][...] = 0.0
    np.testing.assert_array_equal(again.forward(np.ones((4, 3)))[0][0], z1)


def test_repeat_vector_matches_torch():
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((3, 4)), rng.standard_normal((3, 5, 4))
    layer = RepeatVector(5)
    y, cache = layer.forward(x)
    dx = layer.backward(dy, cache)
    tx = _t(x)
    ty = tx[:, None, :].expand(3, 5, 4)
    torch.sum(ty * torch.tensor(dy)).backward()
    np.testing.assert_array_equal(y, ty.detach().numpy())
    # float64 gradient: see TOL.
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("masked", [False, True])
def test_gaussian_nll_matches_torch(masked):
    rng = np.random.default_rng(2)
    shape = (4, 6)
    m, v, x = rng.standard_normal(shape), rng.uniform(-2, 2, shape), rng.standard_normal(shape)
    mask = (rng.random(shape) < 0.6).astype(np.float64) if masked else None
    loss, cache = GaussianNLL().forward(m, v, x, mask)
    dm, dv = GaussianNLL().backward(1.3, cache)
    tm, tv = _t(m), _t(v)
    per = 0.5 * (math.log(2 * math.pi) + tv + (torch.tensor(x) - tm) ** 2 * torch.exp(-tv))
    if masked:
        tloss = torch.sum(per * torch.tensor(mask)) / mask.sum()
    else:  # torch's own GaussianNLLLoss (full=True) takes the variance: the same equation
        tloss = torch.nn.functional.gaussian_nll_loss(tm, torch.tensor(x), torch.exp(tv), full=True, eps=0.0)
    (1.3 * tloss).backward()
    # float64 Gaussian NLL, a mean of a few log/square terms: ~1e-15; abs TOL (1e-10).
    assert loss == pytest.approx(float(tloss.detach()), abs=TOL)
    # float64 gradients: see TOL.
    np.testing.assert_allclose(dm, tm.grad.numpy(), rtol=0, atol=TOL)
    # float64 gradients: see TOL.
    np.testing.assert_allclose(dv, tv.grad.numpy(), rtol=0, atol=TOL)
    # float64 per-element NLL, same formula: see TOL.
    np.testing.assert_allclose(gaussian_nll(m, v, x), per.detach().numpy(), rtol=0, atol=TOL)


def test_shapes_are_checked():
    with pytest.raises(ValueError):
        GaussianNLL().forward(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        GaussianLatent(2, 2).forward(np.zeros((3, 2), np.float32), np.zeros((3, 1)))
    with pytest.raises(ValueError):
        RepeatVector(0)
