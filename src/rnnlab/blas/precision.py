"""Which precision the matrix products run in: ``fp32`` (the default) or ``bf16``.

``bf16``: the products of the training step and of evaluation take bf16 operands (float32
rounded to nearest even, :mod:`rnnlab.blas.bf16`) and accumulate in float32, through oneMKL's
``cblas_gemm_bf16bf16f32`` (the weights of a time loop's step product converted and packed
once per call of the loop, i.e. once per optimizer step). Master weights, optimizer state and
every element-wise operation stay float32; float64 (gradient checks) is never affected.

It is refused, in one line naming what is missing, where

* the CPU has neither ``avx512_bf16`` nor ``amx_bf16`` in ``/proc/cpuinfo`` (oneMKL would
  emulate bf16 in float32, slower than sgemm: nothing to gain);
* the CPU has them but is not an Intel one (``vendor_id``): oneMKL dispatches its bf16 GEMM by
  vendor and runs a generic path elsewhere. Measured on an AMD EPYC Zen 4 with AVX512_BF16
  (2026-12-06, 1 thread, (1024 x H) by (H x 4H)): oneMKL bf16 25 GFLOP/s, its sgemm 26, while
  torch's bf16 (oneDNN, which does use the instructions) ran 67; the packed per-step bf16 product
  was 1.15-1.55x slower than packed sgemm (docs/performance.md);
* oneMKL cannot be loaded (``pip install 'rnnlab[mkl]'``).

``RNNLAB_BF16_EMULATED=1`` lifts the two CPU refusals (the results are the same, only slower):
for testing bf16's accuracy on any machine.

:func:`use` sets it for a block (the char-LM task wraps training, evaluation and sampling in
it); :func:`current` is what the kernels read (:mod:`rnnlab.fast.bf16`).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16")
CPU_FEATURES = ("avx512_bf16", "amx_bf16")

_current = "fp32"


def _cpuinfo(field: str) -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    return set(_cpuinfo("flags").split())


def cpu_vendor() -> str:
    """``GenuineIntel``, ``AuthenticAMD``, ... from /proc/cpuinfo ("" where it cannot be read)."""
    return _cpuinfo("vendor_id")


def emulation_allowed() -> bool:
    """``RNNLAB_BF16_EMULATED=1``: run bf16 where oneMKL only emulates it (for accuracy tests)."""
    return os.environ.get("RNNLAB_BF16_EMULATED", "").strip().lower() in ("1", "yes", "true", "on")


def unavailable_reason(name: str) -> str | None:
    """Why ``name`` cannot run here (one line naming the flag), or None."""
    if name not in PRECISIONS:
        return f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}"
    if name == "fp32":
        return None
    if not set(CPU_FEATURES) & cpu_flags() and not emulation_allowed():
        return ("--precision bf16 needs a CPU with AVX512_BF16 or AMX-BF16 (/proc/cpuinfo lists neither "
                "avx512_bf16 nor amx_bf16 here; oneMKL would only emulate it, slower than fp32); "
                "use --precision fp32")
    vendor = cpu_vendor()
    if vendor and vendor != "GenuineIntel" and not emulation_allowed():
        return (f"--precision bf16: oneMKL does not use this {vendor} CPU's avx512_bf16 (its bf16 GEMM takes a "
                "generic path off Intel CPUs, no faster than fp32); use --precision fp32 "
                "(RNNLAB_BF16_EMULATED=1 runs it anyway, for accuracy checks)")
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


__all__ = ["CPU_FEATURES", "PRECISIONS", "check", "cpu_flags", "cpu_vendor", "current", "emulation_allowed", "set_precision", "unavailable_reason",
           "use"]
