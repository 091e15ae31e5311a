"""The training loop for character language models (truncated BPTT).

Each step: forward B streams of T characters from the carried hidden state,
softmax cross-entropy, backward, guard check, clip, optimizer step, carry the
final state into the next batch (reset at each epoch start, where the
streams jump back). Every ``eval_every`` steps the validation split is scored;
the best model is kept in ``best.npz``, the latest state in ``last.npz``
(both written atomically), metrics in ``metrics.jsonl``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import StreamBatcher, Vocab, eval_batches
from ..errors import CheckpointError
from ..layers import SoftmaxCrossEntropy
from ..models import CharRNN, ModelConfig
from ..module import no_grad, release_workspaces
from ..optim import clip_grad_norm, clip_grad_value, global_grad_norm, make_optimizer, make_schedule
from . import snapshot
from .config import TrainConfig
from .diagnostics import layer_diagnostics
from .guard import DivergenceError, Guard, hidden_max, hidden_report
from .progress import MetricsLog, Progress
from .runs import BEST, LAST, METRICS

LN2 = math.log(2.0)


def model_config(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    return ModelConfig(vocab_size, cfg.cell, cfg.hidden_size, cfg.num_layers, cfg.embedding_size,
                       cfg.dropout, cfg.proj_size, dict(cfg.cell_options), cfg.seed)


def optimizer_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {"lr": cfg.lr}
    if cfg.weight_decay:
        kw["weight_decay"] = cfg.weight_decay
    if cfg.momentum and cfg.optimizer in ("sgd", "rmsprop"):
        kw["momentum"] = cfg.momentum
    return kw


def evaluate(model: CharRNN, ids: np.ndarray, batch_size: int, seq_len: int, max_chars: int = 0) -> float:
    """Mean cross-entropy (nats/char) over ``ids``, carrying the state across batches."""
    was_training = model.training
    model.eval()
    ce = SoftmaxCrossEntropy()
    total, count, states = 0.0, 0, None
    try:
        with no_grad():
            for batch in eval_batches(ids, batch_size, seq_len):
                (logits, states), _ = model.forward(batch.x, states)
                loss, _ = ce.forward(logits, batch.y)
                total += loss * batch.y.size
                count += batch.y.size
                if max_chars and count >= max_chars:
                    break
    finally:
        model.train(was_training)
    return total / max(count, 1)


def scheduled_lr(cfg: TrainConfig, schedule: Callable[[int], float], step: int, elapsed: float) -> float:
    """Learning rate for a step.

    A cosine schedule with a wall-clock budget and no step limit anneals over
    *time*: the fraction of ``max_minutes`` used replaces the fraction of
    steps, so the rate reaches ``min_lr`` as the budget runs out whatever the
    machine's speed (at the price of step-for-step reproducibility).
    """
    if cfg.schedule == "cosine" and not cfg.max_steps:
        frac = min(elapsed / (cfg.max_minutes * 60.0), 1.0)
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        return warm * (cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac)))
    return schedule(step)


class Trainer:
    def __init__(self, cfg: TrainConfig, vocab: Vocab, train_ids: np.ndarray, val_ids: np.ndarray,
                 run_dir: Path, *, progress: Progress | None = None, log: Callable[[str], None] = print) -> None:
        self.cfg, self.vocab, self.run_dir = cfg, vocab, Path(run_dir)
        self.val_ids = val_ids
        self.model = CharRNN(model_config(cfg, len(vocab)))
        self.optimizer = make_optimizer(cfg.optimizer, self.model.named_parameters(), **optimizer_kwargs(cfg))
        self.schedule = make_schedule(cfg.schedule, cfg.lr, warmup_steps=cfg.warmup_steps,
                                      **self._schedule_kwargs())
        self.batcher = StreamBatcher(train_ids, cfg.batch_size, cfg.seq_len)
        self.ce = SoftmaxCrossEntropy()
        # With clipping on, a gradient spike is bounded by the clip and is no sign of divergence
        # (IRNNs spike all the time); only unclipped training needs the spike test.
        self.guard = Guard(cfg.guard, loss_limit=4 * math.log(max(len(vocab), 2)),
                           explode_factor=math.inf if cfg.clip else 20.0)
        self.metrics = MetricsLog(self.run_dir / METRICS)
        self.progress = progress or Progress()
        self.log = log
        self.step = 0
        self.carry: list = self.model.initial_states(cfg.batch_size)
        self.best_val = math.inf
        self.evals_since_best = 0
        self.elapsed = 0.0      # training seconds over all sessions of this run
        self.lr_scale = 1.0     # lowered by the guard's backoff
        self._good: dict[str, Any] | None = None
        self.last_diagnostics: dict[str, float] = {}

    def _schedule_kwargs(self) -> dict[str, Any]:
        c = self.cfg
        if c.schedule == "step":
            return {"step_size": c.lr_step_size, "gamma": c.lr_gamma}
        if c.schedule == "cosine":
            return {"total_steps": max(c.max_steps, 1), "min_lr": c.min_lr}
        return {}

    # -- one step ---------------------------------------------------------------------------
    def train_step(self) -> tuple[float, float] | None:
        """One update; returns (loss, grad_norm), or None when the guard rejected the step."""
        batch = self.batcher.next_batch()
        if batch.index == 0:
            self.carry = self.model.initial_states(self.cfg.batch_size)  # streams restarted
        model = self.model
        model.zero_grad()
        # Overflow here is the guard's to detect and explain (below), not NumPy's to warn about.
        with np.errstate(over="ignore", invalid="ignore"):
            (logits, statesT), cache = model.forward(batch.x, self.carry)
            loss, ce_cache = self.ce.forward(logits, batch.y)
            model.backward((self.ce.backward(1.0, ce_cache), None), cache)
        params = self.optimizer.params
        norm = clip_grad_norm(params, self.cfg.clip) if self.cfg.clip else global_grad_norm(params)
        reason = self.guard.verdict(loss, norm, hidden_max(cache.rnn))
        if reason is not None:
            self._diverged(reason, hidden_report(cache.rnn))
            return None
        if self.cfg.clip_value:
            clip_grad_value(self.optimizer.params, self.cfg.clip_value)
        self.guard.accept(norm)
        if self.cfg.diagnostics and (self.step + 1) % self.cfg.log_every == 0:
            self.last_diagnostics = layer_diagnostics(model, cache.rnn)  # before the update changes grads
        self.optimizer.lr = self.current_lr()
        self.optimizer.step()
        self.carry = statesT
        return loss, norm

    def _diverged(self, reason: str, report: list, step: int | None = None) -> None:
        """Apply the guard policy to a rejected step (``step`` defaults to the one being attempted)."""
        cfg = self.cfg
        step = self.step + 1 if step is None else step
        msg = self.guard.explain(reason, step, report, cfg.cell, cfg.clip, self.optimizer.lr)
        self.guard.events += 1
        self.metrics.write(step=step, split="guard", event=cfg.guard, reason=reason)
        if cfg.guard == "abort" or self.guard.events > self.guard.max_backoffs:
            raise DivergenceError(msg + ("" if cfg.guard == "abort" else " (gave up after repeated backoffs)"))
        self.carry = self.model.initial_states(cfg.batch_size)
        if cfg.guard == "backoff":
            if self._good is not None:
                self._restore(self._good)
            self.lr_scale *= self.guard.backoff
            msg += f" Restored the last good weights; learning rate x{self.lr_scale:g}."
        else:
            msg += " Skipped this update."
        self.progress.message("warning: " + msg)

    def _remember_good(self) -> None:
        self._good = {"params": self.model.state_dict(), "optim": self.optimizer.state_dict()}

    def _restore(self, good: dict[str, Any]) -> None:
        self.model.load_state_dict(good["params"])
        self.optimizer.load_state_dict({k: (v.copy() if isinstance(v, np.ndarray) else v)
                                        for k, v in good["optim"].items()})

    def current_lr(self) -> float:
        """The schedule's rate (see :func:`scheduled_lr`), times the guard's backoff factor."""
        return scheduled_lr(self.cfg, self.schedule, self.step, self.elapsed) * self.lr_scale

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg = self.cfg
        chars_per_step = cfg.batch_size * cfg.seq_len
        start, start_elapsed, stop_reason = time.perf_counter(), self.elapsed, "max_steps"
        window_t, window_steps = time.perf_counter(), 0
        rate = 0.0
        try:
            while not cfg.max_steps or self.step < cfg.max_steps:
                if cfg.max_minutes and self.elapsed >= cfg.max_minutes * 60:
                    stop_reason = "time budget"
                    break
                if self._good is None or self.step % 50 == 0:
                    self._remember_good()
                result = self.train_step()
                self.step += 1
                self.elapsed = start_elapsed + time.perf_counter() - start
                window_steps += 1
                if result is not None and self.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    rate = window_steps * chars_per_step / max(now - window_t, 1e-9)
                    window_t, window_steps = now, 0
                    self.metrics.write(step=self.step, split="train", loss=result[0], bpc=result[0] / LN2,
                                       grad_norm=result[1], lr=self.optimizer.lr, chars_per_s=rate,
                                       elapsed=self.elapsed, **self.last_diagnostics)
                    self.progress.update(self.step, result[0], rate, self._eta(rate))
                if self.step % cfg.eval_every == 0 and self._evaluate_and_save():
                    stop_reason = "early stopping"
                    break
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        if self.step % cfg.eval_every != 0 or stop_reason == "interrupted":
            self._evaluate_and_save()
        release_workspaces(self.model)  # the activations kept between steps are not needed now
        return {"steps": self.step, "best_val_loss": self.best_val, "best_val_bpc": self.best_val / LN2,
                "elapsed_s": self.elapsed, "stop": stop_reason, "run_dir": str(self.run_dir)}

    def _eta(self, rate: float) -> float:
        cfg = self.cfg
        left = []
        if cfg.max_steps:
            left.append((cfg.max_steps - self.step) * cfg.batch_size * cfg.seq_len / max(rate, 1e-9))
        if cfg.max_minutes:
            left.append(cfg.max_minutes * 60 - self.elapsed)
        return min(left) if left else math.inf

    def _evaluate_and_save(self) -> bool:
        """Score validation, save checkpoints; True when early stopping says stop."""
        cfg = self.cfg
        with np.errstate(over="ignore", invalid="ignore"):
            val = evaluate(self.model, self.val_ids, cfg.batch_size, cfg.seq_len, cfg.eval_chars)
        if not val <= self.guard.loss_limit:
            # Weights that are finite but score inf/nan (or hopelessly) on held-out text are diverged:
            # never save them; fall back to the last good state under the guard's policy.
            self._diverged(f"the validation loss is {val:.3g}", [], step=self.step)
            return False
        improved = val < self.best_val
        if improved:
            self.best_val, self.evals_since_best = val, 0
        else:
            self.evals_since_best += 1
        self.metrics.write(step=self.step, split="val", loss=val, bpc=val / LN2, elapsed=self.elapsed)
        self.progress.message(f"step {self.step}: validation {val / LN2:.4f} bits/char"
                              f"{' (best)' if improved else ''}")
        self.save(self.run_dir / LAST)
        if improved:
            self.save(self.run_dir / BEST)
        return bool(cfg.patience and self.evals_since_best >= cfg.patience)

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        arrays, meta = snapshot.pack_model(self.model, self.vocab)
        opt_arrays, opt_scalars = snapshot.pack_optimizer(self.optimizer)
        carry_arrays, carry_skel = snapshot.pack_carry(self.carry)
        arrays.update(opt_arrays)
        arrays.update(carry_arrays)
        meta.update(config=self.cfg.to_dict(), optimizer=opt_scalars, carry=carry_skel,
                    batcher=self.batcher.state_dict(), rng=snapshot.rng_states(self.model),
                    trainer={"step": self.step, "best_val": self.best_val, "evals_since_best": self.evals_since_best,
                             "elapsed": self.elapsed, "lr_scale": self.lr_scale,
                             "guard_norms": list(self.guard.norms), "guard_events": self.guard.events})
        save_checkpoint(path, arrays, meta)

    def restore(self, path: Path) -> None:
        arrays, meta = load_checkpoint(path)
        model, vocab = snapshot.unpack_model(arrays, meta, str(path))
        if vocab != self.vocab:
            raise CheckpointError(f"{path}: the checkpoint's vocabulary differs from this corpus's")
        self.model.load_state_dict(model.state_dict())
        snapshot.unpack_optimizer(self.optimizer, arrays, meta["optimizer"])
        self.carry = snapshot.unpack_carry(arrays, meta["carry"], self.cfg.num_layers)
        self.batcher.load_state_dict(meta["batcher"])
        snapshot.set_rng_states(self.model, meta["rng"])
        t = meta["trainer"]
        self.step, self.best_val, self.evals_since_best = t["step"], t["best_val"], t["evals_since_best"]
        self.elapsed, self.lr_scale = t["elapsed"], t["lr_scale"]
        self.guard.norms.extend(t["guard_norms"])
        self.guard.events = t["guard_events"]
        self.metrics.truncate_after(self.step)
