"""Affine layer over the last axis: works on (B, D) and (B, T, D).

Forward::   y = x W + b             W : (D, K),  b : (K,)
Backward::  dW = x^T dy   db = sum dy   dx = dy W^T   (leading axes flattened)
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import init as initializers
from ..module import DEFAULT_DTYPE, Module


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
        y = x @ self.params["W"]
        if "b" in self.params:
            y += self.params["b"]
        return y, LinearCache(x)

    def backward(self, dout: np.ndarray, cache: LinearCache) -> np.ndarray:
        x2 = cache.x.reshape(-1, self.in_features)
        d2 = dout.reshape(-1, self.out_features)
        self.grads["W"] += x2.T @ d2
        if "b" in self.grads:
            self.grads["b"] += d2.sum(axis=0)
        return (d2 @ self.params["W"].T).reshape(cache.x.shape)
