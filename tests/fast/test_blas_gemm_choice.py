"""rnnlab.blas.choice's whole-sequence products (choose_gemm, gemm): which shapes are timed, the
key they are kept under, that the chosen library computes the product (also accumulating and on
transposed operands), that a run's record restores them, and that the layers' products go there.

The dispatch is tested with a stand-in for oneMKL's sgemm and for the timing, so it runs where the
mkl extra is not installed; the real library's products are checked where it is."""
import numpy as np
import pytest

from rnnlab.blas import choice, choice_cache
from rnnlab.blas import mkl as mkl_mod
from rnnlab.fast import bf16


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(choice, "_requested", None)
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", "off")
    monkeypatch.setattr(choice, "mkl_loadable", lambda: True)


@pytest.fixture
def fake_mkl(monkeypatch):
    """oneMKL's sgemm replaced by a float64 product that records its calls (beta included)."""
    calls = []

    def sgemm(a, b, out=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False):
        calls.append((a.shape, b.shape, beta))
        prod = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
        if out is None:
            return prod
        out[...] = prod + (beta * out if beta else 0)
        return out
    monkeypatch.setattr(mkl_mod, "sgemm", sgemm)
    return calls


@pytest.fixture
def timed(monkeypatch):
    """The timing replaced: mkl is 'faster' on every shape; records the shapes timed."""
    shapes = []

    def fake(M, K, N, layout):
        shapes.append((M, K, N, layout))
        return {"openblas": 2e-3, "mkl": 1e-3}
    monkeypatch.setattr(choice, "_time_gemm", fake)
    return shapes


def _f32(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def test_key_names_round_trip():
    for key in [(64, 256, 1024, 2), (4096, 256, 1024, "tn", 1)]:
        name = choice_cache.key_name(key)
        assert choice._parse_key(name) == key
    assert choice_cache.key_name((4096, 256, 1024, "nt", 2)) == "4096x256x1024:nt@2"
    for bad in ["4096x256x1024:xy@2", "4096x256@2", "0x1x2@1", "axbxc@1", "4096x256x1024:nt", "1x2x3:nn@-1"]:
        assert choice._parse_key(bad) is None


def test_small_products_stay_numpy_untimed(monkeypatch, timed):
    monkeypatch.setenv("RNNLAB_BLAS", "auto")
    rng = np.random.default_rng(0)
    a, b = _f32(rng, 100, 64), _f32(rng, 64, 256)          # 1.6 M multiply-adds < GEMM_MIN_MACS
    assert choice.choose_gemm(a, b) == "openblas"
    assert timed == [] and choice.choices()["chosen"] == {}


def test_large_products_timed_once_per_bucket_and_layout(monkeypatch, timed):
    monkeypatch.setenv("RNNLAB_BLAS", "auto")
    monkeypatch.setattr(choice, "_threads", lambda: 2)
    lines = []
    choice.set_log(lines.append)
    try:
        rng = np.random.default_rng(0)
        W = _f32(rng, 256, 1024)
        assert choice.choose_gemm(_f32(rng, 3000, 256), W) == "mkl"
        assert choice.choose_gemm(_f32(rng, 2500, 256), W) == "mkl"   # the same bucket: 4096 rows
        assert timed == [(4096, 256, 1024, "nn")] and len(lines) == 1
        assert "whole-sequence product (4096, 256) x (256, 1024) [nn], 2 BLAS threads: mkl" in lines[0]
        h = _f32(rng, 3000, 256)
        choice.choose_gemm(h.T, _f32(rng, 3000, 1024))                 # a weight gradient: h.T @ dA
        choice.choose_gemm(_f32(rng, 3000, 1024), W.T)                 # an input gradient: dA @ W.T
        assert timed[1:] == [(256, 4096, 1024, "tn"), (4096, 1024, 256, "nt")]
    finally:
        choice.set_log(None)
    assert choice.choices()["chosen"] == {"4096x256x1024:nn@2": "mkl", "256x4096x1024:tn@2": "mkl",
                                          "4096x1024x256:nt@2": "mkl"}
    # neither rows nor columns contiguous: NumPy's, untimed
    assert choice.choose_gemm(_f32(rng, 3000, 512)[:, ::2], W) == "openblas" and len(timed) == 3


def test_the_record_is_used_and_written(monkeypatch, timed, tmp_path):
    record = tmp_path / "choices.json"
    monkeypatch.setenv("RNNLAB_BLAS_CACHE", str(record))
    monkeypatch.setenv("RNNLAB_BLAS", "auto")
    monkeypatch.setattr(choice, "_threads", lambda: 1)
    rng = np.random.default_rng(1)
    a, b = _f32(rng, 5000, 128), _f32(rng, 128, 512)
    assert choice.choose_gemm(a, b) == "mkl" and len(timed) == 1
    assert choice_cache.entries()["8192x128x512:nn@1"]["lib"] == "mkl"
    monkeypatch.setattr(choice, "_cache", {})                      # a later process: read, not timed
    assert choice.choose_gemm(a, b) == "mkl" and len(timed) == 1


def test_preset_restores_both_kinds(monkeypatch, timed):
    monkeypatch.setenv("RNNLAB_BLAS", "auto")
    monkeypatch.setattr(choice, "_threads", lambda: 2)
    taken = choice.preset({"4096x256x1024:nn@2": "openblas", "64x256x1024@2": "mkl", "junk": "mkl",
                           "4096x256x1024:zz@2": "mkl", "8x8x8@1": "cublas"})
    assert taken == 2
    rng = np.random.default_rng(2)
    assert choice.choose_gemm(_f32(rng, 3000, 256), _f32(rng, 256, 1024)) == "openblas"   # restored, not timed
    assert timed == []
    assert choice.choices()["chosen"] == {"64x256x1024@2": "mkl", "4096x256x1024:nn@2": "openblas"}


@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_runs_the_chosen_library(monkeypatch, timed, fake_mkl, accumulate):
    monkeypatch.setenv("RNNLAB_BLAS", "auto")
    rng = np.random.default_rng(3)
    a, b = _f32(rng, 3000, 256).T, _f32(rng, 3000, 1024)           # (256, 3000) @ (3000, 1024), layout tn
    out = _f32(rng, 256, 1024)
    want = out.astype(np.float64) * accumulate + a.astype(np.float64) @ b
    got = choice.gemm(a, b, out, accumulate=accumulate)
    assert got is out and fake_mkl == [((256, 3000), (3000, 1024), 1.0 if accumulate else 0.0)]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-3)
    # small or float64: NumPy's, never the library
    small = choice.gemm(a[:, :10], b[:10])
    np.testing.assert_allclose(small, a[:, :10].astype(np.float64) @ b[:10], rtol=1e-5, atol=1e-4)
    choice.gemm(a.astype(np.float64), b.astype(np.float64))
    assert len(fake_mkl) == 1


def test_explicit_backends(monkeypatch, timed, fake_mkl):
    rng = np.random.default_rng(4)
    a, b = _f32(rng, 7, 5), _f32(rng, 5, 3)
    monkeypatch.setenv("RNNLAB_BLAS", "mkl")                       # every float32 product, untimed
    choice.gemm(a, b)
    assert len(fake_mkl) == 1 and timed == []
    monkeypatch.setattr(choice, "_requested", None)
    monkeypatch.setenv("RNNLAB_BLAS", "openblas")
    choice.gemm(_f32(rng, 5000, 256), _f32(rng, 256, 1024))
    assert len(fake_mkl) == 1 and timed == []


def test_layers_products_go_through_the_choice(monkeypatch, fake_mkl):
    """fast.bf16.mm in float32 (the input projection, weight and input gradients, Linear) is gemm."""
    monkeypatch.setenv("RNNLAB_BLAS", "mkl")
    from rnnlab.layers.linear import Linear

    rng = np.random.default_rng(5)
    lin = Linear(6, 4, seed=0, dtype=np.float32)
    lin.zero_grad()
    x = _f32(rng, 5, 6)
    y, cache = lin.forward(x)
    assert fake_mkl, "Linear.forward's product did not reach the chosen library"
    n = len(fake_mkl)
    lin.backward(np.ones_like(y), cache)
    assert len(fake_mkl) == n + 2          # dW (accumulated) and dx
    assert fake_mkl[n][2] == 1.0
    with pytest.raises(ValueError, match="accumulate needs out"):
        bf16.mm(x, x.T, accumulate=True)


mkl_only = pytest.mark.skipif(not mkl_mod.available(), reason="the mkl extra is not installed")


@mkl_only
@pytest.mark.parametrize("layout", ["nn", "nt", "tn", "tt"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_real_mkl_products(monkeypatch, layout, accumulate):
    monkeypatch.setenv("RNNLAB_BLAS", "mkl")
    rng = np.random.default_rng(6)
    M, K, N = 33, 17, 9
    a = _f32(rng, M, K) if layout[0] == "n" else _f32(rng, K, M).T
    b = _f32(rng, K, N) if layout[1] == "n" else _f32(rng, N, K).T
    out = _f32(rng, M, N)
    want = out.astype(np.float64) * accumulate + a.astype(np.float64) @ b.astype(np.float64)
    choice.gemm(a, b, out, accumulate=accumulate)
    # float32 products of length 17 with values O(4): a few ulp of O(10) results; 1e-5 relative ~ 100 ulp
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)


@mkl_only
def test_real_timing(monkeypatch):
    monkeypatch.setattr(choice, "GEMM_BUDGET_S", 0.0)
    monkeypatch.setattr(choice, "GEMM_ROUNDS", 3)
    t = choice._time_gemm(64, 32, 16, "tn")
    assert set(t) == {"openblas", "mkl"} and all(v > 0 for v in t.values())


def test_a_near_tie_keeps_numpy(monkeypatch):
    """oneMKL must win by GEMM_MARGIN: a 3 % lead (noise on a loaded machine) keeps OpenBLAS."""
    monkeypatch.setenv("RNNLAB_BLAS", "auto")
    monkeypatch.setattr(choice, "_time_gemm", lambda M, K, N, ab: {"openblas": 1.03e-3, "mkl": 1e-3})
    rng = np.random.default_rng(7)
    assert choice.choose_gemm(_f32(rng, 5000, 256), _f32(rng, 256, 1024)) == "openblas"
    monkeypatch.setattr(choice, "_cache", {})
    monkeypatch.setattr(choice, "_time_gemm", lambda M, K, N, ab: {"openblas": 1.2e-3, "mkl": 1e-3})
    assert choice.choose_gemm(_f32(rng, 5000, 256), _f32(rng, 256, 1024)) == "mkl"
