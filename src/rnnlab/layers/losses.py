"""Losses: softmax cross-entropy over (B, T, V) or (N, V), and mean-squared error.

Softmax cross-entropy with an optional mask m (1 = real token, 0 = padding),
averaged over the n = sum(m) real positions::

    log p = z - max(z) - log sum exp(z - max(z))      (stable log-softmax)
    L     = -(1/n) sum_{b,t} m[b,t] log p[b, t, y[b,t]]
    dz    = (dL/n) * m * (softmax(z) - onehot(y))

Subtracting the max keeps exp() in [0, 1], so logits of +-1e4 neither
overflow nor lose the gradient. Forward computes e = exp(z - max z) once, in
one (N, V) array, reads log p[y] = (z_y - max z) - log sum e, and keeps
softmax(z) = e / sum e (the same array, divided in place) for backward, which
so needs no second exp: with thousands of classes (the tagger's word LM) the
exp of every logit is most of the loss's time. Under :func:`rnnlab.no_grad`
(evaluation) the probabilities are not kept: log p[y] as above, nothing else.

Mean-squared error over all N entries (or the masked ones)::

    L = (1/n) sum m (yhat - y)^2        dyhat = (2 dL / n) m (yhat - y)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..module import Module, grad_enabled


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _mask_and_count(mask: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray | None, float]:
    if mask is None:
        return None, float(np.prod(shape))
    mask = np.asarray(mask, dtype=dtype)
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} does not match targets {shape}")
    return mask, float(mask.sum())


class CrossEntropyCache(NamedTuple):
    probs: np.ndarray | None       # softmax(z); None under no_grad
    targets: np.ndarray
    mask: np.ndarray | None
    count: float


class SoftmaxCrossEntropy(Module):
    """``forward(logits, targets, mask=None) -> (mean loss in nats, cache)``."""

    def forward(self, logits: np.ndarray, targets: np.ndarray,
                mask: np.ndarray | None = None) -> tuple[float, CrossEntropyCache]:
        targets = np.asarray(targets)
        if logits.shape[:-1] != targets.shape:
            raise ValueError(f"logits {logits.shape} and targets {targets.shape} disagree")
        mask, count = _mask_and_count(mask, targets.shape, logits.dtype)
        e = logits - logits.max(axis=-1, keepdims=True)        # z - max z
        picked = np.take_along_axis(e, targets[..., None], axis=-1)[..., 0]
        total = np.exp(e, out=e).sum(axis=-1, keepdims=True)   # e = exp(z - max z), in place
        picked -= np.log(total[..., 0])
        probs = None
        if grad_enabled():   # softmax(z), kept for backward (no_grad: nothing kept)
            probs = np.divide(e, total, out=e)
        if mask is not None:
            picked = picked * mask
        loss = -picked.sum() / max(count, 1.0)
        return float(loss), CrossEntropyCache(probs, targets, mask, count)

    def backward(self, dloss: float, cache: CrossEntropyCache) -> np.ndarray:
        if cache.probs is None:
            raise RuntimeError("this loss was computed under rnnlab.no_grad(): it kept nothing to backpropagate")
        scale = dloss / max(cache.count, 1.0)
        if cache.mask is None:
            dz = cache.probs * np.asarray(scale, dtype=cache.probs.dtype)
            at_target = np.full(cache.targets.shape + (1,), scale, dtype=dz.dtype)
        else:
            m = cache.mask[..., None] * np.asarray(scale, dtype=cache.probs.dtype)
            dz = cache.probs * m
            at_target = m
        # dz = scale * m * (softmax(z) - onehot(y))
        np.put_along_axis(dz, cache.targets[..., None],
                          np.take_along_axis(dz, cache.targets[..., None], axis=-1) - at_target, axis=-1)
        return dz


class MSECache(NamedTuple):
    diff: np.ndarray
    mask: np.ndarray | None
    count: float


class MSELoss(Module):
    """``forward(pred, target, mask=None) -> (mean squared error, cache)``."""

    def forward(self, pred: np.ndarray, target: np.ndarray,
                mask: np.ndarray | None = None) -> tuple[float, MSECache]:
        if pred.shape != np.shape(target):
            raise ValueError(f"prediction {pred.shape} and target {np.shape(target)} disagree")
        diff = pred - target
        mask, count = _mask_and_count(mask, pred.shape, pred.dtype)
        sq = diff * diff if mask is None else diff * diff * mask
        return float(sq.sum() / max(count, 1.0)), MSECache(diff, mask, count)

    def backward(self, dloss: float, cache: MSECache) -> np.ndarray:
        d = cache.diff * (2.0 * dloss / max(cache.count, 1.0))
        return d if cache.mask is None else d * cache.mask
