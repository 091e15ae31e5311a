"""rnnlab.blas: the oneMKL backend (sgemm, packed weights, bf16 products) against NumPy, and the
bf16 conversions against a rounding computed bit by bit. The MKL tests skip where libmkl_rt
cannot be loaded (``pip install 'rnnlab[mkl]'``); the bf16 and backend-selection tests always run."""
from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np
import pytest

from rnnlab import blas
from rnnlab.blas import bf16, mkl

needs_mkl = pytest.mark.skipif(not mkl.available(), reason=f"oneMKL not loadable: {mkl.unavailable_reason()}")
needs_bf16 = pytest.mark.skipif(not (mkl.available() and mkl.has_bf16()),
                                reason="oneMKL with cblas_gemm_bf16bf16f32 not loadable")

U = 2.0 ** -8          # bf16 unit roundoff (8 significant bits)
EPS32 = 2.0 ** -24     # float32 unit roundoff


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def ref_product(a, b):
    return a.astype(np.float64) @ b.astype(np.float64)


def assert_product(got, a, b, beta=0.0, c0=None):
    """Within float32 accumulation error of the exact product: |err| <= 2 (k+2) eps32 (|a||b| + |beta c0|)."""
    want = ref_product(a, b)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    if beta:
        want = want + beta * c0.astype(np.float64)
        scale = scale + abs(beta) * np.abs(c0)
    k = a.shape[1]
    assert got.dtype == np.float32
    assert np.all(np.abs(got - want) <= 2 * (k + 2) * EPS32 * scale + 1e-30)


# --- bf16 rounding, bit by bit ------------------------------------------------------------------

def _bits_value(bits16: int) -> Fraction:
    """Exact value of a finite non-negative bf16 pattern (or 2^128 for the inf pattern, the
    IEEE overflow rule's next value up)."""
    if bits16 == 0x7F80:
        return Fraction(2) ** 128
    (v,) = struct.unpack("<f", struct.pack("<I", bits16 << 16))
    return Fraction(v)


def ref_to_bf16(bits32: int) -> int:
    """Round one float32 bit pattern to bf16 by comparing exact distances to the two neighbours."""
    sign = bits32 & 0x8000_0000
    mag = bits32 & 0x7FFF_FFFF
    if mag > 0x7F80_0000:                                   # NaN: quiet, sign and top payload kept
        return (bits32 >> 16) | 0x0040
    if mag == 0x7F80_0000:
        return bits32 >> 16
    (v,) = struct.unpack("<f", struct.pack("<I", mag))
    x = Fraction(v)
    lo = mag >> 16                                          # truncation: the neighbour below (or equal)
    hi = lo + 1
    d_lo, d_hi = x - _bits_value(lo), _bits_value(hi) - x
    pick = lo if d_lo < d_hi else hi if d_hi < d_lo else (lo if lo % 2 == 0 else hi)
    return (sign >> 16) | pick


def special_bits() -> np.ndarray:
    hi = np.array([0x0000, 0x0001, 0x007F, 0x0080, 0x0100, 0x3F80, 0x3F81, 0x4000, 0x7F00, 0x7F7E, 0x7F7F,
                   0x7F80, 0x7FC0, 0x7F81], dtype=np.uint32)
    lo = np.array([0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x4000, 0xC000], dtype=np.uint32)
    pats = (hi[:, None] << 16 | lo[None, :]).ravel()
    pats = np.concatenate([pats, [0x7F7F_FFFF, 0x7F7F_8000, 0x7F7F_7FFF, 0x0000_8000, 0x0001_8000,
                                  0x7FFF_FFFF, 0x7F80_0001, 0x7FBF_FFFF]])
    return np.concatenate([pats, pats | 0x8000_0000]).astype(np.uint32)


def test_to_bf16_is_round_to_nearest_even_bit_by_bit():
    rng = np.random.default_rng(0)
    pats = np.concatenate([special_bits(), rng.integers(0, 2 ** 32, 30_000, dtype=np.uint64).astype(np.uint32),
                           # exact ties (low half 0x8000) and their neighbours, across all exponents
                           (rng.integers(0, 2 ** 16, 3000, dtype=np.uint32) << 16)
                           | rng.choice(np.array([0x7FFF, 0x8000, 0x8001], np.uint32), 3000)])
    x = pats.view(np.float32)
    got = bf16.to_bf16(x)
    want = np.array([ref_to_bf16(int(p)) for p in pats], dtype=np.uint16)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(hex(pats[i]), hex(got[i]), hex(want[i])) for i in bad[:5]]


def test_ties_go_to_even_and_specials_survive():
    tie_even = np.array([0x3F80_8000], np.uint32).view(np.float32)   # 1 + 2^-8: halfway, 1.0 is even
    tie_odd = np.array([0x3F81_8000], np.uint32).view(np.float32)    # halfway above an odd pattern
    assert bf16.to_bf16(tie_even)[0] == 0x3F80
    assert bf16.to_bf16(tie_odd)[0] == 0x3F82
    x = np.array([np.inf, -np.inf, 0.0, -0.0, np.nan, -np.nan, 3.4028235e38, -3.4028235e38], np.float32)
    b = bf16.to_bf16(x)
    assert list(b[:4]) == [0x7F80, 0xFF80, 0x0000, 0x8000]
    back = bf16.from_bf16(b)
    assert np.isnan(back[4]) and np.isnan(back[5]) and np.signbit(back[5]) and not np.signbit(back[4])
    assert np.isposinf(back[6]) and np.isneginf(back[7])        # float32 max rounds up past bf16 max
    sNaN = np.array([0x7F80_0001, 0xFF80_0001], np.uint32).view(np.float32)   # payload only in the low half
    assert list(bf16.to_bf16(sNaN)) == [0x7FC0, 0xFFC0]          # still NaN (not inf), quiet


def test_from_bf16_is_exact_and_round_bf16_agrees():
    rng = np.random.default_rng(1)
    b = rng.integers(0, 2 ** 16, 50_000, dtype=np.uint32).astype(np.uint16)
    x = bf16.from_bf16(b)
    assert np.array_equal(x.view(np.uint32), b.astype(np.uint32) << 16)
    finite = ~np.isnan(x)
    assert np.array_equal(bf16.to_bf16(x)[finite], b[finite])     # bf16 values round to themselves
    with np.errstate(over="ignore"):
        y = (rng.standard_normal((37, 41)) * 10.0 ** rng.integers(-45, 39, (37, 41))).astype(np.float32)
    y[0, :4] = [np.nan, -np.inf, np.inf, -0.0]
    r = bf16.round_bf16(y)
    assert np.array_equal(r.view(np.uint32), bf16.from_bf16(bf16.to_bf16(y)).view(np.uint32))
    z = y.copy()
    assert bf16.round_bf16(z, out=z) is z and np.array_equal(z.view(np.uint32), r.view(np.uint32))
    t = y.T                                                       # non-contiguous input
    assert np.array_equal(bf16.to_bf16(t), bf16.to_bf16(np.ascontiguousarray(t)))


def test_bf16_refuses_other_dtypes():
    with pytest.raises(TypeError, match="float32"):
        bf16.to_bf16(np.ones(3))
    with pytest.raises(TypeError, match="uint16"):
        bf16.from_bf16(np.ones(3, np.int16))
    with pytest.raises(ValueError, match="uint16 of shape"):
        bf16.to_bf16(np.ones(3, np.float32), out=np.empty(4, np.uint16))


# --- backend selection --------------------------------------------------------------------------

def test_backend_default_is_numpy_and_matmul_matches(monkeypatch, rng):
    monkeypatch.setattr(blas, "_backend", None)
    monkeypatch.delenv("RNNLAB_BLAS", raising=False)
    assert blas.backend() == "numpy"
    assert blas.describe().startswith("numpy:")
    a, b = f32(rng, 5, 7), f32(rng, 7, 3)
    out = np.ones((5, 3), np.float32)
    # float32 products of length 7, plus 2: ~7 * 2^-24 relative of values O(3); rtol/atol 1e-5.
    np.testing.assert_allclose(blas.matmul(a, b, out, beta=2.0), a @ b + 2.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(blas.matmul(a, b), a @ b)


def test_native_bf16_is_a_flag():
    assert blas.native_bf16() in (True, False)


def test_mkl_request_falls_back_with_one_line_note(monkeypatch, capsys):
    monkeypatch.setattr(mkl, "unavailable_reason", lambda: "not here")
    monkeypatch.setattr(blas, "_backend", None)
    monkeypatch.setenv("RNNLAB_BLAS", "mkl")
    assert blas.backend() == "numpy"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RNNLAB_BLAS=mkl" in err and "NumPy" in err
    assert "RNNLAB_BLAS=mkl" in blas.describe()
    monkeypatch.setattr(blas, "_backend", None)
    monkeypatch.setenv("RNNLAB_BLAS", "cublas")
    assert blas.backend() == "numpy" and "cublas" in capsys.readouterr().err
    with pytest.raises(ValueError):
        blas.set_backend("cublas")


@needs_mkl
def test_mkl_backend_selected_and_described(monkeypatch, rng):
    monkeypatch.setattr(blas, "_backend", None)
    monkeypatch.setenv("RNNLAB_BLAS", "mkl")
    assert blas.backend() == "mkl"
    line = blas.describe()
    assert line.startswith("mkl: oneMKL") and mkl.threading_layer() in line
    a, b = f32(rng, 64, 32), f32(rng, 32, 128)
    assert_product(blas.matmul(a, b), a, b)
    c0 = f32(rng, 64, 128)
    assert_product(blas.matmul(a, b, c0.copy(), beta=0.5), a, b, 0.5, c0)
    np.testing.assert_array_equal(blas.matmul(a.astype(np.float64), b.astype(np.float64)),
                                  a.astype(np.float64) @ b.astype(np.float64))   # float64: NumPy's


# --- sgemm --------------------------------------------------------------------------------------

def _variants(x):
    """x (r, c) as differently laid out arrays of the same values: C, F, a row/column block of a
    larger array, and a transposed view of a C array."""
    r, c = x.shape
    big = np.zeros((r + 3, c + 5), np.float32)
    big[1:r + 1, 2:c + 2] = x
    bigF = np.asfortranarray(big)
    return {"C": x.copy(), "F": np.asfortranarray(x), "block": big[1:r + 1, 2:c + 2],
            "Fblock": bigF[1:r + 1, 2:c + 2], "T-view": np.ascontiguousarray(x.T).T}


@needs_mkl
@pytest.mark.parametrize("la", ["C", "F", "block", "Fblock", "T-view"])
@pytest.mark.parametrize("lb", ["C", "F", "block", "Fblock"])
@pytest.mark.parametrize("lo", ["C", "F", "block"])
def test_sgemm_equals_numpy_in_every_layout(la, lb, lo, rng):
    a, b = f32(rng, 13, 29), f32(rng, 29, 17)
    c0 = f32(rng, 13, 17)
    out = _variants(c0)[lo]
    got = mkl.sgemm(_variants(a)[la], _variants(b)[lb], out, beta=0.0)
    assert got is out
    assert_product(got, a, b)
    out = _variants(c0)[lo]
    assert_product(mkl.sgemm(_variants(a)[la], _variants(b)[lb], out, alpha=1.0, beta=-0.75), a, b, -0.75, c0)


@needs_mkl
def test_sgemm_rnn_products(rng):
    """The four products of a recurrent layer, with the arrays as the kernels hold them."""
    T, B, D, H = 5, 8, 12, 16
    G = 4 * H
    xt, hs = f32(rng, T, B, D), f32(rng, T + 1, B, H)
    W_x, W_h, dA = f32(rng, D, G), f32(rng, H, G), f32(rng, T, B, G)
    XW = np.empty((T, B, G), np.float32)
    mkl.sgemm(xt.reshape(T * B, D), W_x, XW.reshape(T * B, G))                     # x W_x
    assert_product(XW.reshape(T * B, G), xt.reshape(T * B, D), W_x)
    hw = np.empty((B, G), np.float32)
    assert_product(mkl.sgemm(hs[2], W_h, hw), hs[2], W_h)                          # h W_h (a row block)
    dW = f32(rng, H, G)
    h_prev = hs[:T].reshape(T * B, H)
    assert_product(mkl.sgemm(h_prev.T, dA.reshape(T * B, G), dW.copy(), beta=1.0),  # h^T dA, accumulated
                   h_prev.T, dA.reshape(T * B, G), 1.0, dW)
    dh = np.empty((B, H), np.float32)
    assert_product(mkl.sgemm(dA[3], W_h.T, dh), dA[3], W_h.T)                      # dA W_h^T (view)
    assert_product(mkl.sgemm(dA[3], W_h, dh, trans_b=True), dA[3], W_h.T)


@needs_mkl
def test_sgemm_beta_zero_does_not_read_out_and_edges(rng):
    a, b = f32(rng, 4, 6), f32(rng, 6, 5)
    out = np.full((4, 5), np.nan, np.float32)
    assert_product(mkl.sgemm(a, b, out), a, b)
    assert mkl.sgemm(a[:0], b).shape == (0, 5)
    out = np.ones((4, 5), np.float32)
    np.testing.assert_array_equal(mkl.sgemm(a[:, :0], b[:0], out, beta=3.0), 3.0)   # k == 0
    np.testing.assert_array_equal(mkl.sgemm(a[:, :0], b[:0], out), 0.0)
    one = mkl.sgemm(a[1:2], b[:, 2:3])                                               # 1x1, odd strides
    assert_product(one, a[1:2], b[:, 2:3])
    assert_product(mkl.sgemm(a[:, 1:2], b[1:2]), a[:, 1:2], b[1:2])                 # rank-1 outer product


@needs_mkl
def test_sgemm_refuses_clearly(rng):
    a, b = f32(rng, 6, 8), f32(rng, 8, 4)
    with pytest.raises(ValueError, match="contiguous"):
        mkl.sgemm(a[:, ::2], b[::2])                    # neither rows nor columns contiguous
    with pytest.raises(ValueError, match="contiguous"):
        mkl.sgemm(a[::-1], b)                           # negative stride
    with pytest.raises(TypeError, match="float32"):
        mkl.sgemm(a.astype(np.float64), b)
    with pytest.raises(ValueError, match="2-D"):
        mkl.sgemm(a[None], b)
    with pytest.raises(ValueError, match="do not multiply"):
        mkl.sgemm(a, a)
    with pytest.raises(ValueError, match="shape"):
        mkl.sgemm(a, b, np.empty((6, 5), np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        sq = f32(rng, 8, 8)
        mkl.sgemm(sq, sq.copy(), sq)
    with pytest.raises(ValueError, match="beta"):
        mkl.sgemm(a, b, beta=1.0)
    with pytest.raises(TypeError, match="NumPy array"):
        mkl.sgemm(a.tolist(), b)
    ro = np.empty((6, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        mkl.sgemm(a, b, ro)


# --- packed ---------------------------------------------------------------------------------------

@needs_mkl
@pytest.mark.parametrize("H", [16, 128])
def test_packed_equals_numpy_and_follows_repack(H, rng):
    B, G = 8, 4 * H
    W = f32(rng, H, G)
    P = mkl.PackedMatrix(W, B)
    assert P.shape == (H, G) and P.packs == 1 and P.nbytes > 0
    hs = f32(rng, 3, B, H)
    out = np.empty((B, G), np.float32)
    for t in range(3):
        assert_product(P.compute(hs[t], out), hs[t], W)
    c0 = f32(rng, B, G)
    assert_product(P.compute(hs[1], c0.copy(), beta=1.0), hs[1], W, 1.0, c0)
    assert_product(P.compute(np.asfortranarray(hs[2])), hs[2], W)                 # transposed operand
    old = W.copy()
    W -= 0.1 * f32(rng, H, G)                          # an optimizer step, in place
    assert_product(P.compute(hs[0], out), hs[0], old)  # the packed copy does not follow...
    P.repack()
    assert P.packs == 2
    assert_product(P.compute(hs[0], out), hs[0], W)    # ...until repacked
    W2 = f32(rng, H, G)
    P.repack(W2)
    assert_product(P.compute(hs[0], out), hs[0], W2)


@needs_mkl
def test_packed_transposed_weight_for_backward(rng):
    B, H = 8, 24
    W_h = f32(rng, H, 4 * H)
    P = mkl.PackedMatrix(W_h.T, B)                      # dA W_h^T without copying W_h^T
    dA = f32(rng, B, 4 * H)
    assert_product(P.compute(dA), dA, W_h.T)
    W_h *= 0.5
    P.repack()
    assert_product(P.compute(dA), dA, W_h.T)


@needs_mkl
def test_packed_refuses_clearly(rng):
    W = f32(rng, 16, 32)
    P = mkl.PackedMatrix(W, 4)
    with pytest.raises(ValueError, match="m rows"):
        P.compute(f32(rng, 5, 16))
    with pytest.raises(ValueError, match="packed matrix is"):
        P.repack(f32(rng, 16, 33))
    with pytest.raises(ValueError, match="contiguous rows"):
        P.compute(f32(rng, 4, 16), np.empty((4, 32), np.float32, order="F"))
    with pytest.raises(ValueError, match="precision"):
        mkl.PackedMatrix(W, 4, precision="fp8")
    with pytest.raises(ValueError, match=">= 1"):
        mkl.PackedMatrix(W, 0)


@needs_mkl
def test_steppers_equal_numpy_per_step(rng):
    """The time-loop form: hs[t] @ W_h into one fixed hw (forward), dA[t] @ W_h^T (backward), and
    a stack of outputs; with the checks done once and only pointers moving."""
    T, B, H = 6, 8, 20
    G = 4 * H
    hs, W_h, dA = f32(rng, T + 1, B, H), f32(rng, H, G), f32(rng, T, B, G)
    hw = np.empty((B, G), np.float32)
    P = mkl.PackedMatrix(W_h, B)
    run_p, run_s = P.stepper(hs, hw), mkl.sgemm_stepper(hs, W_h, hw)
    for t in range(T + 1):
        run_p(t)
        assert_product(hw, hs[t], W_h)
        hw.fill(np.nan)
        run_s(t)
        assert_product(hw, hs[t], W_h)
    W_h += 1.0
    P.repack()
    run_p(3)
    assert_product(hw, hs[3], W_h)                     # a repack is seen by an existing stepper
    dh = np.empty((T, B, H), np.float32)
    back = mkl.PackedMatrix(W_h.T, B).stepper(dA, dh)  # stacks on both sides
    back_s = mkl.sgemm_stepper(dA, W_h.T, dh, beta=1.0)
    for t in reversed(range(T)):
        back(t)
        assert_product(dh[t], dA[t], W_h.T)
        before = dh[t].copy()
        back_s(t)
        assert_product(dh[t], dA[t], W_h.T, 1.0, before)
    with pytest.raises(IndexError):
        back(T)
    with pytest.raises(ValueError, match="stack"):
        P.stepper(f32(rng, T, B, H + 1), hw)
    with pytest.raises(ValueError, match="overlaps"):
        mkl.sgemm_stepper(hs[:, :, :H], f32(rng, H, H), hs[0])


@needs_bf16
def test_bf16_stepper(rng):
    T, B, H = 4, 8, 16
    hs = f32(rng, T, B, H)
    W = f32(rng, H, 3 * H)
    h16 = bf16.to_bf16(hs)
    out = np.empty((B, 3 * H), np.float32)
    P = mkl.PackedMatrix(W, B, precision="bf16")
    run = P.stepper(h16, out)
    for t in range(T):
        run(t)
        np.testing.assert_array_equal(out, P.compute(h16[t]))
    with pytest.raises(TypeError, match="uint16"):
        P.stepper(hs, out)


# --- bf16 products ------------------------------------------------------------------------------

def bf16_bound(a, b):
    """|bf16 product - exact float64 product| <= ((1+u)^2 - 1 + gamma_k) |a||b|: each input rounded
    once (relative u), float32 accumulation over k terms."""
    k = a.shape[1]
    gamma = 2 * (k + 2) * EPS32
    return ((1 + U) ** 2 - 1 + gamma) * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))


@needs_bf16
@pytest.mark.parametrize("K", [64, 512])
def test_gemm_bf16_error_is_bf16_sized(K, rng):
    M, N = 64, 4 * K
    a, b = f32(rng, M, K), f32(rng, K, N)
    got = mkl.gemm_bf16(bf16.to_bf16(a), bf16.to_bf16(b))
    exact = ref_product(a, b)
    err = np.abs(got - exact)
    assert np.all(err <= bf16_bound(a, b))
    # consistent with bf16 precision: the inputs really were rounded (error far above float32's)...
    rel = np.linalg.norm(got - exact) / np.linalg.norm(exact)
    assert 1e-4 < rel < 4 * U
    # ...and the products of the rounded inputs accumulate in float32: within float32 error of them
    ar, br = bf16.round_bf16(a), bf16.round_bf16(b)
    assert_product(got, ar, br)
    sg = mkl.sgemm(a, b)
    assert np.linalg.norm(sg - exact) / np.linalg.norm(exact) < 1e-6


@needs_bf16
def test_gemm_bf16_layouts_and_beta(rng):
    a, b = f32(rng, 12, 20), f32(rng, 20, 9)
    a16, b16 = bf16.to_bf16(a), bf16.to_bf16(b)
    ar, br = bf16.round_bf16(a), bf16.round_bf16(b)
    c0 = f32(rng, 12, 9)
    out = np.asfortranarray(c0)
    assert_product(mkl.gemm_bf16(np.asfortranarray(a16), b16.T.copy().T, out, beta=2.0), ar, br, 2.0, c0)
    assert_product(mkl.gemm_bf16(a16.T.copy(), b16, trans_a=True), ar, br)
    with pytest.raises(TypeError, match="uint16"):
        mkl.gemm_bf16(a, b16)


@needs_bf16
def test_packed_bf16_and_repack(rng):
    B, H = 16, 64
    W = f32(rng, H, 4 * H)
    P = mkl.PackedMatrix(W, B, precision="bf16")
    h = f32(rng, B, H)
    h16 = bf16.to_bf16(h)
    hr = bf16.round_bf16(h)
    assert_product(P.compute(h16), hr, bf16.round_bf16(W))
    np.testing.assert_array_equal(P.compute(h16), mkl.gemm_bf16(h16, bf16.to_bf16(W)))
    W += 0.25
    P.repack()
    assert_product(P.compute(h16), hr, bf16.round_bf16(W))
    P.repack(bf16.to_bf16(W * 2))                       # already-bf16 weights are packed as they are
    assert_product(P.compute(h16), hr, bf16.round_bf16(W * 2))
    with pytest.raises(TypeError, match="uint16"):
        P.compute(h)


@needs_mkl
def test_threads_and_describe():
    n = mkl.get_max_threads()
    try:
        mkl.set_num_threads(1)
        if mkl.threading_layer() in ("INTEL", "GNU", "SEQUENTIAL"):   # TBB keeps its own arena's count
            assert mkl.get_max_threads() == 1
    finally:
        mkl.set_num_threads(n)
    assert mkl.threading_layer() in mkl.LAYERS
    assert mkl.version()[:4].isdigit()
    assert mkl.library_path() in mkl.describe()


def test_candidates_list_is_well_formed():
    c = mkl.candidates()
    assert c and all(isinstance(p, str) for p in c)
    assert "libmkl_rt.so.2" in c          # the bare soname: the loader's own search comes last


def test_missing_library_raises_with_the_places_tried(monkeypatch):
    from rnnlab.blas import mkl_lib    # the loaded library's state lives there (mkl re-exports it)

    monkeypatch.setattr(mkl_lib, "_lib", None)
    monkeypatch.setattr(mkl_lib, "_error", None)
    monkeypatch.setattr(mkl_lib, "candidates", lambda: ["/nonexistent/libmkl_rt.so.3"])
    assert not mkl.available()
    with pytest.raises(mkl.MKLUnavailable, match="nonexistent"):
        mkl.sgemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    assert "pip install -e '.[mkl]'" in mkl.unavailable_reason()
