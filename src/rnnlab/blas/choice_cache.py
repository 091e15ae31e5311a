"""The per-machine record of ``RNNLAB_BLAS=auto``'s choices, so that fresh runs are repeatable.

:mod:`rnnlab.blas.choice` times OpenBLAS against packed oneMKL the first time a step-product shape
is asked for. Timed afresh in every process, two runs of the same command could pick different
libraries (the two are often within a few per cent of each other, and a busy machine tips the
balance), and OpenBLAS and MKL round differently (about 1e-8 relative): the runs would then
differ. So a choice, once timed, is kept in a small JSON file and reused by every later process
on the same machine:

* where: ``$RNNLAB_BLAS_CACHE`` if set (a file path; ``off``, ``0`` or ``none`` keeps nothing and
  times in every process, as before), else ``$XDG_CACHE_HOME/rnnlab/blas-choices.json`` or
  ``~/.cache/rnnlab/blas-choices.json``;
* per machine: entries live under a fingerprint of what decides the timing (the CPU model and its
  vector flags, NumPy's and its BLAS's versions, ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` where
  set, oneMKL's version and threading layer), so a home
  folder shared by several machines keeps one record each, and an upgrade times again;
* per shape and thread count, as in memory (``"BxKxN@threads"`` for a step product,
  ``"MxKxN:ab@threads"`` for a whole-sequence one, ``ab`` its operands' layouts), with the two timings;
* written atomically (:mod:`rnnlab.io.atomic`), merged with what another process wrote meanwhile;
  a file that does not parse, or entries that do not, are ignored (one note) and replaced on the
  next write; a folder that cannot be written to only costs the timing next time.

``rnnlab blas`` shows the record for this machine; ``rnnlab blas --clear`` forgets it (timing
again on next use), e.g. after changing the machine's power or thread settings.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterator

ENV = "RNNLAB_BLAS_CACHE"
FORMAT = 1
_OFF = {"off", "0", "none", "no", "false"}
FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
         "amx_int8")

_machine: str | None = None
_warned: set[str] = set()


def path() -> Path | None:
    """The record's file, or None where ``$RNNLAB_BLAS_CACHE`` turns it off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnlab" / "blas-choices.json"


def _cpu() -> str:
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = " ".join(value.split())
                elif key == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return f"{model} [{' '.join(f for f in FLAGS if f in flags)}]"


def machine() -> str:
    """One line naming what decides which library is faster here (computed once per process)."""
    global _machine
    if _machine is None:
        import numpy as np

        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            numpy_blas = f"{blas['name']} {blas['version']}"
        except Exception:   # older NumPy: no mode="dicts"
            numpy_blas = "its BLAS"
        try:
            from . import mkl

            mkl_what = f"oneMKL {mkl.version()} {mkl.threading_layer()}"
        except Exception:
            mkl_what = "no oneMKL"
        _machine = f"{_cpu()}; NumPy {np.__version__} {numpy_blas}{_openblas_settings()}; {mkl_what}"
    return _machine


def _openblas_settings() -> str:
    """The environment variables that change OpenBLAS's kernel or its blocking (read when it loads):
    with ``OPENBLAS_CORETYPE=Haswell`` on an AVX-512 CPU its products run 1.4-1.9x slower than with
    the AVX-512 kernel it picks itself, so choices timed under one setting do not hold under the other."""
    return "".join(f" {k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.get(k))


def _note(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"rnnlab: {message}", file=sys.stderr)


def _read(file: Path) -> dict[str, Any]:
    """The whole record (every machine), ``{}`` where there is none or it does not parse."""
    try:
        data = json.loads(file.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
        _note(f"ignoring the BLAS choice record {file} ({type(e).__name__}); it is rewritten on the next choice "
              f"(set {ENV}=off to keep none)")
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("machines"), dict):
        _note(f"ignoring the BLAS choice record {file} (not a format-{FORMAT} record); it is rewritten on the "
              f"next choice")
        return {}
    return data


def _entries(data: dict[str, Any]) -> dict[str, Any]:
    mine = data.get("machines", {}).get(machine(), {})
    return mine if isinstance(mine, dict) else {}


def key_name(key: tuple) -> str:
    """``"BxKxN@threads"`` for a step product (B, K, N, threads); ``"MxKxN:ab@threads"`` for a
    whole-sequence product (M, K, N, layouts, threads)."""
    if len(key) == 5:
        M, K, N, layout, n = key
        return f"{M}x{K}x{N}:{layout}@{n}"
    B, K, N, n = key
    return f"{B}x{K}x{N}@{n}"


def lookup(key: tuple) -> str | None:
    """The library recorded on this machine for a key of :func:`key_name`'s, or None."""
    file = path()
    if file is None:
        return None
    entry = _entries(_read(file)).get(key_name(key))
    lib = entry.get("lib") if isinstance(entry, dict) else None
    return lib if lib in ("openblas", "mkl") else None


@contextlib.contextmanager
def _locked(file: Path) -> Iterator[None]:
    """Hold ``file``'s sibling ``.lock`` while reading, merging and replacing it, so two processes
    recording at once keep both entries (best effort: without fcntl, or where the lock file cannot
    be made, the write is still atomic, only a concurrent entry may be timed again later)."""
    try:
        import fcntl
        file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(file.with_name(f".{file.name}.lock"), "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write(file: Path, data: dict[str, Any]) -> None:
    from ..io.atomic import atomic_write

    with atomic_write(file) as handle:
        handle.write(json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))


def store(key: tuple, lib: str, times: dict[str, float]) -> bool:
    """Record a choice for this machine (merged into the file as it is now); False where the file
    cannot be written (the choice then stays in this process only)."""
    file = path()
    if file is None:
        return False
    entry = {"lib": lib, **{f"{k}_us": round(v * 1e6, 2) for k, v in sorted(times.items())},
             "timed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        with _locked(file):
            data = _read(file) or {"format": FORMAT, "machines": {}}
            data["machines"][machine()] = {**_entries(data), key_name(key): entry}
            _write(file, data)
    except OSError as e:
        _note(f"cannot write the BLAS choice record {file} ({e.strerror or e}); choices are timed in every "
              f"process (set {ENV} to a writable file, or {ENV}=off)")
        return False
    return True


def entries() -> dict[str, Any]:
    """This machine's record: ``{"BxKxN@threads": {"lib": ..., "openblas_us": ..., "mkl_us": ..., ...}}``."""
    file = path()
    return {} if file is None else dict(_entries(_read(file)))


def clear() -> int:
    """Forget this machine's choices (other machines' stay); returns how many were forgotten."""
    file = path()
    if file is None or not file.exists():
        return 0
    with _locked(file):
        data = _read(file)
        forgotten = len(_entries(data))
        if forgotten:
            del data["machines"][machine()]
            _write(file, data)
    return forgotten


__all__ = ["ENV", "clear", "entries", "key_name", "lookup", "machine", "path", "store"]
