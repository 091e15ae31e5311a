"""Adagrad (Duchi et al. 2011): per-coordinate steps scaled by the root of the
running sum of squared gradients.

Two conventions exist for where ``eps`` goes:

* ``torch.optim.Adagrad`` (the default here): ``p -= lr * g / (sqrt(G) + eps)``;
* Karpathy's min-char-rnn: ``p -= lr * g / sqrt(G + eps)`` — pass
  ``eps_inside_sqrt=True`` to reproduce it (it used eps = 1e-8, lr = 0.1).

The two differ only while ``G`` is tiny (near eps**2 resp. eps). Note that
the default ``eps`` is min-char-rnn's 1e-8 while torch's is 1e-10: pass
``eps=1e-10`` for torch's defaults (lr aside: torch uses 1e-2).
``lr_decay`` and ``initial_accumulator_value`` behave as in torch.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .base import Optimizer, ParamTriple, check_nonneg


class Adagrad(Optimizer):
    hyper = ("eps", "lr_decay", "weight_decay", "initial_accumulator_value", "eps_inside_sqrt")

    def __init__(
        self,
        params: Iterable[ParamTriple],
        lr: float = 0.1,
        eps: float = 1e-8,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(params, lr)
        check_nonneg(eps=eps, lr_decay=lr_decay, weight_decay=weight_decay,
                     initial_accumulator_value=initial_accumulator_value)
        self.eps = float(eps)
        self.lr_decay = float(lr_decay)
        self.weight_decay = float(weight_decay)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.eps_inside_sqrt = bool(eps_inside_sqrt)
        self._allocate()

    def slots(self) -> tuple[str, ...]:
        return ("sum",)

    def _init_slot(self, slot: str, param: np.ndarray) -> np.ndarray:
        return np.full_like(param, self.initial_accumulator_value)

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        d = self._decayed_grad(name, param, grad, self.weight_decay)
        total = self.state["sum"][name]
        denom = self._work(name, param, 1)
        total += np.multiply(d, d, out=denom)
        if self.eps_inside_sqrt:
            np.sqrt(np.add(total, self.eps, out=denom), out=denom)
        else:
            np.sqrt(total, out=denom)
            denom += self.eps
        clr = self.lr / (1.0 + (self.step_count - 1) * self.lr_decay)
        d /= denom
        d *= clr
        param -= d
