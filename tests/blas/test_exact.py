"""rnnlab.blas.exact (RNNLAB_BLAS=exact): one fixed summation order, the same bits from the compiled
loop and the NumPy loop, the product to float32 rounding, and routed through rnnlab.blas.choice."""
import numpy as np
import pytest

from rnnlab.blas import choice, exact
from rnnlab.fast import accel

SHAPES = [(1, 1, 1), (5, 7, 12), (16, 32, 128), (7, 33, 1), (3, 512, 5), (9, 4, 130), (256, 40, 6)]
# (7, 33, 1) and (256, 40, 6): few columns, many rows, computed as the transpose


def _operands(M, K, N, seed=0, layout="nn"):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K) if layout[0] == "n" else (K, M), dtype=np.float32)
    b = rng.standard_normal((K, N) if layout[1] == "n" else (N, K), dtype=np.float32)
    return (a if layout[0] == "n" else a.T), (b if layout[1] == "n" else b.T)


def test_the_order_is_ascending_k_each_product_rounded_no_fma():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 9), dtype=np.float32) * np.float32(1e3)
    b = rng.standard_normal((9, 4), dtype=np.float32)
    want = np.zeros((3, 4), np.float32)
    for i in range(3):
        for j in range(4):
            s = np.float32(0.0)
            for k in range(9):
                s = np.float32(s + np.float32(a[i, k] * b[k, j]))
            want[i, j] = s
    assert exact.matmul_numpy(a, b).tobytes() == want.tobytes()
    if accel.available():
        assert exact.matmul(a, b).tobytes() == want.tobytes()


@pytest.mark.skipif(not accel.available(), reason="numba is not installed")
@pytest.mark.parametrize("layout", ["nn", "tn", "nt", "tt"])
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_compiled_and_numpy_loops_give_the_same_bits(M, K, N, layout):
    a, b = _operands(M, K, N, seed=M * 100 + K, layout=layout)
    with accel.using(True):
        fast = exact.matmul(a, b)
        acc = np.ones((M, N), np.float32)
        exact.matmul(a, b, acc, accumulate=True)
    with accel.using(False):
        slow = exact.matmul(a, b)
        acc2 = np.ones((M, N), np.float32)
        exact.matmul(a, b, acc2, accumulate=True)
    assert fast.tobytes() == slow.tobytes()
    assert acc.tobytes() == acc2.tobytes()
    with accel.using(True):
        f_out = np.zeros((N, M), np.float32).T                     # a result array that is not C-contiguous
        exact.matmul(a, b, f_out)
    assert np.ascontiguousarray(f_out).tobytes() == slow.tobytes()
    assert acc.tobytes() == (np.float32(1.0) + slow).tobytes()   # the product first, then one addition


@pytest.mark.parametrize("M,K,N", SHAPES)
def test_it_is_the_product(M, K, N):
    a, b = _operands(M, K, N)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    # sequential float32 sums of K terms of size O(1): error <= K * 2^-24 * sum|a b| ~ K * 6e-8 * sqrt(K)
    tol = 6e-8 * K * np.sqrt(K) * 4 + 1e-7
    np.testing.assert_allclose(exact.matmul(a, b), ref, rtol=0, atol=tol)


def test_misaligned_shapes_are_refused():
    with pytest.raises(ValueError, match="do not align"):
        exact.matmul(np.ones((2, 3), np.float32), np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        exact.matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), np.ones((2, 3), np.float32))


@pytest.fixture
def exact_requested(monkeypatch):
    monkeypatch.setattr(choice, "_requested", None)
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setenv("RNNLAB_BLAS", "exact")
    assert choice.requested() == "exact"


def test_choice_routes_every_float32_product_to_it(exact_requested):
    stack, W = (np.stack([_operands(5, 7, 12, seed=t)[0] for t in range(3)]), _operands(5, 7, 12)[1])
    out = np.empty((5, 12), np.float32)
    run = choice.stepper(stack, W, out)
    for t in range(3):   # the step products of a time loop
        run(t)
        assert out.tobytes() == exact.matmul(stack[t], W).tobytes()
    rng = np.random.default_rng(1)
    big = rng.standard_normal((300, 256), dtype=np.float32)     # above GEMM_MIN_MACS: auto would time it
    Wb = rng.standard_normal((256, 300), dtype=np.float32)
    assert choice.gemm(big, Wb).tobytes() == exact.matmul(big, Wb).tobytes()
    acc = np.ones((256, 256), np.float32)
    choice.gemm(big.T, big, acc, accumulate=True)                # a transposed operand, as a weight gradient
    assert acc.tobytes() == (np.float32(1.0) + exact.matmul(big.T, big)).tobytes()
    assert choice.choices()["chosen"] == {}                        # nothing timed
    f64 = rng.standard_normal((4, 7))
    np.testing.assert_array_equal(choice.gemm(f64, W.astype(np.float64)), f64 @ W.astype(np.float64))
