"""Embedding: the gradient sums the rows of every occurrence of an id (sort + reduceat)."""
import numpy as np

from rnnlab.layers import Embedding


def test_gradient_equals_add_at_with_repeats_and_unused_ids(rng):
    layer = Embedding(11, 4).astype(np.float64)
    ids = rng.integers(0, 6, size=(3, 9))          # ids 6..10 never occur, most others repeat
    _, cache = layer.forward(ids)
    dout = rng.standard_normal((3, 9, 4))
    layer.grads["W"][:] = 1.0                      # backward accumulates
    layer.backward(dout, cache)
    expected = np.ones((11, 4))
    np.add.at(expected, ids.ravel(), dout.reshape(-1, 4))
    # float64 scatter-add of <= 27 rows of size O(1) onto 1.0, in another order than np.add.at: ~27 eps; 1e-13.
    np.testing.assert_allclose(layer.grads["W"], expected, rtol=1e-13)


def test_empty_batch_has_no_gradient():
    layer = Embedding(5, 3)
    y, cache = layer.forward(np.zeros((2, 0), dtype=np.int64))
    assert y.shape == (2, 0, 3)
    assert layer.backward(np.zeros((2, 0, 3), dtype=np.float32), cache) is None
    assert not layer.grads["W"].any()
