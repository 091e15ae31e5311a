"""rnnlab.blas.choice: RNNLAB_BLAS parsing, the per-shape choice, and that both libraries give the product."""
import numpy as np
import pytest

from rnnlab.blas import choice


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(choice, "_requested", None)
    monkeypatch.setattr(choice, "_cache", {})


def test_openblas_and_unknown_name(monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_BLAS", "openblas")
    assert choice.requested() == "openblas"
    monkeypatch.setattr(choice, "_requested", None)
    monkeypatch.setenv("RNNLAB_BLAS", "cublas")
    assert choice.requested() == "openblas"
    assert "RNNLAB_BLAS='cublas' is not one of auto, openblas, mkl, exact" in capsys.readouterr().err
    with pytest.raises(ValueError, match="RNNLAB_BLAS must be one of"):
        choice.set_requested("cublas")


def test_without_mkl_default_is_openblas(monkeypatch, capsys):
    monkeypatch.setattr(choice, "mkl_loadable", lambda: False)
    monkeypatch.delenv("RNNLAB_BLAS", raising=False)
    assert choice.requested() == "openblas"
    monkeypatch.setattr(choice, "_requested", None)
    monkeypatch.setenv("RNNLAB_BLAS", "mkl")
    assert choice.requested() == "openblas"
    assert "libmkl_rt could not be loaded" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["openblas", "mkl", "auto"])
def test_stepper_is_the_product(name, monkeypatch):
    if name != "openblas" and not choice.mkl_loadable():
        pytest.skip("the mkl extra is not installed")
    monkeypatch.setenv("RNNLAB_BLAS", name)
    lines = []
    choice.set_log(lines.append)
    try:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((3, 5, 7), dtype=np.float32)
        W = rng.standard_normal((7, 12), dtype=np.float32)
        out = np.empty((5, 12), np.float32)
        run = choice.stepper(a, W, out)
        for t in range(3):
            run(t)
            # float32 products of length 7 vs float64: ~7 * 2^-24 relative of values O(3); rtol/atol 1e-5 ~ 20x.
            np.testing.assert_allclose(out, a[t].astype(np.float64) @ W, rtol=1e-5, atol=1e-5)
    finally:
        choice.set_log(None)
    if name == "auto":   # timed once for this shape, logged once, recorded
        assert len(lines) == 1 and "step product (5, 7) x (7, 12)" in lines[0]
        chosen = choice.choices()
        assert chosen["requested"] == "auto" and list(chosen["chosen"].values())[0] in ("openblas", "mkl")
        choice.stepper(a, W, out)
        assert len(lines) == 1


def test_float64_stays_numpy(monkeypatch):
    monkeypatch.setattr(choice, "_requested", "mkl")
    a, W, out = np.ones((2, 3, 4)), np.ones((4, 5)), np.empty((3, 5))
    choice.stepper(a, W, out)(1)
    assert (out == 4).all()
