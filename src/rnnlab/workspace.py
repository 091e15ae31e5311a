"""Arrays kept from one call to the next, so that a training step does not fault in fresh memory.

A training step of a 2-layer LSTM at H=512 allocates about 150 MB of
activations (gates, cell states, gradients). glibc hands blocks that large
straight to and back from the kernel (mmap / munmap), so every step pays for
page faults and for zero-filling the pages: about 7,000 faults and 8-10% of
the step on this machine. A :class:`Workspace` keeps such arrays and hands
the same one back next time.

Reuse is safe by construction: an array is handed out again only when nothing
outside the workspace refers to it any more. A cache, an output the caller
still holds, or any view of the array keeps a reference to it (NumPy views
reference their base), so its reference count says whether it is free. When
it is not, a new array is made and kept instead; the old one lives on with
whoever holds it. Arrays are also kept per thread, so two threads running the
same layer at once never share one. The workspace never changes results, only
where they live.

Where they live matters for one more reason. Large blocks come from mmap,
page-aligned, so every big array starts at the same offset modulo 4 KiB, and
so does every per-step slice of one (a (B, H) step of float32 is a multiple of
4 KiB). A kernel step that streams ten such slices at once then maps them all
to the same few L1 cache sets, which hold 8 lines each: at H = 128 the compiled
LSTM backward step ran 3x slower than with its inputs staggered. So each new
array starts at its own 64-byte-aligned offset within the page (``_stagger``).
"""
from __future__ import annotations

import itertools
import sys
import threading
from typing import Any, Hashable

import numpy as np


class Workspace:
    """``ws.empty(key, shape, dtype)``: like ``np.empty``, but reuses the array last made for ``key``."""

    def __init__(self) -> None:
        self._arrays: dict[Hashable, np.ndarray] = {}
        self._subs: dict[Hashable, Workspace] = {}

    def empty(self, key: Hashable, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        key = (threading.get_ident(), key)  # two threads running the same layer never share an array
        arr = self._arrays.get(key)
        # Free when nothing outside holds the array itself nor any view of it. A view refers
        # to the byte buffer that owns the memory (arr.base: NumPy collapses view chains),
        # not to the array, so both counts are checked. See _calibrate.
        if (arr is not None and sys.getrefcount(arr) <= _FREE[0] and sys.getrefcount(arr.base) <= _FREE[1]
                and arr.shape == tuple(shape) and arr.dtype == dtype):
            return arr
        arr = _stagger(shape, dtype)
        self._arrays[key] = arr
        return arr

    def sub(self, key: Hashable) -> "Workspace":
        """A separate workspace under this one (e.g. one per thread of a split loop)."""
        return self._subs.setdefault(key, Workspace())

    def clear(self) -> None:
        self._arrays.clear()
        self._subs.clear()

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values()) + sum(s.nbytes() for s in self._subs.values())

    # A copied or pickled module starts with an empty workspace: the arrays are scratch, not state.
    def __deepcopy__(self, memo: dict) -> "Workspace":
        return Workspace()

    def __getstate__(self) -> dict:
        return {"_arrays": {}, "_subs": {}}


_PAGE, _LINE = 4096, 64
_next_offset = itertools.count()


def _stagger(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A new array, a view of a byte buffer (its ``base``), starting at the next of 64 cache-line
    offsets within a page (stepping by 5 lines, so that neighbours differ by more than one set)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + _PAGE + _LINE, dtype=np.uint8)
    want = (next(_next_offset) * 5 % (_PAGE // _LINE)) * _LINE
    start = (want - buf.ctypes.data) % _PAGE
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def _calibrate() -> tuple[int, int]:
    """The reference counts of a kept array and of its buffer inside :meth:`Workspace.empty` when
    nobody else holds them: measured the same way, not assumed, because the interpreter's own
    counting differs between Python versions."""
    arrays = {"key": _stagger((1,), np.float64)}
    arr = arrays.get("key")
    assert arr.base.base is None  # the buffer owns the memory: views of arr refer to it
    return sys.getrefcount(arr), sys.getrefcount(arr.base)


_FREE = _calibrate()
