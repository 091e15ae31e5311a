"""The LSTM's gate arithmetic shared by the training loop (:mod:`rnnlab.fast.lstm`), the
forward-only loop (:mod:`rnnlab.fast.lstm_infer`), the normalised LSTMs and generation
(:mod:`rnnlab.fast.stepping`): the column scale/shift that turn one tanh into the sigmoids,
and the NumPy twins of the compiled forward and backward steps (see :mod:`rnnlab.fast.lstm`
for the equations). A module of its own so that the two loops import it and not each other.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _blocks(a: np.ndarray, H: int) -> tuple[np.ndarray, ...]:
    return a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]


def _per_gate(H: int, values: tuple[float, ...], dtype: Any) -> np.ndarray:
    return np.repeat(np.asarray(values, dtype=dtype), H)


def preact_scale(H: int, dtype: Any) -> np.ndarray:
    """1/2 on the sigmoid gates i, f, o: tanh(a/2) then gives the sigmoid."""
    return _per_gate(H, (0.5, 0.5, 1.0, 0.5), dtype)


def preact_shift(H: int, dtype: Any) -> np.ndarray:
    """0.5 + 0.5 tanh(a/2) on i, f, o; g stays tanh(a)."""
    return _per_gate(H, (0.5, 0.5, 0.0, 0.5), dtype)


def forward_step(a: np.ndarray, hw: np.ndarray, bias: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                 c_prev: np.ndarray, c: np.ndarray, tanh_c: np.ndarray, h: np.ndarray, ig: np.ndarray) -> None:
    """One step in NumPy, for training and generation (compiled twin: ``compiled.lstm_forward``).

    Gates in place in ``a`` after adding ``hw`` (B or 1 rows) and ``bias`` (G,); c = f c_prev + i g
    (``c`` may be ``c_prev``), tanh_c = tanh(c), h = o tanh_c; ``ig`` is scratch.
    """
    H = h.shape[1]
    a += hw
    a += bias
    np.tanh(a, out=a)
    a *= scale
    a += shift
    i, f, g, o = _blocks(a, H)
    np.multiply(f, c_prev, out=c)
    np.multiply(i, g, out=ig)
    c += ig
    np.tanh(c, out=tanh_c)
    np.multiply(o, tanh_c, out=h)


def backward_step(act: np.ndarray, c_prev: np.ndarray, tc: np.ndarray, dh: np.ndarray, dy: np.ndarray,
                  has_dy: bool, dc: np.ndarray, da: np.ndarray, *, M: np.ndarray, K: np.ndarray,
                  deriv: np.ndarray, tmp: np.ndarray) -> None:
    """One step in NumPy (compiled twin: ``compiled.lstm_backward``): fills da from dh_t (+ dy_t
    when ``has_dy``) and dc_t, and turns dc into dc_{t-1}. dh is spent (the caller overwrites it
    with dh_{t-1}); M, K, deriv and tmp as in :func:`backward`."""
    H = dh.shape[1]
    if has_dy:
        dh += dy
    i, f, g, o = _blocks(act, H)
    # dc = dc_next + dh * o * (1 - tanh(c)^2)
    np.multiply(tc, tc, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    tmp *= o
    tmp *= dh
    dc += tmp
    da_i, da_f, da_g, da_o = _blocks(da, H)
    np.multiply(dc, g, out=da_i)
    np.multiply(dc, c_prev, out=da_f)
    np.multiply(dc, i, out=da_g)
    np.multiply(dh, tc, out=da_o)
    np.subtract(M, act, out=deriv)
    deriv *= act
    deriv += K
    da *= deriv
    dc *= f                               # dc_{t-1}
