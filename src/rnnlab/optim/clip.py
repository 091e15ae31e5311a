"""Gradient clipping (Pascanu, Mikolov & Bengio 2013; min-char-rnn).

Every function accepts any of

* the ``(name, param, grad)`` triples of ``Module.named_parameters()``,
* a plain iterable of gradient arrays,
* an object with ``named_parameters()`` (a Module) or an :class:`Optimizer`.

Gradients are modified in place, so the module/optimizer sees the result.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

# torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing.
_NORM_EPS = 1e-6


def _grad_arrays(source: Any) -> list[np.ndarray]:
    if hasattr(source, "named_parameters"):
        source = source.named_parameters()
    elif hasattr(source, "params") and not isinstance(source, np.ndarray):
        source = source.params  # an Optimizer's triples
    if isinstance(source, np.ndarray):
        raise TypeError("pass an iterable of gradient arrays, not a single array")
    grads = [item[2] if isinstance(item, tuple) else item for item in source]
    for grad in grads:
        if not isinstance(grad, np.ndarray):
            raise TypeError(f"expected gradient arrays, got {type(grad).__name__}")
    return grads


def _norm(grads: list[np.ndarray]) -> float:
    # Sum squares in float64 even for float32 gradients (as torch's CPU
    # kernels accumulate), so a large-but-finite norm does not overflow.
    total = 0.0
    for grad in grads:
        flat = grad.reshape(-1)
        total += float(np.einsum("i,i->", flat, flat, dtype=np.float64, casting="safe"))
    return math.sqrt(total)


def global_grad_norm(grads: Iterable[Any] | Any) -> float:
    """L2 norm of all gradients taken together, as a Python float (may be inf/nan)."""
    return _norm(_grad_arrays(grads))


def clip_grad_norm(grads: Iterable[Any] | Any, max_norm: float) -> float:
    """Rescale all gradients together so that their global L2 norm is <= max_norm.

    Like ``torch.nn.utils.clip_grad_norm_`` the factor is
    ``max_norm / (norm + 1e-6)``, applied only when it is below 1 (so a norm
    within 1e-6 of ``max_norm`` is nudged too). Returns the norm *before*
    clipping. Unlike torch, a non-finite norm leaves the gradients untouched
    (torch would multiply them by 0 or NaN): the caller sees the inf/nan
    return value and can skip the step or lower the learning rate.
    """
    if not max_norm > 0.0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    arrays = _grad_arrays(grads)
    norm = _norm(arrays)
    if not math.isfinite(norm):
        return norm
    scale = max_norm / (norm + _NORM_EPS)
    if scale < 1.0:
        for grad in arrays:
            grad *= scale
    return norm


def clip_grad_value(grads: Iterable[Any] | Any, clip: float) -> None:
    """Clamp every gradient element to [-clip, clip] in place (NaN stays NaN)."""
    if not clip >= 0.0:
        raise ValueError(f"clip must be >= 0, got {clip}")
    for grad in _grad_arrays(grads):
        np.clip(grad, -clip, clip, out=grad)
