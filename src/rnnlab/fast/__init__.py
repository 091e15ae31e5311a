"""Fused time-loop kernels: the fast path of :class:`rnnlab.layers.Recurrent`.

The *reference* implementation of a recurrent layer is the generic loop in
:mod:`rnnlab.layers.recurrent` calling a cell's readable ``step_forward`` /
``step_backward``. For every registered cell (LSTM and GRU in ``lstm.py`` and
``gru.py``; tanh RNN and IRNN in ``rnn.py``; BN-LSTM and LN-LSTM in
``bnlstm.py`` and ``lnlstm.py``) this package holds a second implementation of
the same equations that runs several times faster in plain NumPy, because it

* keeps every array in a :class:`~rnnlab.workspace.Workspace` and writes
  with ``out=`` (no allocation and no page faults inside the loop, nor from
  one training step to the next),
* evaluates all gate nonlinearities of a step with ONE ``tanh`` over the
  whole gate block, using ``sigmoid(a) = 0.5 + 0.5 * tanh(a / 2)``; the
  halving is folded into the weights once per sequence (:attr:`Kernel.preact_scale`),
  which is exact in binary floating point,
* computes gate derivatives as full-width products instead of four slices,
* multiplies by a contiguous copy of ``W_h^T`` in backward (a transposed view
  makes BLAS slower on these small products),
* stores ``dxw`` once when it equals ``dhw`` (LSTM).

Both implementations stay; ``tests/fast`` asserts they agree (float64, to
round-off) and the gradient checks run through the fast path, which is the
default. A kernel is used only for its *exact* cell class: a subclass that
overrides the step functions (a variant cell, a test's broken cell) falls
back to the reference loop automatically.

A kernel is an object with::

    preact_scale(H, dtype) -> (G*H,) array or None
        column scale the loop applies to W_x, b and W_h before the loop
    forward(cell, XW, b, W_h, hs, state0, ws, keep=True) -> (stateT, steps)
        XW (T, B, G*H) scaled input products x W_x, without the bias: the
        kernel adds the scaled bias b (G*H,) in its steps and computes the
        gates in place in XW (so XW is part of the cache); hs (T+1, B, H)
        with hs[0] set, filled by the kernel; W_h scaled; ws a
        :class:`~rnnlab.workspace.Workspace` for the kernel's other arrays;
        steps: a list of the cell's own per-step caches (views), so that
        the reference backward can consume them too. keep=False (under
        :func:`rnnlab.no_grad`): keep one step's intermediates, return
        steps=None (the LSTM runs a separate forward-only loop,
        :mod:`rnnlab.fast.lstm_infer`; a kernel with ``READS_TOKEN_ROWS``
        then also takes token input as a ``lstm_infer.TokenRows``, the
        (V, G) projected table and the ids, instead of a gathered XW).
    backward(cell, dyt, dstate, steps, W_h, chunk, ws) -> iterator of (t0, t1, dXW, dHW)
        BPTT in blocks of ``chunk`` steps, the last block first: dXW, dHW
        (t1 - t0, B, G*H) are the gradients of steps t0..t1-1 (possibly the
        same array, and reused for the next block: the loop does the weight
        products of a block before asking for the next). dyt (T, B, H) or
        None; dstate is a list of owned arrays, overwritten in place, that
        holds dstate_0 at the end.

Variable lengths (``Recurrent.forward(x, state0, lengths)``, rnnlab.layers.packing):
a kernel that sets the module attribute ``SUPPORTS_ACTIVE = True`` takes an
extra keyword ``active`` in both calls (Recurrent falls back to the reference
loop for a kernel without it, and never passes ``active`` to one)::

    forward(..., keep=True, active=None)   backward(..., ws, active=None)
        active: None (every row at every step, the unchanged fast path) or a
        sequence of T ints n_t with 1 <= n_t <= B. Step t computes rows
        [:n_t] only, on C-contiguous row slices (XW[t, :n], hs[t, :n], ...),
        and copies the state of rows [n_t:]: hs[t+1, n_t:] = hs[t, n_t:] (and
        c for the LSTM), so a finished row keeps its final state to hs[T] and
        stateT. The step caches then hold the n_t computed rows. Backward
        differentiates rows [:n_t] of step t as usual; rows [n_t:] of dXW and
        dHW are set to 0 and their dstate rows are left untouched (the
        gradient of a copy passes through), and dyt rows [n_t:] are never
        read. Recurrent sorts rows by decreasing length, so n_t is
        non-increasing and n_0 = B, but a kernel must not rely on it.

The element-wise part of each kernel step is a small function with a compiled
twin in :mod:`rnnlab.fast.accel` (numba, optional), used when numba is installed.

Generation steps one character at a time through :mod:`rnnlab.fast.stepping`
(fused single-step runners for the same two cells).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from ..cells import BNLSTMCell, GRUCell, IRNNCell, LNLSTMCell, LSTMCell, RNNCell
from . import bnlstm, gru, lnlstm, lstm, rnn

KERNELS: dict[type, Any] = {LSTMCell: lstm, GRUCell: gru, RNNCell: rnn, IRNNCell: rnn,
                            BNLSTMCell: bnlstm, LNLSTMCell: lnlstm}

_enabled = True


def kernel_for(cell: Any) -> Any:
    """The fused kernel for exactly this cell class, or None (use the reference loop)."""
    if not _enabled:
        return None
    return KERNELS.get(type(cell))


def enabled() -> bool:
    return _enabled


def set_enabled(flag: bool) -> None:
    """Switch the fused kernels on or off globally (off = reference loop everywhere)."""
    global _enabled
    _enabled = bool(flag)


@contextmanager
def reference_only() -> Iterator[None]:
    """Run a block with the fast path disabled: ``with reference_only(): layer.forward(x)``."""
    previous = _enabled
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


__all__ = ["KERNELS", "enabled", "kernel_for", "reference_only", "set_enabled"]
