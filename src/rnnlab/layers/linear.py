"""Affine layer over the last axis: works on (B, D) and (B, T, D).

Forward::   y = x W + b             W : (D, K),  b : (K,)
Backward::  dW = x^T dy   db = sum dy   dx = dy W^T   (leading axes flattened)
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import init as initializers
from ..fast import bf16, parallel
from ..module import DEFAULT_DTYPE, Module, grad_enabled
from .layout import is_time_major_view


class LinearCache(NamedTuple):
    x: np.ndarray


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 seed: int | np.random.Generator | None = 0, dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        rng = np.random.default_rng(seed)
        self.add_param("W", initializers.glorot_uniform((in_features, out_features), rng).astype(dtype))
        if bias:
            self.add_param("b", np.zeros(out_features, dtype=dtype))

    @property
    def output_size(self) -> int:
        return self.out_features

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, LinearCache]:
        x2, time_major = _rows(x)
        # bf16 operands under --precision bf16; forward only, rows split over threads (fast.parallel)
        y = bf16.mm(x2, self.params["W"]) if grad_enabled() else parallel.forward_mm(x2, self.params["W"])
        if "b" in self.params:
            y += self.params["b"]
        return _unrows(y, x.shape, time_major), LinearCache(x)

    def backward(self, dout: np.ndarray, cache: LinearCache) -> np.ndarray:
        x2, time_major = _rows(cache.x)
        d2 = (dout.transpose(1, 0, 2) if time_major else dout).reshape(-1, self.out_features)
        bf16.mm(x2.T, d2, self.grads["W"], accumulate=True)
        if "b" in self.grads:
            self.grads["b"] += d2.sum(axis=0)
        return _unrows(bf16.mm(d2, self.params["W"].T), cache.x.shape, time_major)


def _rows(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """x as a 2-D (rows, D) array, and whether its rows are in time-major order.

    A recurrent layer's output is a batch-first (B, T, H) *view* of time-major
    memory; flattening it batch-first would copy it, and a 3-D product would run
    B small GEMMs. Taking the rows in memory order (t, b) costs nothing, and the
    result is handed back as a batch-first view of the same order.
    """
    if is_time_major_view(x):
        return x.transpose(1, 0, 2).reshape(-1, x.shape[2]), True
    return x.reshape(-1, x.shape[-1]), False


def _unrows(y2: np.ndarray, x_shape: tuple, time_major: bool) -> np.ndarray:
    if time_major:
        B, T = x_shape[0], x_shape[1]
        return y2.reshape(T, B, -1).transpose(1, 0, 2)
    return y2.reshape(x_shape[:-1] + (y2.shape[-1],))
