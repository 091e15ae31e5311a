"""Weight initializers.

Every function takes a shape (or size) and a ``numpy.random.Generator`` and
returns a new float64 array; layers cast to their dtype. Gate blocks are
initialised one block at a time (see :func:`per_gate`) so that, for example,
each of the LSTM's four recurrent matrices is orthogonal on its own.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Init = Callable[[tuple[int, ...], np.random.Generator], np.ndarray]


def child_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds drawn from ``seed`` (``SeedSequence.spawn``), one per sub-layer."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None) -> np.ndarray:
    return np.zeros(shape)


def normal(std: float) -> Init:
    """N(0, std^2) — e.g. ``normal(0.01)`` as in min-char-rnn, 0.001 for IRNN inputs."""

    def init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.normal(0.0, std, size=shape)

    return init


def uniform(bound: float) -> Init:
    def init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-bound, bound, size=shape)

    return init


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    # Weights are stored (fan_in, fan_out): y = x @ W.
    if len(shape) != 2:
        raise ValueError(f"Glorot init needs a 2-D shape, got {shape}")
    return shape[0], shape[1]


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _fans(shape)
    bound = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return rng.normal(0.0, gain * np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def orthogonal(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al. 2014)."""
    rows, cols = shape
    a = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the distribution uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return gain * q[:rows, :cols]


def scaled_identity(scale: float = 1.0) -> Init:
    """``scale * I``: the IRNN recurrent matrix (Le, Jaitly & Hinton 2015)."""

    def init(shape: tuple[int, ...], rng: np.random.Generator | None = None) -> np.ndarray:
        rows, cols = shape
        return scale * np.eye(rows, cols)

    return init


def per_gate(init: Init, gates: int) -> Init:
    """Apply ``init`` to each of ``gates`` column blocks of a (fan_in, gates*H) matrix."""

    def wrapped(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        rows, cols = shape
        if cols % gates:
            raise ValueError(f"{cols} columns do not split into {gates} gates")
        block = cols // gates
        return np.concatenate([init((rows, block), rng) for _ in range(gates)], axis=1)

    return wrapped


def forget_bias(bias: np.ndarray, hidden_size: int, value: float = 1.0) -> np.ndarray:
    """Set the forget-gate slice of an LSTM bias laid out (i, f, g, o) to ``value``."""
    bias[hidden_size:2 * hidden_size] = value
    return bias


INITIALIZERS: dict[str, Init] = {
    "zeros": zeros,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "orthogonal": orthogonal,
    "identity": scaled_identity(1.0),
}
