"""Which precision the matrix products run in: ``fp32`` (the default) or ``bf16``.

``bf16``: the products of the training step and of evaluation take bf16 operands (float32
rounded to nearest even, :mod:`rnnlab.blas.bf16`) and accumulate in float32, through oneMKL's
``cblas_gemm_bf16bf16f32`` (the weights of a time loop's step product converted and packed
once per call of the loop, i.e. once per optimizer step). Master weights, optimizer state and
every element-wise operation stay float32; float64 (gradient checks) is never affected.

It is refused, in one line naming what is missing, where

* the CPU has neither ``avx512_bf16`` nor ``amx_bf16`` in ``/proc/cpuinfo`` (oneMKL would
  emulate bf16 in float32, slower than sgemm: nothing to gain), or
* oneMKL cannot be loaded (``pip install 'rnnlab[mkl]'``).

:func:`use` sets it for a block (the char-LM task wraps training, evaluation and sampling in
it); :func:`current` is what the kernels read (:mod:`rnnlab.fast.bf16`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16")
CPU_FEATURES = ("avx512_bf16", "amx_bf16")

_current = "fp32"


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def unavailable_reason(name: str) -> str | None:
    """Why ``name`` cannot run here (one line naming the flag), or None."""
    if name not in PRECISIONS:
        return f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}"
    if name == "fp32":
        return None
    if not set(CPU_FEATURES) & cpu_flags():
        return ("--precision bf16 needs a CPU with AVX512_BF16 or AMX-BF16 (/proc/cpuinfo lists neither "
                "avx512_bf16 nor amx_bf16 here; oneMKL would only emulate it, slower than fp32); "
                "use --precision fp32")
    from . import mkl

    if not mkl.available():
        return "--precision bf16 needs oneMKL: pip install 'rnnlab[mkl]'"
    if not mkl.has_bf16():
        return f"--precision bf16: {mkl.library_path()} has no bf16 GEMM (oneMKL too old); pip install -U 'rnnlab[mkl]'"
    return None


def check(name: str) -> str:
    """``name`` if it can run here, else :class:`ConfigError` with the one-line reason."""
    reason = unavailable_reason(name)
    if reason is not None:
        raise ConfigError(reason)
    return name


def current() -> str:
    """``fp32`` or ``bf16``: the precision in effect."""
    return _current


def set_precision(name: str) -> str:
    """Switch (checked: refused with :class:`ConfigError` where it cannot run); returns it."""
    global _current
    _current = check(name)
    return _current


@contextmanager
def use(name: str) -> Iterator[str]:
    """Run a block in ``name`` (checked first), restoring the previous precision after."""
    global _current
    previous = _current
    set_precision(name)
    try:
        yield name
    finally:
        _current = previous


__all__ = ["CPU_FEATURES", "PRECISIONS", "check", "cpu_flags", "current", "set_precision", "unavailable_reason",
           "use"]
