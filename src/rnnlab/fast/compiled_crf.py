"""The compiled twin of :meth:`rnnlab.layers.CRF.decode`'s NumPy Viterbi (numba): one loop per row.

The NumPy decode runs a Python step per position over the whole batch: a (B, K, K) candidate
array, ``argmax`` over it, ``take_along_axis``, ``where``, then a Python back-trace per row;
for tagging batches (K = 45 BIOES tags on CoNLL-2000, B = 16-128) that step overhead was about a
quarter of ``tag predict``'s time (docs/tagging.md, "Speed against PyTorch"). Here each row runs
its own length, and the back-trace is compiled too.

Same operations, same operands, same order as the NumPy loop, so the paths are identical (the
arithmetic is two additions in the dtype NumPy would use, no FMA can form: ``contract`` only
fuses a multiply with an add): ``cand[i, j] = delta[i] + A[i, j]``; the best ``i`` is the first
maximum (NumPy's ``argmax``: the first NaN if there is one, else the first of tied maxima);
``delta'[j] = cand[best, j] + em[t, j]``; the last tag is the first maximum of ``delta + e``.
``tests/layers/test_crf_viterbi.py`` checks equality on ties, ``-inf`` (constraints), NaN and
mixed lengths.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .compiled_base import _jit


@_jit
def _first_max(v: Any) -> int:
    """NumPy's argmax of a 1-D array: the first NaN, else the first of the largest values."""
    best, at = v[0], 0
    if best != best:
        return 0
    for i in range(1, v.shape[0]):
        x = v[i]
        if x != x:
            return i
        if x > best:
            best, at = x, i
    return at


@_jit
def _row(em: Any, b: int, n: int, A: Any, s: Any, e: Any, delta: Any, best: Any, back: Any, paths: Any,
         exact: bool) -> bool:
    """Row b's path into paths[b, :n]. ``exact`` False: the loop over j innermost, branch-free (it
    vectorises), the first maximum by a strict ``>`` over increasing i, which is NumPy's argmax
    when no candidate is NaN; a candidate ``delta[i] + A[i, j]`` can be NaN only where delta[i] is
    NaN or +inf (A was checked by the caller), so that is checked per step, and True is returned
    (the caller then reruns the row with ``exact``: per-j :func:`_first_max`, NumPy's NaN rule)."""
    K = A.shape[0]
    inf = np.inf
    cur = 0
    for j in range(K):
        delta[0, j] = s[j] + em[0, b, j]
    for t in range(1, n):
        nxt = 1 - cur
        d, bk, out = delta[cur], back[t], delta[nxt]
        if exact:
            for j in range(K):
                for i in range(K):
                    best[i] = d[i] + A[i, j]
                k = _first_max(best)
                bk[j] = k
                out[j] = best[k] + em[t, b, j]
        else:
            for i in range(K):
                if d[i] != d[i] or d[i] == inf:
                    return True
            for j in range(K):
                best[j] = d[0] + A[0, j]
                bk[j] = 0
            for i in range(1, K):
                di = d[i]
                for j in range(K):
                    c = di + A[i, j]
                    take = c > best[j]
                    best[j] = c if take else best[j]
                    bk[j] = i if take else bk[j]
            for j in range(K):
                out[j] = best[j] + em[t, b, j]
        cur = nxt
    for j in range(K):
        best[j] = delta[cur, j] + e[j]
    k = _first_max(best)
    paths[b, n - 1] = k
    for t in range(n - 1, 0, -1):
        k = back[t, k]
        paths[b, t - 1] = k
    return False


@_jit
def viterbi(em: Any, A: Any, s: Any, e: Any, lengths: Any, exact: bool, delta: Any, best: Any, back: Any,
            paths: Any) -> None:
    """em (T, B, K) any strides; A (K, K), s, e (K,); lengths (B,) in [1, T]; ``exact``: A holds a
    NaN or +inf (every row then takes NumPy's NaN rule). Scratch: delta (2, K), best (K,) in the
    dtype NumPy's sums have; back (T, K) int32. Out: paths (B, T) int64, row b's tags in
    [:lengths[b]] (the rest untouched)."""
    for b in range(em.shape[1]):
        if _row(em, b, lengths[b], A, s, e, delta, best, back, paths, exact):
            _row(em, b, lengths[b], A, s, e, delta, best, back, paths, True)


def decode(em: np.ndarray, A: np.ndarray, s: np.ndarray, e: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
    """The best path of every row as lists (``em`` (T, B, K), time-major like the NumPy loop's)."""
    T, B, K = em.shape
    dtype = np.result_type(s, em, A, e)
    delta = np.empty((2, K), dtype)
    best = np.empty(K, dtype)
    back = np.zeros((T, K), np.int32)
    paths = np.zeros((B, T), np.int64)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    A = np.ascontiguousarray(A)
    exact = bool(np.isnan(A).any() or np.isposinf(A).any())
    viterbi(em, A, s, e, lengths, exact, delta, best, back, paths)
    return [paths[b, :int(n)].tolist() for b, n in enumerate(lengths)]
