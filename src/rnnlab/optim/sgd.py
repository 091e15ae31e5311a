"""Stochastic gradient descent with optional (Nesterov) momentum.

Follows ``torch.optim.SGD``: weight decay is the L2 form (added to the
gradient), and on the first step the momentum buffer is set to the gradient
itself rather than decayed from zero (this only matters with dampening).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .base import Optimizer, ParamTriple, check_nonneg


class SGD(Optimizer):
    hyper = ("momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        params: Iterable[ParamTriple],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        check_nonneg(momentum=momentum, weight_decay=weight_decay, dampening=dampening)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self._allocate()

    def slots(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum else ()

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        d = self._decayed_grad(name, param, grad, self.weight_decay)
        if self.momentum:
            buf = self.state["momentum"][name]
            if self.step_count == 1:
                np.copyto(buf, d)
            else:
                buf *= self.momentum
                buf += d if not self.dampening else (1.0 - self.dampening) * d
            if self.nesterov:
                # d <- d + momentum * buf, computed without a temporary
                param -= np.multiply(d, self.lr, out=d)
                d = np.multiply(buf, self.momentum * self.lr, out=d)
                param -= d
                return
            d = np.multiply(buf, self.lr, out=d)
        else:
            d *= self.lr
        param -= d
