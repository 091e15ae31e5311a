"""One guarded update at a time, for tasks that learn as data arrives (the anomaly detector's
``online`` kind): the one loop's optimizer, gradient clipping and divergence guard, without its
epochs, evaluations and checkpoints, because such a task interleaves its own work (scoring each
row before it is learnt) with single updates.

The task gives ``forward_backward(model, batch) -> loss`` (as :class:`~rnnlab.train.task.Task`
does: gradients accumulated into ``model.grads``); :meth:`OnlineLearner.update` zeroes the
gradients, calls it, clips (``clip`` > 0: global norm), asks the :class:`~rnnlab.train.guard.Guard`
and, if the step is sound, takes the optimizer step. An unsound step (non-finite loss or gradient;
a gradient norm ``explode_factor`` times its recent median) raises :class:`DivergenceError` naming
the update and the reason, with the task's hint. With ``clip=0`` and the default guard (no
explosion test) a finite run is exactly optimizer steps on the task's gradients.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..module import Module
from ..optim import clip_grad_norm, global_grad_norm, make_optimizer
from .guard import DivergenceError, Guard


class OnlineLearner:
    def __init__(self, model: Module, optimizer: str = "adam", *, lr: float = 1e-3, clip: float = 0.0,
                 explode_factor: float = math.inf, hint: str = "", **optimizer_kw: Any) -> None:
        self.model = model
        self.optimizer = make_optimizer(optimizer, model.named_parameters(), lr=lr, **optimizer_kw)
        self.clip = float(clip)
        self.guard = Guard("abort", explode_factor=explode_factor)
        self.hint = hint
        self.steps = 0

    def update(self, forward_backward: Callable[[Module, Any], float], batch: Any) -> float:
        """One guarded step on ``batch``; returns the loss."""
        self.model.zero_grad()
        # overflow is the guard's to detect and name (below), not NumPy's to warn about
        with np.errstate(over="ignore", invalid="ignore"):
            loss = float(forward_backward(self.model, batch))
        params = self.optimizer.params
        norm = clip_grad_norm(params, self.clip) if self.clip else global_grad_norm(params)
        reason = self.guard.verdict(loss, norm)
        if reason is not None:
            raise DivergenceError(f"online learning diverged at update {self.steps + 1}: {reason}"
                                  + (f"; {self.hint}" if self.hint else ""))
        self.guard.accept(norm)
        self.optimizer.step()
        self.steps += 1
        return loss


__all__ = ["OnlineLearner"]
