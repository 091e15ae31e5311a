"""The batch-parallel time loop gives the same results as the single-threaded one."""
import numpy as np
import pytest

from rnnlab.cells import GRUCell, LSTMCell
from rnnlab.fast import parallel
from rnnlab.gradcheck import randomize
from rnnlab.layers import Recurrent

pytest.importorskip("threadpoolctl")


@pytest.fixture
def two_threads():
    parallel.set_threads(2)
    if parallel._blas_controller() is None:
        pytest.fail("threadpoolctl is installed but found no single BLAS library to control")
    yield
    parallel.set_threads(None)


def _run(layer, x, state0, dy, dstate, threads):
    parallel.set_threads(threads)
    layer.zero_grad()
    (y, sT), cache = layer.forward(x, state0)
    dx, ds0 = layer.backward((dy, dstate), cache)
    grads = {n: g.copy() for n, _, g in layer.named_parameters()}
    return np.array(y), sT, dx, ds0, grads, cache


@pytest.mark.parametrize("cell_cls", [LSTMCell, GRUCell])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("B", [16, 21])  # even and uneven row blocks
def test_split_equals_single_thread(two_threads, cell_cls, reverse, B):
    rng = np.random.default_rng(0)
    layer = randomize(Recurrent(cell_cls(5, 6), reverse=reverse), rng)
    T = 37  # several backward blocks of CHUNK steps, the last one partial
    x = rng.standard_normal((B, T, 5))
    state0 = tuple(rng.standard_normal((B, 6)) for _ in range(layer.cell.state_size))
    dy = rng.standard_normal((B, T, 6))
    dstate = tuple(rng.standard_normal((B, 6)) for _ in range(layer.cell.state_size))
    one = _run(layer, x, state0, dy, dstate, 1)
    two = _run(layer, x, state0, dy, dstate, 2)
    assert one[5].parts is None and two[5].parts is not None and len(two[5].parts) == 2
    # float64; the two threads run the same kernels on row blocks of a different height, so BLAS may sum
    # in another order: per step ~H*eps, grown over T=37 steps to ~1e-14 relative; rtol 1e-12 leaves ~100x,
    # atol 1e-13 for entries near 0. A wrong split (a row or a step lost) is O(1).
    np.testing.assert_allclose(two[0], one[0], rtol=1e-12, atol=1e-13)
    for a, b in zip(two[1], one[1]):
        # same as above: per-row state, float64, ~1e-14 from summation order; rtol 1e-12.
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    # dx: float64, per row, ~1e-14 from the kernels' summation order; rtol 1e-12, atol 1e-13.
    np.testing.assert_allclose(two[2], one[2], rtol=1e-12, atol=1e-13)
    for a, b in zip(two[3], one[3]):
        # dstate: same as dx above; rtol 1e-12, atol 1e-13.
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    for name in one[4]:
        # parameter gradients: sums over B*T <= 777 terms, added as two partial sums: ~1e3*eps ~ 2e-13
        # relative from the changed order; rtol 1e-11 leaves ~50x, atol 1e-12 for entries near 0.
        np.testing.assert_allclose(two[4][name], one[4][name], rtol=1e-11, atol=1e-12, err_msg=name)


def test_split_is_deterministic(two_threads):
    rng = np.random.default_rng(1)
    layer = Recurrent(LSTMCell(4, 8))
    x = rng.standard_normal((32, 20, 4)).astype(np.float32)
    runs = [_run(layer, x, None, np.ones((32, 20, 8), np.float32), None, 2)[4] for _ in range(3)]
    for r in runs[1:]:
        for name in r:
            np.testing.assert_array_equal(r[name], runs[0][name])


def test_small_batches_are_not_split(two_threads):
    assert parallel.partition(parallel.MIN_ROWS * 2 - 1) == [slice(0, parallel.MIN_ROWS * 2 - 1)]
    assert len(parallel.partition(64)) == 2


def test_numpy_blas_is_found_beside_torch_and_scipy():
    """With torch and SciPy loaded too, the controller must still pick NumPy's own BLAS."""
    pytest.importorskip("torch")
    pytest.importorskip("scipy.linalg")
    from threadpoolctl import ThreadpoolController

    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    chosen = parallel._numpy_blas(libs)
    assert chosen is not None
    assert "numpy" in chosen.filepath
