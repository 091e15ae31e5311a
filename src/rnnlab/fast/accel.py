"""Optional compiled element-wise steps for the time-loop kernels (numba).

A NumPy time step makes one call, and one pass over memory, per operation: an
LSTM forward step is about 9 passes over (B, H)- and (B, 4H)-sized arrays, its
backward about 15. Here each step is ONE compiled loop over the batch and the
hidden units, reading each input once and writing each output once, in SIMD.
The matrix products stay with NumPy's BLAS; only the element-wise part moves.
The same switch serves three other one-pass loops with NumPy twins: the token
row gather and segment sum (:mod:`rnnlab.layers.tokens`) and the Adam update.

Used when numba is installed (``pip install -e '.[fast]'`` in a checkout) and the dtype is
float32 or float64; numba is imported, and the steps compiled (then cached on
disk), on first use. Otherwise (or with
``RNNLAB_ACCEL=0``, or :func:`set_enabled`) the kernels run their NumPy steps,
which stay as the readable fast path and are tested equal to these.

Numerics:

* float32 ``tanh`` is a rational approximation (Eigen's, degree 13/6, clamped
  at |x| = 7.905), vectorisable where a libm call is not; measured largest
  error against float64 tanh 2.6e-7 absolute, 2.7e-7 relative (about 5 ulp;
  NumPy's float32 tanh: 6e-8 and 1.1e-7). NaN and inf
  propagate as in NumPy (tanh(+-inf) -> +-1 within 3e-7), so the divergence
  guard still sees them.
* float64 uses libm's ``tanh``: float64 checks (gradient checks, the parity
  tests against the reference loop) see the same function as NumPy.
* Only FMA contraction is allowed (``fastmath={"contract"}``), never the
  no-NaN/no-inf assumptions, which would turn a NaN into a finite number.
"""
from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np


def _jit_disabled() -> bool:
    """``NUMBA_DISABLE_JIT`` set (as numba reads it: a nonzero integer): numba would then run the steps
    as interpreted Python, several times slower than their NumPy twins, so they count as absent."""
    try:
        return int(os.environ.get("NUMBA_DISABLE_JIT", "0") or 0) != 0
    except ValueError:
        return False


_AVAILABLE = importlib.util.find_spec("numba") is not None and not _jit_disabled()  # imported when first used
_enabled = os.environ.get("RNNLAB_ACCEL", "1").strip().lower() not in ("0", "off", "false", "no")
_compiled: Any = None


def available() -> bool:
    """True when numba is installed and its JIT not disabled (NUMBA_DISABLE_JIT)."""
    return _AVAILABLE


def enabled() -> bool:
    return _enabled and _AVAILABLE


def set_enabled(flag: bool) -> None:
    """Use (True) or bypass (False) the compiled steps; without numba they are never used."""
    global _enabled
    _enabled = bool(flag)


@contextmanager
def using(flag: bool) -> Iterator[None]:
    """Run a block with the compiled steps on (True; only where numba is installed) or off (False)."""
    previous = _enabled
    set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(previous)


def describe() -> str:
    """One line for logs: which element-wise steps the kernels run."""
    if not _AVAILABLE:
        if _jit_disabled():
            return "NumPy (NUMBA_DISABLE_JIT is set: numba would run the compiled ones as interpreted Python)"
        return "NumPy (pip install -e '.[fast]' in a checkout for the compiled ones)"
    if not _enabled:
        return "NumPy (the compiled ones are switched off: RNNLAB_ACCEL=0)"
    from importlib.metadata import version

    return f"compiled (numba {version('numba')})"


def steps(dtype: Any) -> Any:
    """The compiled step functions for ``dtype`` (a namespace), or None: use NumPy's."""
    if not enabled():
        return None
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        return None
    global _compiled
    if _compiled is None:
        from . import compiled   # numba's import and the (cached) compilation happen here, once

        _compiled = compiled
    return _compiled


__all__ = ["available", "describe", "enabled", "set_enabled", "steps", "using"]
