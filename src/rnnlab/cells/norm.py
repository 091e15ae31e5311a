"""Batch and layer normalisation over the last axis, and the LSTM that both normalised cells share.

Both normalisations map a (B, F) array ``x`` to ``y = gamma * xhat + beta`` with
``xhat = (x - mu) * s`` and ``s = (var + eps)^(-1/2)``; they differ in which
entries share a ``mu`` and ``var`` (docs/derivations.md, section 13):

* batch norm: feature j over the batch,  mu_j = mean_b x_bj  (shape (F,)),
* layer norm: row b over a group of features, mu_bk = mean_{j in group k} x_bj
  (groups of ``F / groups`` consecutive features, shape (B, groups, 1)).

Backward, given dy, with dxhat = gamma * dy (gamma may vary along the
normalised axis, so it stays inside; section 13.6)::

    dbeta  = sum_b dy            dgamma = sum_b dy * xhat
    dx     = s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))       (*)

the means running over the same entries as the statistics. (*) is section
13.2, step 6, divided through by N: the last two terms are the paths through
mu and var, which couple every entry of a group. When mu and var are fixed
numbers (batch norm in eval mode: population statistics) they carry no
gradient and dx = s * dxhat.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .base import State
from .lstm import LSTMCell, activate_gates, gate_grads

EPS = 1e-5


class NormCache(NamedTuple):
    xhat: np.ndarray     # (B, F) normalised input
    inv_std: np.ndarray  # s: (F,) batch norm, (B, groups, 1) layer norm
    coupled: bool        # statistics computed from x itself, so they carry gradient


def _coupled_grad(dxhat: np.ndarray, xhat: np.ndarray, s: np.ndarray, axis: int) -> np.ndarray:
    """(*) above: the gradient through xhat, mu and var, means over ``axis``."""
    centred = dxhat - dxhat.mean(axis=axis, keepdims=True)
    centred -= xhat * (dxhat * xhat).mean(axis=axis, keepdims=True)
    return s * centred


def _affine(xhat: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None) -> np.ndarray:
    y = xhat * gamma
    if beta is not None:
        y += beta
    return y


def _affine_grads(dy: np.ndarray, xhat: np.ndarray, beta: np.ndarray | None) -> tuple[np.ndarray, Any]:
    return (dy * xhat).sum(axis=0), (dy.sum(axis=0) if beta is not None else None)


# -- batch norm ------------------------------------------------------------------------
def batch_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and *biased* variance over the batch (the ones training normalises with)."""
    mu = x.mean(axis=0)
    return mu, ((x - mu) ** 2).mean(axis=0)


def batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None, mean: np.ndarray, var: np.ndarray,
               coupled: bool, eps: float = EPS) -> tuple[np.ndarray, NormCache]:
    """gamma * (x - mean) / sqrt(var + eps) + beta, feature by feature.

    ``coupled``: mean and var are ``batch_stats(x)`` (training), so the
    backward includes their paths; False for population statistics (eval).
    """
    s = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * s
    return _affine(xhat, gamma, beta), NormCache(xhat, s, coupled)


def batch_norm_backward(dy: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None,
                        cache: NormCache) -> tuple[np.ndarray, np.ndarray, Any]:
    """(dx, dgamma, dbeta); dbeta is None when there is no beta."""
    xhat, s, coupled = cache
    dxhat = dy * gamma
    dx = _coupled_grad(dxhat, xhat, s, axis=0) if coupled else dxhat * s
    return (dx, *_affine_grads(dy, xhat, beta))


# -- layer norm ----------------------------------------------------------------------------
def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None, groups: int = 1,
               eps: float = EPS) -> tuple[np.ndarray, NormCache]:
    """Normalise each row of x (B, F) over ``groups`` equal blocks of its features."""
    B, F = x.shape
    xg = x.reshape(B, groups, F // groups)
    mu = xg.mean(axis=-1, keepdims=True)
    centred = xg - mu
    s = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
    xhat = (centred * s).reshape(B, F)
    return _affine(xhat, gamma, beta), NormCache(xhat, s, True)


def layer_norm_backward(dy: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None,
                        cache: NormCache) -> tuple[np.ndarray, np.ndarray, Any]:
    """(dx, dgamma, dbeta); gamma is per feature, so it multiplies dy before the group means."""
    xhat, s, _ = cache
    B, F = xhat.shape
    shape = (B, s.shape[1], F // s.shape[1])
    dx = _coupled_grad((dy * gamma).reshape(shape), xhat.reshape(shape), s, axis=-1).reshape(B, F)
    return (dx, *_affine_grads(dy, xhat, beta))


# -- the LSTM both normalised cells share ---------------------------------------------------
class NormLSTMStepCache(NamedTuple):
    gates: np.ndarray    # (B, 4H): activated i, f, g, o
    c_prev: np.ndarray   # (B, H)
    tanh_u: np.ndarray   # (B, H): tanh(N_c(c_t))
    norm_x: Any          # normalisation caches of xw, hw and c_t
    norm_h: Any
    norm_c: Any


class NormLSTMCell(LSTMCell):
    """LSTM with normalised input and hidden projections and a normalised cell output.

    Per step (section 13.4), with N one of batch or layer normalisation::

        a   = N_x(xw; gamma_x) + N_h(hw; gamma_h) + b        (b added here, after N)
        c_t = f * c_{t-1} + i * g                             (as LSTMCell)
        h_t = o * tanh(N_c(c_t; gamma_c, beta_c))

    N_x and N_h have no beta: b is the shift (a beta before the sum would only
    duplicate it). Subclasses provide ``normalize(key, t, x)`` and
    ``normalize_backward(key, dy, cache)`` for key in "x", "h", "c".
    """

    abstract = True
    project_bias = False  # b is added after the normalisation, in step_forward
    default_gamma = 1.0

    def __init__(self, input_size: int, hidden_size: int, *, gamma: float | None = None, **kw: Any) -> None:
        super().__init__(input_size, hidden_size, **kw)
        g0 = self.default_gamma if gamma is None else gamma
        dtype, G = self.params["b"].dtype, self.gates * hidden_size
        for key, size in (("x", G), ("h", G), ("c", hidden_size)):
            self.add_param(f"gamma_{key}", np.full(size, g0, dtype=dtype))
        self.add_param("beta_c", np.zeros(hidden_size, dtype=dtype))

    def affine(self, key: str) -> tuple[np.ndarray, np.ndarray | None]:
        return self.params[f"gamma_{key}"], self.params["beta_c"] if key == "c" else None

    def accumulate(self, key: str, dgamma: np.ndarray, dbeta: np.ndarray | None) -> None:
        self.grads[f"gamma_{key}"] += dgamma
        if dbeta is not None:
            self.grads["beta_c"] += dbeta

    def normalize(self, key: str, t: int, x: np.ndarray) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def normalize_backward(self, key: str, dy: np.ndarray, cache: Any) -> np.ndarray:
        raise NotImplementedError

    def step_forward(self, t: int, xw: np.ndarray, hw: np.ndarray, state: State) -> tuple[State, NormLSTMStepCache]:
        h_prev, c_prev = state
        H = self.hidden_size
        act, norm_x = self.normalize("x", t, xw)
        hn, norm_h = self.normalize("h", t, hw)
        act += hn
        act += self.params["b"]
        c = activate_gates(act, c_prev, H)
        u, norm_c = self.normalize("c", t, c)
        tanh_u = np.tanh(u)
        return (act[:, 3 * H:] * tanh_u, c), NormLSTMStepCache(act, c_prev, tanh_u, norm_x, norm_h, norm_c)

    def step_backward(self, dstate: State, cache: NormLSTMStepCache) -> tuple[np.ndarray, np.ndarray, tuple]:
        dh, dc_next = dstate
        H = self.hidden_size
        act, c_prev, tanh_u = cache.gates, cache.c_prev, cache.tanh_u
        f, o = act[:, H:2 * H], act[:, 3 * H:]
        # h_t reaches c_t only through N_c; the carry dc_next does not pass through it.
        dc = self.normalize_backward("c", dh * o * (1.0 - tanh_u * tanh_u), cache.norm_c)
        if dc_next is not None:
            dc += dc_next
        da = gate_grads(act, c_prev, dc, dh * tanh_u, H)
        self.grads["b"] += da.sum(axis=0)
        dxw = self.normalize_backward("x", da, cache.norm_x)
        dhw = self.normalize_backward("h", da, cache.norm_h)
        return dxw, dhw, (None, dc * f)
