"""oneMKL's library handle (ctypes): where libmkl_rt is found, how it is loaded and threaded, and
the operand checks shared by the products of :mod:`rnnlab.blas.mkl` (which re-exports the public
names here; read its docstring for the search order, threading and layouts).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

# CBLAS / oneMKL constants
ROW_MAJOR = 101
NO_TRANS, TRANS = 111, 112
PACKED = 151
A_MATRIX, B_MATRIX = 161, 162
LAYERS = {"INTEL": 0, "SEQUENTIAL": 1, "PGI": 2, "GNU": 3, "TBB": 4}
# Not oneMKL's own default (INTEL): measured on the 2-core development machine (docs/performance.md,
# "oneMKL against OpenBLAS, one step product"), MKL's 2-thread layers ran the step's product slower than one
# thread, and Intel OpenMP's and libgomp's spinning workers slowed OpenBLAS's products (and NumPy's
# element-wise passes) in between. MKL_THREADING_LAYER=INTEL|GNU|TBB overrides.
DEFAULT_LAYER = "SEQUENTIAL"
SONAMES = ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so", "libmkl_rt.dylib", "mkl_rt.dll")

_ALIGN = 64
_F32 = np.dtype(np.float32)


class MKLUnavailable(RuntimeError):
    """libmkl_rt could not be found or loaded (the message says where it was looked for)."""


class _Lib:
    """The loaded library and its typed entry points."""

    def __init__(self, path: str) -> None:
        want = os.environ.get("MKL_THREADING_LAYER", DEFAULT_LAYER).strip().upper() or DEFAULT_LAYER
        if want not in LAYERS:
            raise MKLUnavailable(f"MKL_THREADING_LAYER={want!r} is not one of {', '.join(LAYERS)}")
        if want == "TBB":   # libmkl_tbb_thread needs libtbb.so.12, which the loader does not find beside it
            for name in ("libtbb.so.12", "libtbb.so"):
                if (Path(path).parent / name).exists():
                    ctypes.CDLL(str(Path(path).parent / name), mode=ctypes.RTLD_GLOBAL)
                    break
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            raise MKLUnavailable(f"{path}: {e}") from None
        self.path = path
        self.lib = lib
        self.ilp64 = hasattr(lib, "cblas_sgemm_64")
        sfx = "_64" if self.ilp64 else ""
        I = ctypes.c_int64 if self.ilp64 else ctypes.c_int  # MKL_INT  # noqa: E741
        E, F, P = ctypes.c_int, ctypes.c_float, ctypes.c_void_p                    # enum, float, pointer

        def fn(name: str, restype: Any, *argtypes: Any, optional: bool = False) -> Any:
            f = getattr(lib, name, None)
            if f is None:
                if optional:
                    return None
                raise MKLUnavailable(f"{path} has no {name} (oneMKL too old?)")
            f.restype, f.argtypes = restype, list(argtypes)
            return f

        # Service functions: the C names (MKL_*); the lower-case mkl_* symbols are Fortran's (by reference).
        if not self.ilp64:
            fn("MKL_Set_Interface_Layer", E, E)(0)                  # LP64: 32-bit MKL_INT
        self.layer_code = fn("MKL_Set_Threading_Layer", E, E)(LAYERS[want])   # first call: fixes the layer
        self.layer = {v: k for k, v in LAYERS.items()}.get(self.layer_code, str(self.layer_code))
        self.set_num_threads = fn("MKL_Set_Num_Threads", None, E)
        self.get_max_threads = fn("MKL_Get_Max_Threads", E)
        self.set_dynamic = fn("MKL_Set_Dynamic", None, E)
        self._version_string = fn("MKL_Get_Version_String", None, ctypes.c_char_p, E)

        self.sgemm = fn("cblas_sgemm" + sfx, None, E, E, E, I, I, I, F, P, I, P, I, F, P, I)
        self.sgemm_pack_get_size = fn("cblas_sgemm_pack_get_size" + sfx, ctypes.c_size_t, E, I, I, I)
        self.sgemm_pack = fn("cblas_sgemm_pack" + sfx, None, E, E, E, I, I, I, F, P, I, P)
        self.sgemm_compute = fn("cblas_sgemm_compute" + sfx, None, E, I, I, I, I, I, P, I, P, I, F, P, I)
        self.bf16_gemm = fn("cblas_gemm_bf16bf16f32" + sfx, None, E, E, E, I, I, I, F, P, I, P, I, F, P, I,
                            optional=True)
        self.bf16_pack_get_size = fn("cblas_gemm_bf16bf16f32_pack_get_size" + sfx, ctypes.c_size_t, E, I, I, I,
                                     optional=True)
        self.bf16_pack = fn("cblas_gemm_bf16bf16f32_pack" + sfx, None, E, E, E, I, I, I, P, I, P, optional=True)
        self.bf16_compute = fn("cblas_gemm_bf16bf16f32_compute" + sfx, None, E, I, I, I, I, I, F, P, I, P, I, F,
                               P, I, optional=True)

    def version(self) -> str:
        buf = ctypes.create_string_buffer(256)
        self._version_string(buf, len(buf))
        text = buf.value.decode(errors="replace").strip()
        # "Intel(R) oneAPI Math Kernel Library Version 2026.2-Product Build 20260915 for ..." -> "2026.2"
        if "Version " in text:
            return text.split("Version ", 1)[1].split("-", 1)[0].split(" ", 1)[0]
        return text


_lib: _Lib | None = None
_error: str | None = None


def candidates() -> list[str]:
    """Where libmkl_rt is looked for, in order (files that exist, then bare sonames)."""
    found: list[str] = []

    def add(p: Path) -> None:
        if p.is_file() and str(p) not in found:
            found.append(str(p))

    explicit = os.environ.get("RNNLAB_MKL_LIB")
    if explicit:
        add(Path(explicit))
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        for f in distribution("mkl").files or ():
            if f.name.startswith(("libmkl_rt.", "mkl_rt.")):
                add(Path(str(f.locate())).resolve())
    except (ImportError, PackageNotFoundError):
        pass
    dirs = [Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib"]
    dirs += [Path(d) for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    for d in dirs:
        for name in SONAMES:
            add(d / name)
    lib = ctypes.util.find_library("mkl_rt")
    if lib and lib not in found:
        found.append(lib)
    found += [n for n in SONAMES[:3] if n not in found]
    return found


def load() -> _Lib:
    """The library, loaded on first use; raises :class:`MKLUnavailable` (with the places tried)."""
    global _lib, _error
    if _lib is not None:
        return _lib
    if _error is not None:
        raise MKLUnavailable(_error)
    tried = []
    for path in candidates():
        try:
            _lib = _Lib(path)
            from .threads import forget_libraries

            forget_libraries()      # a new BLAS in the process: its threads count too
            return _lib
        except MKLUnavailable as e:
            tried.append(str(e))
        except OSError as e:
            tried.append(f"{path}: {e}")
    _error = "libmkl_rt not found (pip install -e '.[mkl]' in a checkout); tried: " + "; ".join(tried)
    raise MKLUnavailable(_error)


def available() -> bool:
    """True when libmkl_rt loads (loading it on the first call)."""
    try:
        load()
    except MKLUnavailable:
        return False
    return True


def unavailable_reason() -> str | None:
    """Why :func:`available` is False, or None."""
    try:
        load()
    except MKLUnavailable as e:
        return str(e)
    return None


def version() -> str:
    return load().version()


def library_path() -> str:
    return load().path


def threading_layer() -> str:
    """The threading layer in effect (INTEL, SEQUENTIAL, GNU, TBB)."""
    return load().layer


def set_num_threads(n: int) -> None:
    """MKL's thread count for the whole process (NumPy's OpenBLAS keeps its own)."""
    load().set_num_threads(int(n))


def get_max_threads() -> int:
    return int(load().get_max_threads())


def set_dynamic(flag: bool) -> None:
    """Let MKL use fewer threads than set on small problems (its default: on)."""
    load().set_dynamic(int(bool(flag)))


def describe() -> str:
    lib = load()
    return f"oneMKL {lib.version()} ({lib.layer} threading, {lib.get_max_threads()} threads; {lib.path})"


# --- layouts -----------------------------------------------------------------------------------------

def _operand(x: Any, dtype: Any, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"{name} must be {np.dtype(dtype)} (got {x.dtype}); nothing is converted silently")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (got shape {x.shape}); reshape (T, B, D) to (T*B, D)")
    return x


def _layout(x: np.ndarray, name: str) -> tuple[int, int]:
    """(trans, ld) that hand ``x`` to a row-major BLAS call: NO_TRANS with ld = row stride when
    its rows are contiguous, TRANS with ld = column stride when its columns are (a transposed
    view). Raises ValueError for anything else."""
    r, c = x.shape
    s0, s1 = x.strides
    e = x.itemsize
    if (c <= 1 or s1 == e) and (r <= 1 or (s0 % e == 0 and s0 >= c * e)):
        return NO_TRANS, (s0 // e if r > 1 else max(1, c))
    if (r <= 1 or s0 == e) and (c <= 1 or (s1 % e == 0 and s1 >= r * e)):
        return TRANS, (s1 // e if c > 1 else max(1, r))
    raise ValueError(f"{name} (shape {x.shape}, strides {x.strides}) has neither contiguous rows nor "
                     "contiguous columns; pass np.ascontiguousarray(...) of it")


def _result(out: np.ndarray | None, m: int, n: int, beta: float, name: str = "out") -> np.ndarray:
    if out is None:
        if beta != 0:
            raise ValueError("beta != 0 needs an out array to accumulate into")
        return np.empty((m, n), np.float32)
    if not isinstance(out, np.ndarray) or out.dtype != np.float32:
        raise TypeError(f"{name} must be a float32 NumPy array")
    if out.shape != (m, n):
        raise ValueError(f"{name} has shape {out.shape}, the product is {(m, n)}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def _no_overlap(out: np.ndarray, *inputs: np.ndarray) -> None:
    for x in inputs:
        if np.may_share_memory(out, x):
            raise ValueError("out overlaps an input; BLAS would read what it is writing")


def _trivial(out: np.ndarray, m: int, n: int, k: int, beta: float) -> bool:
    """Empty products done here (BLAS's argument checks reject some of them)."""
    if m == 0 or n == 0:
        return True
    if k == 0:
        if beta == 0:
            out.fill(0.0)
        else:
            out *= np.float32(beta)
        return True
    return False


def _gemm(call: Any, a: np.ndarray, b: np.ndarray, out: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    m, k = a.shape
    n = b.shape[1]
    if _trivial(out, m, n, k, beta):
        return out
    c = out
    tc, ldc = _layout(c, "out")
    if tc == TRANS:                     # F-ordered out: out^T = b^T a^T, row-major
        a, b, c, m, n = b.T, a.T, c.T, n, m
        ldc = _layout(c, "out")[1]
    ta, lda = _layout(a, "a")
    tb, ldb = _layout(b, "b")
    call(ROW_MAJOR, ta, tb, m, n, k, alpha, a.ctypes.data, lda, b.ctypes.data, ldb, beta, c.ctypes.data, ldc)
    return out


def _shapes(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    m, k = a.shape
    k2, n = b.shape
    if k != k2:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not multiply")
    return m, n, k


def _stack(x: np.ndarray, dtype: Any, name: str, inner: tuple[int, int]) -> tuple[int, int, int, int, int]:
    """(base pointer, step stride in bytes, steps, trans, ld) of a (T, r, c) stack whose every x[t]
    has the BLAS layout of x[0], or of a fixed 2-D array (stride 0, steps unbounded)."""
    if not isinstance(x, np.ndarray) or x.dtype != dtype:
        raise TypeError(f"{name} must be a {np.dtype(dtype)} NumPy array")
    if x.ndim == 2:
        if x.shape != inner:
            raise ValueError(f"{name} has shape {x.shape}, expected {inner}")
        t, ld = _layout(x, name)
        return x.ctypes.data, 0, -1, t, ld
    if x.ndim != 3 or x.shape[1:] != inner:
        raise ValueError(f"{name} must be {inner} or a stack (T, *{inner}), got {x.shape}")
    t, ld = _layout(x[0], name)
    return x.ctypes.data, x.strides[0], x.shape[0], t, ld


def _steps_check(steps: list[int]) -> int:
    bounded = [n for n in steps if n >= 0]
    return min(bounded) if bounded else -1
