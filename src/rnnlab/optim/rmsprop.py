"""RMSprop (Tieleman & Hinton 2012), optionally centered (Graves 2013).

Matches ``torch.optim.RMSprop``: ``eps`` is added *after* the square root,
weight decay is the L2 form and momentum accumulates ``g / avg``.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .base import Optimizer, ParamTriple, check_nonneg, ema_


class RMSprop(Optimizer):
    hyper = ("alpha", "eps", "momentum", "centered", "weight_decay")

    def __init__(
        self,
        params: Iterable[ParamTriple],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        check_nonneg(alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay)
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.centered = bool(centered)
        self.weight_decay = float(weight_decay)
        self._allocate()

    def slots(self) -> tuple[str, ...]:
        return ("square_avg",) + (("grad_avg",) if self.centered else ()) + (("momentum",) if self.momentum else ())

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        d = self._decayed_grad(name, param, grad, self.weight_decay)
        avg = self._work(name, param, 1)
        square = np.multiply(d, d, out=avg)
        ema_(self.state["square_avg"][name], square, self.alpha, tmp=square)
        if self.centered:
            mean = ema_(self.state["grad_avg"][name], d, self.alpha, tmp=avg)
            np.multiply(mean, mean, out=avg)
            np.subtract(self.state["square_avg"][name], avg, out=avg)
            # The variance is >= 0 in exact arithmetic; rounding can dip below.
            np.maximum(avg, 0.0, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(self.state["square_avg"][name], out=avg)
        avg += self.eps
        d /= avg
        if self.momentum:
            buf = self.state["momentum"][name]
            buf *= self.momentum
            buf += d
            d = np.multiply(buf, self.lr, out=d)
        else:
            d *= self.lr
        param -= d

