"""Variable-length batches: how right-padded rows map onto the steps of the time loop.

A batch of B rows padded on the right to T positions, row b holding
``lengths[b]`` real positions (1 <= lengths[b] <= T), runs as PyTorch's packed
sequences do: a row's state never reads its padding, its final state is the
state after its own last position, and a reverse layer starts each row at
that row's last token.

:class:`Recurrent` sorts the rows by decreasing length (stable), so that at
step t the rows still running are the first ``n_t`` of the sorted batch::

    order   = argsort(-lengths)         sorted row j is original row order[j]
    L_j     = lengths[order[j]]         non-increasing
    n_t     = #{j : L_j > t}            t = 0 .. S-1,  S = max(lengths) = L_0
    src_t,j = t                         forward:  step t reads position t
            = L_j - 1 - t               reverse:  step t reads position L_j-1-t
                                        (0 where t >= L_j: never read)

The loop then computes rows [:n_t] at step t and copies rows [n_t:] unchanged
(``active`` in :mod:`rnnlab.fast`). Outputs go back to the original rows and
positions, with exact zeros on the padding; the input gradient likewise.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Packing(NamedTuple):
    """Index arrays of one variable-length batch (see the module docstring)."""
    order: np.ndarray    # (B,) sorted row j is original row order[j]
    rank: np.ndarray     # (B,) original row b is sorted row rank[b] (inverse of order)
    active: list         # (S,) ints n_t: rows with length > t, non-increasing, n_0 = B
    live: np.ndarray     # (S, B) bool: step t of sorted row j is real (t < L_j)
    src: np.ndarray      # (S, B) the position that step t of sorted row j reads
    step_of: np.ndarray  # (T, B) the step that position p of original row b came from (0 on padding)
    valid: np.ndarray    # (T, B) bool: position p of original row b is real (p < lengths[b])

    @property
    def steps(self) -> int:
        """S = the longest row: the loop runs S steps, not T."""
        return len(self.active)

    @classmethod
    def build(cls, lengths: np.ndarray, B: int, T: int, reverse: bool) -> "Packing":
        lengths = check_lengths(lengths, B, T)
        order = np.argsort(-lengths, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(B)
        L = lengths[order]
        t = np.arange(int(L[0]))[:, None]
        live = t < L
        src = np.where(live, L - 1 - t if reverse else t, 0)
        p = np.arange(T)[:, None]
        valid = p < lengths
        step_of = np.where(valid, lengths - 1 - p if reverse else p, 0)
        return cls(order, rank, live.sum(axis=1).tolist(), live, src, step_of, valid)

    # -- into the loop's layout: (S, B, .), sorted rows, step order --------------------------
    def gather(self, a: np.ndarray) -> np.ndarray:
        """Batch-first (B, T, ...) -> step-major (S, B, ...): [t, j] = a[order[j], src[t, j]]."""
        return a[self.order, self.src]

    def gather_input(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """:meth:`gather`, cast to ``dtype``, with the padding slots set to 0 (whatever x held
        there, even NaN, never reaches a state nor a weight gradient)."""
        xs = self.gather(x).astype(dtype, copy=False)
        xs[~self.live] = 0
        return xs

    def sort_rows(self, a: np.ndarray) -> np.ndarray:
        """(B, ...) in original row order -> sorted order (a new array)."""
        return np.asarray(a)[self.order]

    # -- back to the caller's layout ----------------------------------------------------------------
    def scatter(self, a: np.ndarray) -> np.ndarray:
        """Step-major (S, B, F) -> batch-first (B, T, F) with zeros on the padding, returned as a
        view of time-major memory (as a recurrent layer's output always is)."""
        out = a[self.step_of, self.rank]
        out[~self.valid] = 0
        return out.transpose(1, 0, 2)

    def unsort_rows(self, a: np.ndarray) -> np.ndarray:
        """(B, ...) in sorted order -> original row order (a new array)."""
        return a[self.rank]


def check_lengths(lengths: np.ndarray, B: int, T: int) -> np.ndarray:
    """``lengths`` as an int64 array (B,), or a ValueError naming what is wrong."""
    a = np.asarray(lengths)
    if a.shape != (B,) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"lengths must be an integer array of shape ({B},), got {a.dtype} {a.shape}")
    if B and (a.min() < 1 or a.max() > T):
        raise ValueError(f"lengths must lie in [1, {T}] (the padded length), got {a.min()}..{a.max()}")
    return a.astype(np.int64, copy=False)
