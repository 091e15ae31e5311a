"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019).

Matches ``torch.optim.Adam`` / ``AdamW``: bias-corrected moments, ``eps`` added
after dividing the root of the second moment by its bias correction, and
optional AMSGrad (the running maximum of the second moment). ``Adam``'s
weight decay is the L2 form (added to the gradient, so it is rescaled by the
adaptive denominator); ``AdamW`` shrinks the parameters directly by
``lr * weight_decay`` before the Adam step ("decoupled" weight decay).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ..fast import accel
from .base import Optimizer, ParamTriple, check_nonneg, ema_


class Adam(Optimizer):
    hyper = ("beta1", "beta2", "eps", "weight_decay", "amsgrad")
    decoupled = False

    def __init__(
        self,
        params: Iterable[ParamTriple],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr)
        beta1, beta2 = betas
        check_nonneg(eps=eps, weight_decay=weight_decay)
        for key, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{key} must be in [0, 1), got {beta}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.amsgrad = bool(amsgrad)
        self._allocate()

    @property
    def betas(self) -> tuple[float, float]:
        return self.beta1, self.beta2

    def slots(self) -> tuple[str, ...]:
        return ("m", "v") + (("v_max",) if self.amsgrad else ())

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        compiled = self._compiled(param, grad)
        if compiled is not None:   # one pass instead of about twelve (rnnlab.fast.accel)
            m, v = self.state["m"][name], self.state["v"][name]
            compiled.adam_update(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
                                 self.lr, self.beta1, self.beta2, self.eps, self.weight_decay,
                                 self.decoupled, self.step_count)
            return
        if self.decoupled:
            d = self._decayed_grad(name, param, grad, 0.0)
            if self.weight_decay:
                param *= 1.0 - self.lr * self.weight_decay
        else:
            d = self._decayed_grad(name, param, grad, self.weight_decay)
        m, v = self.state["m"][name], self.state["v"][name]
        ema_(m, d, self.beta1, tmp=self._work(name, param, 1))
        square = np.multiply(d, d, out=d)
        ema_(v, square, self.beta2, tmp=square)
        if self.amsgrad:
            v = np.maximum(self.state["v_max"][name], v, out=self.state["v_max"][name])
        # Python floats keep float32 parameters in float32 (NEP 50).
        bias1 = 1.0 - self.beta1 ** self.step_count
        bias2 = 1.0 - self.beta2 ** self.step_count
        denom = np.sqrt(v, out=d)
        denom /= math.sqrt(bias2)
        denom += self.eps
        update = np.divide(m, denom, out=d)
        update *= self.lr / bias1
        param -= update


    def _compiled(self, param: np.ndarray, grad: np.ndarray) -> Any:
        """The compiled update for this parameter, or None (AMSGrad, or arrays it cannot take)."""
        if self.amsgrad or not (param.flags.c_contiguous and grad.flags.c_contiguous and grad.dtype == param.dtype):
            return None
        return accel.steps(param.dtype)


class AdamW(Adam):
    decoupled = True

    def __init__(
        self,
        params: Iterable[ParamTriple],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
