"""Weight averaging for the one training loop (``LoopConfig.average``).

An exponential moving average of the weights, updated after every accepted step::

    d_n   = min(decay, (1 + n) / (10 + n))      n = updates averaged before this one
    avg  <- avg - (1 - d_n) * (avg - w)         (avg starts as the initial weights)

The warm-up of ``d_n`` (TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) keeps the
average from being dominated by the random initial weights early in a run. Training never reads
the average: the weights, the optimizer and every generator follow exactly the path they follow
without it. At each evaluation the trainer scores the current weights *and* the averaged ones
(:meth:`WeightAverage.applied`), and ``best.npz`` keeps whichever set wins on validation. The
average and its count live in every checkpoint (``average/<name>``), so a resumed run continues
it bit for bit.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

PREFIX = "average/"


class WeightAverage:
    """The running average of ``params`` (the optimizer's ``(name, param, grad)`` triples)."""

    def __init__(self, params: Sequence[tuple[str, np.ndarray, Any]], decay: float) -> None:
        self.params = [(name, p) for name, p, _ in params]
        self.decay = float(decay)
        self.count = 0
        self.avg = {name: p.copy() for name, p in self.params}
        self._tmp = {name: np.empty_like(p) for name, p in self.params}

    def rate(self) -> float:
        """The decay ``d_n`` of the next update."""
        return min(self.decay, (1.0 + self.count) / (10.0 + self.count))

    def update(self) -> None:
        """Fold the current weights in (after an optimizer step)."""
        keep = self.rate()
        for name, p in self.params:
            avg, tmp = self.avg[name], self._tmp[name]
            np.subtract(avg, p, out=tmp)
            tmp *= avg.dtype.type(1.0 - keep)
            avg -= tmp
        self.count += 1

    def reset(self) -> None:
        """Start again from the current weights (after the guard restored older ones)."""
        for name, p in self.params:
            self.avg[name][...] = p
        self.count = 0

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in place of the current ones inside the block, restored after it
        (bit for bit, even when the block raises)."""
        saved = {name: p.copy() for name, p in self.params}
        try:
            for name, p in self.params:
                p[...] = self.avg[name]
            yield
        finally:
            for name, p in self.params:
                p[...] = saved[name]

    # -- checkpoints ------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        return {PREFIX + name: value for name, value in self.avg.items()}

    def load(self, arrays: dict[str, np.ndarray], count: int) -> None:
        """Restore from a checkpoint; one saved without an average (the option turned on at
        resume) starts it from the current weights."""
        if not any(k.startswith(PREFIX) for k in arrays):
            self.reset()
            return
        for name, _ in self.params:
            self.avg[name][...] = arrays[PREFIX + name]
        self.count = int(count)
