"""A sequence-to-one model and its training loop, shared by the adding and digits studies.

    h_1..h_T = RNNStack(x_1..x_T)        (B, T, D) -> (B, T, H)
    yhat     = h_T W + b                 a Linear on the LAST step only

The backward pass feeds a gradient only into the last step's output, so any
signal about early inputs must travel back through the recurrence: exactly
the long-range credit assignment these benchmarks are meant to test.

``SeqModel`` is a plain class holding two Modules (not a Module itself), so
it needs no gradcheck spec of its own: RNNStack and Linear are checked.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from ..layers import Linear, MSELoss, RNNStack, SoftmaxCrossEntropy
from ..module import DEFAULT_DTYPE, no_grad
from ..optim import clip_grad_norm, global_grad_norm, make_optimizer
from ..train.guard import Guard, hidden_max


class SeqCache(NamedTuple):
    rnn: Any          # StackCache
    out: Any          # LinearCache
    steps: int        # T, to rebuild the (B, T, H) output gradient


class SeqModel:
    """RNNStack -> Linear on the last time step: ``forward(x) -> (yhat (B, K), cache)``."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, *,
                 num_layers: int = 1, seed: int = 0, dtype: Any = DEFAULT_DTYPE, **cell_options: Any) -> None:
        seeds = np.random.SeedSequence(seed).spawn(2)
        self.rnn = RNNStack(cell, input_size, hidden_size, num_layers, seed=int(seeds[0].generate_state(1)[0]),
                            dtype=dtype, **cell_options)
        self.out = Linear(self.rnn.output_size, output_size, seed=np.random.default_rng(seeds[1]), dtype=dtype)

    def parts(self) -> dict[str, Any]:
        return {"rnn": self.rnn, "out": self.out}

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for prefix, part in self.parts().items():
            for name, p, g in part.named_parameters():
                yield f"{prefix}.{name}", p, g

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    def zero_grad(self) -> None:
        for part in self.parts().values():
            part.zero_grad()

    def train(self, mode: bool = True) -> "SeqModel":
        for part in self.parts().values():
            part.train(mode)
        return self

    def eval(self) -> "SeqModel":
        return self.train(False)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, SeqCache]:
        (h, _), rcache = self.rnn.forward(x)
        yhat, ocache = self.out.forward(h[:, -1])
        return yhat, SeqCache(rcache, ocache, x.shape[1])

    def backward(self, dyhat: np.ndarray, cache: SeqCache) -> np.ndarray:
        dlast = self.out.backward(dyhat, cache.out)
        dh = np.zeros((dlast.shape[0], cache.steps, dlast.shape[1]), dtype=dlast.dtype)
        dh[:, -1] = dlast  # earlier steps get no direct gradient: only through time
        dx, _ = self.rnn.backward((dh, None), cache.rnn)
        return dx


@dataclass
class FitConfig:
    task: str = "regression"          # "regression" (MSE) or "classification" (cross-entropy)
    optimizer: str = "adam"
    lr: float = 1e-3
    clip: float = 1.0                 # global gradient-norm threshold; 0 disables
    max_steps: int = 1000
    max_seconds: float = math.inf     # training time only (evaluation excluded)
    eval_every: int = 100
    stop_below: float = -math.inf     # regression: stop once the eval MSE is below this
    max_bad_steps: int = 20           # rejected (non-finite) steps before the run counts as diverged


@dataclass
class FitResult:
    history: list = field(default_factory=list)   # dicts: step, seconds, train_loss, eval metrics
    steps: int = 0
    seconds: float = 0.0
    diverged: bool = False
    bad_steps: int = 0
    stop: str = "max_steps"


def evaluate(model: SeqModel, x: np.ndarray, y: np.ndarray, task: str, batch_size: int = 500) -> dict[str, float]:
    """Loss (and accuracy for classification) over a fixed set, in eval mode (population statistics)."""
    was_training = model.rnn.training
    model.eval()
    total, correct = 0.0, 0
    loss_fn = MSELoss() if task == "regression" else SoftmaxCrossEntropy()
    try:
        with no_grad():
            for i in range(0, len(x), batch_size):
                yhat, _ = model.forward(x[i:i + batch_size])
                loss, _ = loss_fn.forward(yhat, y[i:i + batch_size])
                total += loss * len(yhat)
                if task == "classification":
                    correct += int((yhat.argmax(axis=1) == y[i:i + batch_size]).sum())
    finally:
        model.train(was_training)
    out = {"loss": total / len(x)}
    if task == "classification":
        out["acc"] = correct / len(x)
    return out


def fit(model: SeqModel, next_batch: Callable[[int], tuple[np.ndarray, np.ndarray]],
        eval_set: tuple[np.ndarray, np.ndarray], cfg: FitConfig,
        log: Callable[[str], None] = lambda s: None) -> FitResult:
    """Train with clipping and a finite-step guard; evaluate every ``eval_every`` steps.

    ``next_batch(step)`` returns one training batch ``(x, y)``. A step whose
    loss, gradient norm or hidden state is non-finite (or |h| > 1e4) is
    skipped rather than applied; after ``max_bad_steps`` of them the run is
    marked diverged and stops, so a broken configuration fails visibly
    instead of writing NaN into the weights.
    """
    loss_fn = MSELoss() if cfg.task == "regression" else SoftmaxCrossEntropy()
    opt = make_optimizer(cfg.optimizer, model.named_parameters(), lr=cfg.lr)
    # explode_factor=inf: on these tasks the norm legitimately jumps when learning starts; clipping handles it.
    guard = Guard("skip", explode_factor=math.inf)
    result = FitResult()
    model.train()
    train_loss, n_loss = 0.0, 0
    while result.steps < cfg.max_steps:
        if result.seconds >= cfg.max_seconds:
            result.stop = "time budget"
            break
        t0 = time.perf_counter()
        x, y = next_batch(result.steps)
        model.zero_grad()
        yhat, cache = model.forward(x)
        loss, lcache = loss_fn.forward(yhat, y)
        model.backward(loss_fn.backward(1.0, lcache), cache)
        params = opt.params
        norm = clip_grad_norm(params, cfg.clip) if cfg.clip else global_grad_norm(params)
        if guard.verdict(loss, norm, hidden_max(cache.rnn)) is None:
            guard.accept(norm)
            opt.step()
            train_loss, n_loss = train_loss + loss, n_loss + 1
        else:
            result.bad_steps += 1
        result.steps += 1
        result.seconds += time.perf_counter() - t0
        if result.bad_steps > cfg.max_bad_steps:
            result.diverged, result.stop = True, "diverged"
            log(f"  diverged at step {result.steps} ({result.bad_steps} non-finite steps skipped)")
            break
        if result.steps % cfg.eval_every == 0 or result.steps == cfg.max_steps:
            if _record(model, eval_set, cfg, result, train_loss / max(n_loss, 1), log):
                result.stop = "target reached"
                break
            train_loss, n_loss = 0.0, 0
    if not result.history or result.history[-1]["step"] != result.steps:
        _record(model, eval_set, cfg, result, train_loss / max(n_loss, 1) if n_loss else math.nan, log)
    return result


def _record(model: SeqModel, eval_set: tuple, cfg: FitConfig, result: FitResult, train_loss: float,
            log: Callable[[str], None]) -> bool:
    """Evaluate, append to the history; True when the regression target is reached."""
    metrics = evaluate(model, *eval_set, cfg.task)
    row = {"step": result.steps, "seconds": result.seconds, "train_loss": train_loss,
           **{f"eval_{k}": v for k, v in metrics.items()}}
    result.history.append(row)
    shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "step")
    log(f"  step {result.steps:>6}  {shown}")
    return cfg.task == "regression" and metrics["loss"] < cfg.stop_below


def first_below(history: list[dict], key: str, threshold: float) -> dict | None:
    """The first history row whose ``key`` is below ``threshold`` (None if never)."""
    for row in history:
        if row[key] < threshold:
            return row
    return None
