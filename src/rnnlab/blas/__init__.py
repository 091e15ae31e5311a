"""Which BLAS runs rnnlab's matrix products: NumPy's (OpenBLAS, the default) or oneMKL (optional).

One variable, ``RNNLAB_BLAS``, read once on first use:

* ``auto`` (the default where the ``mkl`` extra is installed): the recurrent step products of the
  LSTM and GRU kernels (:mod:`rnnlab.blas.choice`) time OpenBLAS against packed oneMKL on the
  model's own step shapes when the model is built, and use the faster; so do the whole-sequence
  products of at least ``choice.GEMM_MIN_MACS`` multiply-adds (input projections, weight and input
  gradients, Linear layers: :func:`rnnlab.blas.choice.gemm`); smaller products stay NumPy's.
* ``openblas`` (or ``numpy``): NumPy's BLAS everywhere.
* ``mkl``: oneMKL for the step products and for :func:`matmul`. It needs
  ``pip install -e '.[mkl]'``; where libmkl_rt cannot be loaded it falls back to NumPy with a
  one-line note on stderr.

:func:`set_backend` changes the general backend at run time; :func:`describe` says which one runs.
A run's ``config.json`` records the choices made (``"blas"``), and ``--precision bf16`` runs the
products in bf16 through oneMKL (:mod:`rnnlab.blas.precision` says where it runs).

* :mod:`rnnlab.blas.mkl`: oneMKL through ctypes: ``sgemm``, ``PackedMatrix``
  (pre-packed float32 or bf16 weights), ``gemm_bf16``, threading.
* :mod:`rnnlab.blas.bf16`: float32 <-> bf16 (``uint16``) in NumPy, round to nearest even.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .bf16 import from_bf16, round_bf16, to_bf16

BACKENDS = ("numpy", "mkl")

_backend: str | None = None      # resolved on first use
_note: str | None = None


def _resolve(requested: str) -> str:
    global _note
    requested = requested.strip().lower() or "numpy"
    # RNNLAB_BLAS=auto|openblas (rnnlab.blas.choice, the step products): general products stay NumPy's
    requested = {"openblas": "numpy", "auto": "numpy"}.get(requested, requested)
    if requested not in BACKENDS:
        _note = f"RNNLAB_BLAS={requested!r} is not one of {', '.join(BACKENDS)}; using NumPy's BLAS"
        print(f"rnnlab: {_note}", file=sys.stderr)
        return "numpy"
    if requested == "mkl":
        from . import mkl

        reason = mkl.unavailable_reason()
        if reason is not None:
            _note = ("RNNLAB_BLAS=mkl but libmkl_rt could not be loaded (pip install -e '.[mkl]' in a checkout); "
                     "using NumPy's BLAS")
            print(f"rnnlab: {_note}", file=sys.stderr)
            return "numpy"
    _note = None
    return requested


def backend() -> str:
    """``"numpy"`` or ``"mkl"``: the backend in effect."""
    global _backend
    if _backend is None:
        _backend = _resolve(os.environ.get("RNNLAB_BLAS", "numpy"))
    return _backend


def set_backend(name: str) -> str:
    """Switch to ``"numpy"`` or ``"mkl"`` (falling back to NumPy, with the note, when MKL is
    missing); returns the backend in effect."""
    global _backend
    if name.strip().lower() not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    _backend = _resolve(name)
    return _backend


def describe() -> str:
    """One line for logs: which BLAS runs the products."""
    if backend() == "mkl":
        from . import mkl

        return "mkl: " + mkl.describe()
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        what = f"{blas['name']} {blas['version']}"
    except Exception:   # older NumPy: no mode="dicts"
        what = "its BLAS"
    from .threads import openblas_kernel

    kernel = openblas_kernel()
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if kernel:
        what += f", kernel {kernel}" + (f" (OPENBLAS_CORETYPE={forced})" if forced else "")
    line = f"numpy: NumPy {np.__version__}, {what}"
    return line + (f" ({_note})" if _note else "")


def native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512_BF16 or AMX-BF16, from
    /proc/cpuinfo); elsewhere oneMKL's bf16 GEMM is emulated in float32 and slower than sgemm."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, beta: float = 0.0) -> np.ndarray:
    """``out = a @ b + beta * out`` for 2-D arrays: oneMKL's sgemm for float32 under the mkl
    backend, else ``np.matmul`` (the same result to float32 rounding)."""
    if backend() == "mkl" and a.dtype == np.float32 and b.dtype == np.float32 and a.ndim == 2 and b.ndim == 2:
        from .mkl import sgemm

        return sgemm(a, b, out, beta=beta)
    if beta == 0 or out is None:
        if beta != 0:
            raise ValueError("beta != 0 needs an out array to accumulate into")
        return np.matmul(a, b, out=out)
    if beta != 1:
        out *= beta
    out += a @ b
    return out


__all__ = ["BACKENDS", "backend", "describe", "from_bf16", "matmul", "native_bf16", "round_bf16", "set_backend",
           "to_bf16"]
