"""Linear: batch-first and time-major-view inputs."""
import numpy as np

from rnnlab.layers import Linear


def test_time_major_view_input_gives_the_same_results_as_a_copy(rng):
    """A recurrent layer hands over (B, T, H) as a view of (T, B, H) memory: Linear works in
    that order without copying, and must give exactly what a batch-first copy gives."""
    layer = Linear(5, 3, seed=1).astype(np.float64)
    layer.params["b"][:] = rng.standard_normal(3)
    x_tm = rng.standard_normal((4, 2, 5))            # (T, B, D) memory
    x_view = x_tm.transpose(1, 0, 2)                 # (B, T, D) view
    dy = rng.standard_normal((2, 4, 3))
    results = []
    for x in (x_view, np.ascontiguousarray(x_view)):
        layer.zero_grad()
        y, cache = layer.forward(x)
        dx = layer.backward(dy, cache)
        results.append((y, dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
    for a, b in zip(*results):
        assert a.shape == b.shape
        # float64 products of length <= 8 in two code paths: a few ulps (~1e-15); rtol 1e-13, atol 1e-14.
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    assert not results[0][0].flags.c_contiguous      # handed back as a view of time-major rows
