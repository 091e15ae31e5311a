"""Inverted dropout: the mask's distribution, backward, eval mode, memory order, seeding."""
import numpy as np
import pytest

from rnnlab.layers import Dropout


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_mask_is_bernoulli_keep_scaled(p):
    layer = Dropout(p, seed=1)
    x = np.ones((50, 40, 30), dtype=np.float32)
    y, cache = layer.forward(x)
    assert y.dtype == np.float32
    values = np.unique(cache.mask)
    # float32 mask values: 1/(1-p) rounded to float32 (2^-24 ~ 6e-8 relative); rtol 1e-6 ~ 16 ulps.
    np.testing.assert_allclose(values, [0.0, 1.0 / (1.0 - p)], rtol=1e-6)
    keep = (cache.mask > 0).mean()
    assert abs(keep - (1.0 - p)) < 4 * np.sqrt(p * (1 - p) / x.size)   # 4 standard errors
    np.testing.assert_array_equal(y, x * cache.mask)


def test_backward_applies_the_same_mask_and_eval_is_identity(rng):
    layer = Dropout(0.3, seed=2)
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    y, cache = layer.forward(x)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy, cache), dy * cache.mask)
    layer.eval()
    y_eval, cache_eval = layer.forward(x)
    assert y_eval is x and layer.backward(dy, cache_eval) is dy
    assert Dropout(0.0).forward(x)[0] is x


def test_time_major_view_keeps_its_memory_order(rng):
    """A recurrent output is (B, T, H) over (T, B, H) memory: the result stays in that order."""
    x = rng.standard_normal((7, 3, 5)).astype(np.float32).transpose(1, 0, 2)
    y, cache = Dropout(0.5, seed=3).forward(x)
    assert y.shape == x.shape and y.transpose(1, 0, 2).flags.c_contiguous
    np.testing.assert_array_equal(y, x * cache.mask)


def test_same_seed_same_masks_different_seed_different_masks():
    x = np.ones((8, 9, 10), dtype=np.float32)
    a, b, c = (Dropout(0.5, seed=s).forward(x)[1].mask for s in (4, 4, 5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
