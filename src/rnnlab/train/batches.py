"""Batch sources for the training loop's :class:`~rnnlab.train.task.SourceTask`: fresh random batches
every step, or shuffled epochs over a fixed set. Each keeps its position in ``state()`` so that a
resumed run draws exactly the batches the uninterrupted run would have drawn."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


class RandomBatches:
    """Fresh batches from ``make(rng)`` every step; the position is the generator's state."""

    def __init__(self, make: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]], seed: Any) -> None:
        self.make, self.rng = make, np.random.default_rng(seed)

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        return self.make(self.rng)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class EpochBatches:
    """Shuffled epochs over ``(x, y)``: a fresh permutation per epoch (seeded by ``[seed, epoch]``);
    the last partial batch is dropped. The position is the step count."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int, seed: int) -> None:
        self.x, self.y, self.batch, self.seed = x, y, batch, seed
        self.per_epoch = len(x) // batch
        self.position = 0
        self._order: tuple[int, np.ndarray] | None = None

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        epoch, k = divmod(self.position, self.per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.x)))
        idx = self._order[1][k * self.batch:(k + 1) * self.batch]
        self.position += 1
        return self.x[idx], self.y[idx]

    def state(self) -> dict:
        return {"position": self.position}

    def load(self, state: dict) -> None:
        self.position = int(state["position"])
