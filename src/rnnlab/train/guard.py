"""Divergence guard: no NaN reaches the weights or a checkpoint, and the user learns why.

After every backward pass the trainer asks :meth:`Guard.check` whether the
step is sound: a finite loss, a finite global gradient norm, and a gradient
norm not wildly above its recent history. If not, the policy decides:

* ``abort``   – stop with a :class:`DivergenceError` that explains the cause;
* ``skip``    – drop this update and carry on;
* ``backoff`` – drop the update, restore the last good weights and optimizer
  state, reset the carried hidden state, lower the learning rate, carry on.

The explanation names the layer and time step where the hidden state first
became non-finite or largest, how large it was, and what to try.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any, NamedTuple

import numpy as np

from ..errors import RnnlabError


class DivergenceError(RnnlabError):
    """Training diverged and the guard policy is ``abort``."""


class Blowup(NamedTuple):
    layer: str
    step: int          # time step within the sequence (0-based)
    max_abs: float     # largest |h| in that layer over the sequence
    nonfinite: bool


def hidden_max(rnn_cache: Any) -> float:
    """Largest |h| over all layers and steps (nan if any is non-finite): a cheap per-step check."""
    peak = 0.0
    for layer_cache in rnn_cache.layers:
        for c in ([layer_cache] if hasattr(layer_cache, "hs") else [layer_cache.fwd, layer_cache.bwd]):
            h = c.hs[1:]
            m = max(float(h.max()), -float(h.min()))  # = max |h| without a temporary |h| array
            peak = m if not math.isfinite(m) else max(peak, m)
            if not math.isfinite(peak):
                return peak
    return peak


def hidden_report(rnn_cache: Any) -> list[Blowup]:
    """Per layer: where |h| was largest (or first non-finite) in a stack's forward cache."""
    out = []
    for k, layer_cache in enumerate(rnn_cache.layers):
        directions = [("", layer_cache)] if hasattr(layer_cache, "hs") else \
            [(".fwd", layer_cache.fwd), (".bwd", layer_cache.bwd)]
        for suffix, c in directions:
            hs = c.hs[1:]  # (T, B, H)
            bad = ~np.isfinite(hs).all(axis=(1, 2))
            mags = np.abs(np.nan_to_num(hs, nan=0.0, posinf=np.inf, neginf=np.inf)).max(axis=(1, 2))
            if bad.any():
                t = int(np.argmax(bad))
                out.append(Blowup(f"layer {k}{suffix}", t, float("inf"), True))
            else:
                t = int(np.argmax(mags))
                out.append(Blowup(f"layer {k}{suffix}", t, float(mags[t]), False))
    return out


def advice(cell: str, clip: float, lr: float) -> str:
    tips = []
    if clip <= 0:
        tips.append("enable gradient clipping (--clip 1 to 5)")
    else:
        tips.append(f"a lower clipping threshold (now {clip:g})")
    tips.append(f"a lower learning rate (now {lr:.3g})")
    if cell in ("irnn", "rnn"):
        tips.append("the IRNN recipe that trains (--optimizer adam --lr 1e-3 --warmup-steps 30 --clip 1 "
                    "--identity-scale 0.5: a large first Adam step moves every entry of the identity at once, and a "
                    "full identity integrates the carried state) or the tanh cell" if cell == "irnn"
                    else "an LSTM or GRU cell")
    return "try " + ", ".join(tips)


class Guard:
    def __init__(self, policy: str = "backoff", *, loss_limit: float = math.inf, hidden_limit: float = 1e4,
                 explode_factor: float = 20.0, backoff: float = 0.5, window: int = 50, max_backoffs: int = 20) -> None:
        self.policy = policy
        self.loss_limit = loss_limit        # e.g. 4 ln V: far worse than guessing uniformly
        self.hidden_limit = hidden_limit    # |h| beyond this is runaway growth, not information
        self.explode_factor = explode_factor
        self.backoff = backoff
        self.max_backoffs = max_backoffs
        self.norms: deque[float] = deque(maxlen=window)
        self.events = 0

    def verdict(self, loss: float, grad_norm: float, hidden_max: float = 0.0) -> str | None:
        """None if the step is sound, else a short reason."""
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        if not math.isfinite(grad_norm):
            return f"the gradient norm is {grad_norm}"
        if not hidden_max <= self.hidden_limit:
            return f"the hidden state reached |h| = {hidden_max:.3g} (limit {self.hidden_limit:.3g})"
        if loss > self.loss_limit:
            return f"the loss {loss:.3g} is far above that of uniform guessing ({self.loss_limit / 4:.3g})"
        if len(self.norms) >= 3:
            typical = float(np.median(self.norms))
            if grad_norm > self.explode_factor * typical:
                return f"the gradient norm {grad_norm:.3g} is {grad_norm / typical:.0f}x its recent median {typical:.3g}"
        return None

    def accept(self, grad_norm: float) -> None:
        self.norms.append(grad_norm)

    def explain(self, reason: str, step: int, report: list[Blowup], cell: str, clip: float, lr: float) -> str:
        worst = max(report, key=lambda b: (b.nonfinite, b.max_abs)) if report else None
        where = ""
        if worst is not None:
            size = "non-finite" if worst.nonfinite else f"max |h| = {worst.max_abs:.3g}"
            where = f"; hidden state of {worst.layer} at time step {worst.step}: {size}"
        return f"training step {step} diverged: {reason}{where}. {advice(cell, clip, lr)}"
