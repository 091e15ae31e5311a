"""oneMKL through ctypes: float32 GEMM, pre-packed weights and bf16 products for NumPy arrays.

Optional: ``pip install -e '.[mkl]'`` in a checkout (the ``mkl`` wheel puts ``libmkl_rt``
in ``<prefix>/lib``). Nothing here is imported by the rest of rnnlab unless
``RNNLAB_BLAS=mkl`` asks for it (:mod:`rnnlab.blas`); without the library,
:func:`available` is False and every routine raises :class:`MKLUnavailable`.

Where the library is looked for, in order: ``$RNNLAB_MKL_LIB`` (a file), the
files of the installed ``mkl`` distribution, ``sys.prefix/lib`` and
``sys.base_prefix/lib``, ``$LD_LIBRARY_PATH``, ``ctypes.util.find_library``,
and last the bare soname (the dynamic loader's own search).

Threading is fixed when the library is loaded, before any other MKL call:
the layer is ``$MKL_THREADING_LAYER`` if set (INTEL, SEQUENTIAL, GNU or TBB),
else :data:`DEFAULT_LAYER`, SEQUENTIAL (one thread: see its comment); with a
threaded layer the thread count is MKL's default (the physical cores, or
``$MKL_NUM_THREADS``) until :func:`set_num_threads`.

Every routine uses oneMKL's 64-bit-integer entry points (``cblas_sgemm_64``
...) where the library has them, so ``$MKL_INTERFACE_LAYER`` cannot change
the integer size under us; with an older library (no ``_64`` names) the
interface layer is set to LP64 at load time.

Layouts. An operand may be any 2-D array whose rows or columns are contiguous:
a C-ordered array, a row block of one (``hs[t]``, ``x.reshape(T*B, D)``), or
the transposed view of either (``W_h.T``, ``h.reshape(n, H).T``): it is handed
to BLAS as a transposed operand with its leading dimension, never copied.
Anything else (a negative stride, every other column, float64) is refused
with a ValueError or TypeError naming the fix; nothing is copied silently.
``out`` may be C- or F-ordered (F: the product is computed as its transpose),
must not overlap an input, and with ``beta == 0`` is not read (a NaN in it does
not propagate, as in BLAS).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .bf16 import to_bf16
from .mkl_lib import (  # noqa: F401  (the library handle, threading and checks: public here too)
    _ALIGN, _F32, A_MATRIX, B_MATRIX, DEFAULT_LAYER, LAYERS, NO_TRANS, PACKED, ROW_MAJOR, SONAMES, TRANS, MKLUnavailable,
    _gemm, _layout, _no_overlap, _operand, _result, _shapes, _stack, _steps_check, _trivial, available, candidates,
    describe, get_max_threads, library_path, load, set_dynamic, set_num_threads, threading_layer, unavailable_reason,
    version)


def sgemm_stepper(a: np.ndarray, b: np.ndarray, out: np.ndarray, *, beta: float = 0.0) -> Any:
    """A time loop's product with the argument checks done once: ``run(t)`` computes
    ``out[t] = a[t] @ b + beta * out[t]`` (``out`` or ``a`` may also be one fixed 2-D array, used
    at every t). ``a[t]`` and ``out[t]`` must have the layout of ``a[0]``, ``out[0]`` (a slice of one
    C array does). The arrays must stay alive and in place while ``run`` is used. Costs one
    ctypes call per step instead of :func:`sgemm`'s per-call checks and pointer look-ups."""
    lib = load()
    b = _operand(b, np.float32, "b")
    k, n = b.shape
    m = a.shape[-2]
    pa, sa, na, ta, lda = _stack(a, np.float32, "a", (m, k))
    pc, sc, nc, tc, ldc = _stack(out, np.float32, "out", (m, n))
    if tc != NO_TRANS:
        raise ValueError("out must have contiguous rows")
    _no_overlap(out, a, b)
    tb, ldb = _layout(b, "b")
    pb, T, f, beta = b.ctypes.data, _steps_check([na, nc]), lib.sgemm, float(beta)
    if min(m, n, k) < 1:
        raise ValueError("sgemm_stepper needs m, n, k >= 1")

    def run(t: int) -> None:
        if not 0 <= t < T and T >= 0:
            raise IndexError(f"step {t} outside 0..{T - 1}")
        f(ROW_MAJOR, ta, tb, m, n, k, 1.0, pa + t * sa, lda, pb, ldb, beta, pc + t * sc, ldc)

    run.arrays = (a, b, out)     # the memory the pointers point into stays alive with run
    return run


def sgemm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, alpha: float = 1.0,
          beta: float = 0.0, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """``out = alpha * op(a) @ op(b) + beta * out`` in float32 (op = transpose when asked; passing
    ``a.T`` is the same thing). Returns ``out`` (allocated when None and beta == 0)."""
    lib = load()
    if (out is not None and not (trans_a or trans_b) and type(a) is np.ndarray and type(b) is np.ndarray
            and type(out) is np.ndarray and a.dtype == _F32 and b.dtype == _F32 and out.dtype == _F32
            and a.ndim == 2 and b.ndim == 2 and out.ndim == 2):
        # the common call, all three C-ordered: the same checks, fewer of them
        fa, fb, fc = a.flags, b.flags, out.flags
        m, k = a.shape
        n = b.shape[1]
        if (fa.c_contiguous and fb.c_contiguous and fc.c_contiguous and fc.writeable and b.shape[0] == k
                and out.shape == (m, n) and m and n and k
                and not np.may_share_memory(out, a) and not np.may_share_memory(out, b)):
            lib.sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, alpha, a.ctypes.data, k, b.ctypes.data, n, beta,
                      out.ctypes.data, n)
            return out
    return _checked_gemm(lib.sgemm, np.float32, a, b, out, alpha, beta, trans_a, trans_b)


def gemm_bf16(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, alpha: float = 1.0,
              beta: float = 0.0, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """bf16 x bf16 -> float32: ``a``, ``b`` are bf16 bit patterns (``uint16``, see
    :func:`rnnlab.blas.bf16.to_bf16`), the products accumulate and land in float32 ``out``."""
    lib = load()
    if lib.bf16_gemm is None:
        raise MKLUnavailable(f"{lib.path} has no cblas_gemm_bf16bf16f32")
    return _checked_gemm(lib.bf16_gemm, np.uint16, a, b, out, alpha, beta, trans_a, trans_b)


def _checked_gemm(f: Any, dtype: Any, a: np.ndarray, b: np.ndarray, out: np.ndarray | None, alpha: float,
                  beta: float, trans_a: bool, trans_b: bool) -> np.ndarray:
    """:func:`sgemm`'s and :func:`gemm_bf16`'s general path: the operands checked (``dtype``, layout) and
    transposed as asked, ``out`` checked or allocated, no overlap, then the library's ``f``."""
    a = _operand(a, dtype, "a")
    b = _operand(b, dtype, "b")
    a, b = (a.T if trans_a else a), (b.T if trans_b else b)
    m, n, _ = _shapes(a, b)
    out = _result(out, m, n, beta)
    _no_overlap(out, a, b)
    return _gemm(f, a, b, out, float(alpha), float(beta))


def has_bf16() -> bool:
    """True when the library has the bf16 GEMMs (plain and packed)."""
    lib = load()
    return lib.bf16_gemm is not None and lib.bf16_compute is not None


class PackedMatrix:
    """A (K, N) weight packed once into MKL's internal format, as the B operand of many products
    ``out = a @ W (+ beta * out)`` with ``a`` of exactly ``m`` rows (the packed format depends on
    m, n, k; pack one per row count, e.g. the batch size B for h W_h, T*B for x W_x).

    ``precision="f32"``: ``cblas_sgemm_pack``/``compute``, ``a`` float32.
    ``precision="bf16"``: the weight is rounded to bf16 (nearest even) and packed with
    ``cblas_gemm_bf16bf16f32_pack``; ``a`` must then be bf16 (``uint16``), the result float32.

    The packed copy does not follow the source: after the weights change (once per optimizer
    step) call :meth:`repack` (same array, or a new one of the same shape). ``W`` may be any
    BLAS layout, e.g. ``W_h.T`` for the backward product ``dA W_h^T``. Pack and compute with
    the same MKL thread count (oneMKL's advice); :attr:`threads` records the packing's.
    """

    def __init__(self, W: np.ndarray, m: int, *, precision: str = "f32", alpha: float = 1.0) -> None:
        lib = load()
        if precision not in ("f32", "bf16"):
            raise ValueError(f"precision must be 'f32' or 'bf16', got {precision!r}")
        if precision == "bf16" and not has_bf16():
            raise MKLUnavailable(f"{lib.path} has no packed bf16 GEMM")
        self.precision = precision
        self.alpha = float(alpha)
        self.m = int(m)
        self.k, self.n = self._check_source(W, None).shape
        if self.m < 1 or self.k < 1 or self.n < 1:
            raise ValueError(f"PackedMatrix needs m, k, n >= 1 (got {self.m}, {self.k}, {self.n})")
        get_size = lib.sgemm_pack_get_size if precision == "f32" else lib.bf16_pack_get_size
        self.nbytes = int(get_size(B_MATRIX, self.m, self.n, self.k))
        self._buf = np.empty(self.nbytes + _ALIGN, np.uint8)     # never moves: MKL's packed data must not
        self._ptr = self._buf.ctypes.data + (-self._buf.ctypes.data) % _ALIGN
        self._bf16 = np.empty((self.k, self.n), np.uint16) if precision == "bf16" else None
        self.packs = 0
        self.threads = 0
        self.repack(W)

    def _check_source(self, W: np.ndarray, shape: tuple | None) -> np.ndarray:
        if self.precision == "bf16" and isinstance(W, np.ndarray) and W.dtype == np.uint16:
            W = _operand(W, np.uint16, "W")
        else:
            W = _operand(W, np.float32, "W")
        if shape is not None and W.shape != shape:
            raise ValueError(f"W has shape {W.shape}; this packed matrix is {shape} (make a new PackedMatrix)")
        _layout(W, "W")
        return W

    @property
    def shape(self) -> tuple[int, int]:
        return self.k, self.n

    def repack(self, W: np.ndarray | None = None) -> None:
        """Pack the weights again (from ``W``, or from the array given last): after every update."""
        lib = load()
        if W is not None:
            self._source = self._check_source(W, (self.k, self.n))
        W = self._source
        if self.precision == "f32":
            t, ld = _layout(W, "W")
            lib.sgemm_pack(ROW_MAJOR, B_MATRIX, t, self.m, self.n, self.k, self.alpha, W.ctypes.data, ld, self._ptr)
        else:
            if W.dtype == np.float32:
                W = to_bf16(W, out=self._bf16)
            t, ld = _layout(W, "W")
            lib.bf16_pack(ROW_MAJOR, B_MATRIX, t, self.m, self.n, self.k, W.ctypes.data, ld, self._ptr)
        self.packs += 1
        self.threads = int(lib.get_max_threads())

    def compute(self, a: np.ndarray, out: np.ndarray | None = None, *, beta: float = 0.0) -> np.ndarray:
        """``out = a @ W (+ beta * out)``; ``a`` (m, K) float32 (bf16: uint16), any BLAS layout;
        ``out`` (m, N) float32 with contiguous rows."""
        lib = load()
        a = _operand(a, np.float32 if self.precision == "f32" else np.uint16, "a")
        if a.shape != (self.m, self.k):
            raise ValueError(f"a has shape {a.shape}; this packed matrix takes ({self.m}, {self.k}) "
                             "(the packed format is made for m rows)")
        out = _result(out, self.m, self.n, beta)
        _no_overlap(out, a)
        ta, lda = _layout(a, "a")
        tc, ldc = _layout(out, "out")
        if tc != NO_TRANS:
            raise ValueError("out must have contiguous rows for a packed product (the packed operand is B)")
        if self.precision == "f32":
            lib.sgemm_compute(ROW_MAJOR, ta, PACKED, self.m, self.n, self.k, a.ctypes.data, lda, self._ptr,
                              self.n, float(beta), out.ctypes.data, ldc)
        else:
            lib.bf16_compute(ROW_MAJOR, ta, PACKED, self.m, self.n, self.k, self.alpha, a.ctypes.data, lda,
                             self._ptr, self.n, float(beta), out.ctypes.data, ldc)
        return out

    def stepper(self, a: np.ndarray, out: np.ndarray, *, beta: float = 0.0) -> Any:
        """``run(t)``: ``out[t] = a[t] @ W + beta * out[t]`` with the checks done once (see
        :func:`sgemm_stepper`), e.g. ``P.stepper(hs, hw)`` for ``hs[t] @ W_h`` over a forward
        pass. A :meth:`repack` in between is fine (the packed buffer stays where it is)."""
        lib = load()
        dtype = np.float32 if self.precision == "f32" else np.uint16
        m, n, k = self.m, self.n, self.k
        pa, sa, na, ta, lda = _stack(a, dtype, "a", (m, k))
        pc, sc, nc, tc, ldc = _stack(out, np.float32, "out", (m, n))
        if tc != NO_TRANS:
            raise ValueError("out must have contiguous rows for a packed product (the packed operand is B)")
        _no_overlap(out, a)
        T, pb, beta = _steps_check([na, nc]), self._ptr, float(beta)
        if self.precision == "f32":
            f = lib.sgemm_compute

            def run(t: int) -> None:
                if not 0 <= t < T and T >= 0:
                    raise IndexError(f"step {t} outside 0..{T - 1}")
                f(ROW_MAJOR, ta, PACKED, m, n, k, pa + t * sa, lda, pb, n, beta, pc + t * sc, ldc)
        else:
            f, alpha = lib.bf16_compute, self.alpha

            def run(t: int) -> None:
                if not 0 <= t < T and T >= 0:
                    raise IndexError(f"step {t} outside 0..{T - 1}")
                f(ROW_MAJOR, ta, PACKED, m, n, k, alpha, pa + t * sa, lda, pb, n, beta, pc + t * sc, ldc)
        run.arrays = (a, out, self)  # type: ignore[attr-defined]
        return run


__all__ = ["DEFAULT_LAYER", "MKLUnavailable", "PackedMatrix", "available", "candidates", "describe",
           "gemm_bf16", "get_max_threads", "has_bf16", "library_path", "load", "set_dynamic", "set_num_threads",
           "sgemm", "sgemm_stepper", "threading_layer", "unavailable_reason", "version"]
