"""The forward pass without a backward (``rnnlab.no_grad``), feature-major.

Training lays each step out batch-major, (B, G*H), because the weight
gradients are products over (T*B)-row blocks of the steps. Inference has no
weight gradients, so a step can be laid out feature-major, (G*H, B), and the
recurrent product computed as::

    HW_t = W_h^T h_{t-1}         (G*H, H) x (H, B)

instead of ``h_{t-1} W_h``. The arithmetic is the same; OpenBLAS runs this
form faster on these shapes (B = 64, H = 256 and 512 here: 176-195 GFLOP/s
against 126-155, measured in one process). Every array is (T, features, B),
so one step's slab is contiguous:

* XW (T, G*H, B): ``W_x^T x_t`` for all t in one batched product (a token input
  gathers columns of the projected table instead, :mod:`rnnlab.layers.tokens`);
* hs (T+1, H, B): the states; the layer returns a (B, T, H) view of hs[1:].

The per-step functions are the training kernels' steps on transposed arrays
(``forward_step_fm`` in :mod:`rnnlab.fast.lstm` and :mod:`rnnlab.fast.gru`,
compiled twins in :mod:`rnnlab.fast.compiled`); ``tests/fast/test_infer.py``
asserts that this path equals the training forward.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..layers.tokens import Tokens, project_fm


def forward(layer: Any, kernel: Any, x: Any, state0: tuple | None) -> tuple[np.ndarray, tuple, np.ndarray]:
    """``(y, stateT, hs)`` of a :class:`~rnnlab.layers.Recurrent` layer under no_grad: y (B, T, H)
    and hs (T+1, B, H), both views of the feature-major states."""
    cell, ws = layer.cell, layer.workspace
    W_x, W_h, b = cell.params["W_x"], cell.params["W_h"], cell.params["b"]
    scale = kernel.preact_scale(cell.hidden_size, W_x.dtype)
    if scale is not None:
        W_x, W_h, b = (np.multiply(w, scale, out=ws.empty(name, w.shape, w.dtype))
                       for name, w in (("W_x'", W_x), ("W_h'", W_h), ("b'", b)))
    tokens = isinstance(x, Tokens)
    (B, T), H, G = (x.ids.shape if tokens else x.shape[:2]), cell.hidden_size, W_x.shape[1]
    # The same workspace arrays as training uses (same sizes, other shapes): no extra memory.
    XW = ws.empty("XW", (T, B, G), W_x.dtype).reshape(T, G, B)
    if tokens:
        ids = x.ids.T[::-1] if layer.reverse else x.ids.T
        project_fm(ids, x.table, W_x, XW)
    else:
        xf = x.transpose(1, 2, 0)                      # (T, D, B): a view, whatever x's layout
        np.matmul(W_x.T, xf[::-1] if layer.reverse else xf, out=XW)
    state = tuple(s.astype(W_x.dtype, copy=False) for s in state0) if state0 is not None \
        else cell.initial_state(B, W_x.dtype)
    hs = ws.empty("hs", (T + 1, B, H), W_x.dtype).reshape(T + 1, H, B)
    hs[0] = state[0].T
    stateT = kernel.infer(cell, XW, b, W_h, hs, state, ws)
    y = hs[1:][::-1] if layer.reverse else hs[1:]
    return y.transpose(2, 0, 1), stateT, hs.transpose(0, 2, 1)
