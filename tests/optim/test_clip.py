"""Gradient clipping: global norm, element-wise value, non-finite gradients."""
import warnings

import numpy as np
import pytest

from rnnlab.module import Module
from rnnlab.optim import SGD, clip_grad_norm, clip_grad_value, global_grad_norm


def _grads(seed=0, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=s) * scale).astype(dtype) for s in [(3, 4), (5,), (2, 2, 2)]]


def _module(grads):
    m = Module()
    for i, g in enumerate(grads):
        m.add_param(f"w{i}", np.zeros_like(g))
        m.grads[f"w{i}"][...] = g
    return m


def test_global_norm_accepts_every_input_form():
    grads = _grads()
    expected = np.sqrt(sum(np.sum(g * g) for g in grads))
    module = _module(grads)
    # float64: the same sum of squares, possibly in another order: rounding only (1e-14 is ~50 ulps)
    assert global_grad_norm(grads) == pytest.approx(expected, rel=1e-14)
    # float64 norm, a sum of squares of a few dozen entries in another order: ~1e-15; rel 1e-14.
    assert global_grad_norm(module.named_parameters()) == pytest.approx(expected, rel=1e-14)
    # same float64 sum of squares: rel 1e-14.
    assert global_grad_norm(module) == pytest.approx(expected, rel=1e-14)
    # same float64 sum of squares: rel 1e-14.
    assert global_grad_norm(SGD(module.named_parameters(), lr=0.1)) == pytest.approx(expected, rel=1e-14)
    assert isinstance(global_grad_norm(grads), float)
    with pytest.raises(TypeError):
        global_grad_norm(grads[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_rescales_together(dtype):
    grads = _grads(dtype=dtype, scale=10.0)
    before = [g.copy() for g in grads]
    norm = clip_grad_norm(grads, 2.0)
    # float32 among the dtypes (eps 1.2e-7): a norm and a rescale lose a few ulps; 1e-6 / 1e-5 is ~10 / 100 ulps
    assert norm == pytest.approx(global_grad_norm(before), rel=1e-6) and norm > 2.0
    assert global_grad_norm(grads) == pytest.approx(2.0, rel=1e-5)
    factor = grads[0].flat[0] / before[0].flat[0]
    for g, b in zip(grads, before):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, b * factor, rtol=1e-6)  # same direction, one factor


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = _grads(scale=0.01)
    before = [g.copy() for g in grads]
    module = _module(grads)
    norm = clip_grad_norm(module, 5.0)
    assert norm < 5.0
    for (_, _, g), b in zip(module.named_parameters(), before):
        np.testing.assert_array_equal(g, b)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_non_finite_leaves_grads_untouched(bad, dtype):
    grads = _grads(dtype=dtype, scale=100.0)
    grads[1][2] = bad
    before = [g.copy() for g in grads]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from inf/nan arithmetic
        norm = clip_grad_norm(grads, 1.0)
    if np.isnan(bad):
        assert np.isnan(norm)
    else:
        assert norm == np.inf
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)  # NaNs compare equal here


def test_large_float32_norm_does_not_overflow():
    # Squares of 1e20 overflow float32, but the norm (~3.5e20) itself is finite.
    grads = [np.full(12, 1e20, dtype=np.float32)]
    norm = clip_grad_norm(grads, 1.0)
    # float32 input but the norm is accumulated after scaling (no overflow): a few float32 roundings of 1e20,
    # ~6e-8 each; rel 1e-6 ~ 16 ulps.
    assert np.isfinite(norm) and norm == pytest.approx(np.sqrt(12) * 1e20, rel=1e-6)
    assert np.all(np.isfinite(grads[0])) and grads[0].dtype == np.float32
    # float32 rescaled gradients' norm: a few float32 ulps; rel 1e-5 ~ 100 ulps.
    assert global_grad_norm(grads) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_value_clamps_in_place():
    module = _module([np.array([-7.0, -5.0, 0.25, 5.0, 9.0, np.nan], dtype=np.float32)])
    clip_grad_value(module.named_parameters(), 5.0)
    g = module.grads["w0"]
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [-5.0, -5.0, 0.25, 5.0, 5.0, np.nan])


def test_clip_arguments_are_checked():
    with pytest.raises(ValueError):
        clip_grad_norm(_grads(), 0.0)
    with pytest.raises(ValueError):
        clip_grad_value(_grads(), -1.0)
