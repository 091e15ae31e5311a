"""The forward-only (no_grad) batch split: as many row blocks as the BLAS has threads, every BLAS on
one thread inside no_grad, and the same outputs as the unsplit loop."""
import numpy as np
import pytest

from rnnlab import no_grad
from rnnlab.blas import threads as blas_threads
from rnnlab.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.fast import parallel
from rnnlab.gradcheck import randomize
from rnnlab.layers import Embedding, Linear, Recurrent
from rnnlab.layers.tokens import Tokens

pytest.importorskip("threadpoolctl")


@pytest.fixture
def blas_two(monkeypatch):
    """A BLAS that reports 2 threads and no RNNLAB_THREADS: the default on a 2-core machine."""
    monkeypatch.delenv("RNNLAB_THREADS", raising=False)
    monkeypatch.setattr(parallel, "FORWARD_LOOP_WORK", 0)    # these layers are small: split them anyway
    parallel.set_threads(None)
    limiter = blas_threads.limit(2)
    if parallel._blas_controller() is None:
        pytest.fail("threadpoolctl is installed but found no single BLAS library to control")
    yield
    limiter.restore_original_limits()


def _forward(layer, x, split, monkeypatch=None):
    """(y, state, cache, blocks): ``blocks`` the row-block counts parallel.run was given."""
    blocks, run = [], parallel.run

    def spy(fn, parts):
        blocks.append(len(parts))
        return run(fn, parts)
    parallel.set_threads(None if split else 1)
    parallel.run = spy
    try:
        with no_grad():
            (y, state), cache = layer.forward(x)
        return np.array(y), [np.array(s) for s in state], cache, blocks
    finally:
        parallel.run = run
        parallel.set_threads(None)


@pytest.mark.parametrize("cell_cls", [LSTMCell, GRUCell, RNNCell])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("B", [16, 21])
def test_forward_split_equals_unsplit(blas_two, cell_cls, reverse, B):
    rng = np.random.default_rng(0)
    layer = randomize(Recurrent(cell_cls(5, 6), reverse=reverse), rng)
    x = rng.standard_normal((B, 19, 5))
    split, unsplit = _forward(layer, x, True), _forward(layer, x, False)
    assert split[3] == [2] and unsplit[3] == []
    # the same kernels on row blocks of another height: a BLAS may order a row's sums differently
    # for another row count (float64 here: ~T*H*eps ~ 1e-14); a lost or shifted row is O(1)
    np.testing.assert_allclose(split[0], unsplit[0], rtol=1e-12, atol=1e-13)
    for a, b in zip(split[1], unsplit[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_forward_split_token_input(blas_two):
    """A character model's first layer (token rows read in place) splits too."""
    rng = np.random.default_rng(1)
    emb = Embedding(11, 4, seed=0)
    layer = randomize(Recurrent(LSTMCell(4, 8)), rng)
    ids = rng.integers(0, 11, (24, 13))
    x = Tokens(ids, emb.params["W"], None, 11)
    split, unsplit = _forward(layer, x, True), _forward(layer, x, False)
    assert split[3] == [2] and unsplit[3] == []
    assert split[2].parts is None   # forward only keeps no parts (nothing to backpropagate)
    # float32 (the embedding's dtype): per-row sums of 4 and 8 terms, ~1e-7 relative
    np.testing.assert_allclose(split[0], unsplit[0], rtol=1e-6, atol=1e-6)


def test_no_grad_runs_blas_on_one_thread_and_restores(blas_two):
    assert parallel.forward_threads() == 2 and blas_threads.count() == 2
    with no_grad():
        assert blas_threads.count() == 1           # every BLAS library, oneMKL too where loaded
        assert parallel.forward_threads() == 2     # the blocks do the parallel work
        assert len(parallel.forward_partition(64)) == 2
        with no_grad():                            # nested: nothing changes, nothing restored early
            assert blas_threads.count() == 1
        assert blas_threads.count() == 1
    assert blas_threads.count() == 2


def test_one_blas_thread_means_no_split(monkeypatch):
    monkeypatch.delenv("RNNLAB_THREADS", raising=False)
    parallel.set_threads(None)
    limiter = blas_threads.limit(1)
    try:
        assert parallel.forward_threads() == 1
        assert parallel.forward_partition(64) == [slice(0, 64)]
        layer = Recurrent(LSTMCell(3, 4))
        with no_grad():
            _, cache = layer.forward(np.ones((32, 5, 3), np.float32))
        assert cache.parts is None
    finally:
        limiter.restore_original_limits()


def test_forward_mm_splits_rows_and_matches(blas_two):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((1000, 300)).astype(np.float32)
    b = rng.standard_normal((300, 50)).astype(np.float32)
    with no_grad():
        y = parallel.forward_mm(a, b)
    np.testing.assert_allclose(y, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)   # float32 sums of 300
    lin = Linear(300, 50)
    with no_grad():
        out, _ = lin.forward(a)
    ref, _ = lin.forward(a)                      # training forward: one product
    # float32; the same dot products per row, a BLAS may order them differently for another row count
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_small_loops_are_not_split(blas_two, monkeypatch):
    monkeypatch.setattr(parallel, "FORWARD_LOOP_WORK", 1 << 24)
    assert parallel.forward_partition(64, work=(1 << 24) - 1) == [slice(0, 64)]
    assert len(parallel.forward_partition(64, work=1 << 24)) == 2
    layer = Recurrent(LSTMCell(3, 4))
    _, _, _, blocks = _forward(layer, np.ones((32, 5, 3)), True)
    assert blocks == []
