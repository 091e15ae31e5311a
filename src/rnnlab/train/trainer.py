"""The one training loop, for every task.

Each step: draw the task's next batch, forward, loss and backward (the task's
:meth:`~rnnlab.train.task.Task.forward_backward`), clip, ask the divergence
guard, update, keep the carried state. Every ``eval_every`` steps the task
scores its validation data; the best model is kept in ``best.npz``, the
latest state in ``last.npz`` (both written atomically), metrics in
``metrics.jsonl``. The per-task part is a small object (:mod:`rnnlab.train.task`);
this loop owns optimizer, schedule, clipping, guard, checkpoints and exact
resume, budgets, progress, metrics and stop requests. After each evaluation it
tells the hooks of :mod:`rnnlab.train.hooks` (a sweep's pruner), which may end
the run there, cleanly, with a stop reason of their own.

Exact resume from any stop
--------------------------
A checkpoint holds the weights, optimizer slots, the carried state, the task's
data position and generators, every dropout generator, the loop's counters and
which BLAS library ran each step product (``RNNLAB_BLAS=auto`` times them, and
a resumed run takes the same ones back), all taken at a step boundary. Ctrl-C
and SIGTERM only ask the loop to stop (:mod:`rnnlab.train.signals`): the
current step finishes, ``last.npz`` is written, the run exits 130 / 143. An
evaluation cut short by a stop request is recorded as pending and run first on
resume. A step cut short by an exception
(a KeyboardInterrupt where no handler could be installed) is rewound to its
start: data position and generators are restored from the snapshot taken
before the step, and the checkpoint is written only if the weights had not
started to change. Resuming therefore continues bit for bit: the same batches,
dropout masks, updates and metrics as the run that was never stopped.

Weight averaging (``--average DECAY``, :mod:`rnnlab.train.averaging`): a moving average of the
weights is kept beside them; every evaluation scores both, and ``best.npz`` holds whichever set
wins on validation. Training itself never reads the average.

What a checkpoint holds and how it is read back is :mod:`rnnlab.train.resume` (``Trainer.save``,
``Trainer.restore``); this file keeps the step, the stop handling and where a checkpoint may be
taken (only where the state is whole), which together are the exact-resume argument. Why about
370 lines (docs/conventions.md asks for ~300): that argument reads in one place; the parts that
stand alone are their own modules (guard, progress, hooks, snapshot, runs, resume, averaging).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..blas.threads import busy_note
from ..module import release_workspaces
from ..optim import clip_grad_norm, clip_grad_value, global_grad_norm, make_optimizer, make_schedule
from . import hooks, snapshot
from .averaging import WeightAverage
from .diagnostics import layer_diagnostics
from .guard import DivergenceError, Guard, hidden_max, hidden_report
from .progress import MetricsLog, Progress
from .resume import Checkpointing
from .runs import BEST, LAST, METRICS
from .signals import EXIT_CODES, StopSignals
from .task import EvalInterrupted, Task

LN2 = math.log(2.0)


def optimizer_kwargs(cfg: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {"lr": cfg.lr}
    if cfg.weight_decay:
        kw["weight_decay"] = cfg.weight_decay
    if cfg.momentum and cfg.optimizer in ("sgd", "rmsprop"):
        kw["momentum"] = cfg.momentum
    return kw


def scheduled_lr(cfg: Any, schedule: Callable[[int], float], step: int, elapsed: float) -> float:
    """Learning rate for a step.

    A cosine schedule with a time budget and no step limit anneals over
    *time*: the fraction of ``max_minutes`` used replaces the fraction of
    steps, so the rate reaches ``min_lr`` as the budget runs out whatever the
    machine's speed (at the price of step-for-step reproducibility).
    """
    if cfg.schedule == "cosine" and not cfg.max_steps:
        frac = min(elapsed / (cfg.max_minutes * 60.0), 1.0)
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        return warm * (cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac)))
    return schedule(step)


class Trainer(Checkpointing):
    """``Trainer(task, cfg, run_dir).fit()``; ``cfg`` has the fields of :class:`~rnnlab.train.loopconfig.LoopConfig`."""

    def __init__(self, task: Task, cfg: Any, run_dir: Path, *, progress: Progress | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.task, self.cfg, self.run_dir = task, cfg, Path(run_dir)
        self.model = task.build_model()
        self.optimizer = make_optimizer(cfg.optimizer, self.model.named_parameters(), **optimizer_kwargs(cfg))
        self.schedule = make_schedule(cfg.schedule, cfg.lr, warmup_steps=cfg.warmup_steps, **self._schedule_kwargs())
        # With clipping on, a gradient spike is bounded by the clip and is no sign of divergence
        # (IRNNs spike all the time); only unclipped training needs the spike test.
        # --average: a moving average of the weights, scored beside them at each evaluation (averaging.py)
        decay = getattr(cfg, "average", 0.0)
        self.average = WeightAverage(self.optimizer.params, decay) if decay else None
        self.guard = Guard(cfg.guard, loss_limit=task.loss_limit, explode_factor=math.inf if cfg.clip else 20.0)
        self.metrics = MetricsLog(self.run_dir / METRICS)
        self.progress = progress or Progress()
        self.log = log
        self.step = 0
        self.carry: Any = task.initial_carry(self.model)
        self.best: float | None = None
        self.evals_since_best = 0
        self.elapsed = 0.0        # training seconds over all sessions of this run (evaluation excluded)
        self.lr_scale = 1.0       # lowered by the guard's backoff
        self.pending_eval = False  # an evaluation was cut short by a stop request: run it first on resume
        self.last_eval: dict[str, float] | None = None
        self.last_eval_step = -1
        self.signals: StopSignals | None = None
        self._updating = False     # inside optimizer.step(): a step cut short here cannot be rewound
        self._pre_final: tuple | None = None  # (best, evals_since_best) before an end-of-run evaluation
        self._good: dict[str, Any] | None = None
        self.last_diagnostics: dict[str, float] = {}

    def _schedule_kwargs(self) -> dict[str, Any]:
        c = self.cfg
        if c.schedule == "step":
            return {"step_size": c.lr_step_size, "gamma": c.lr_gamma}
        if c.schedule == "cosine":
            # Without a step limit the cosine runs on time (scheduled_lr) and this object is never asked.
            return {"total_steps": c.max_steps or c.warmup_steps + 1, "min_lr": c.min_lr}
        return {}

    @property
    def stop_requested(self) -> bool:
        return self.signals is not None and self.signals.received is not None

    # -- one step ---------------------------------------------------------------------------
    def train_step(self) -> tuple[float, float, int] | None:
        """One update; returns (loss, grad_norm, items), or None when the guard rejected the step."""
        model, task, cfg = self.model, self.task, self.cfg
        batch = task.next_batch()
        model.zero_grad()
        # Overflow here is the guard's to detect and explain (below), not NumPy's to warn about.
        with np.errstate(over="ignore", invalid="ignore"):
            out = task.forward_backward(model, batch, self.carry)
        params = self.optimizer.params
        norm = clip_grad_norm(params, cfg.clip) if cfg.clip else global_grad_norm(params)
        hmax = hidden_max(out.rnn_cache) if out.rnn_cache is not None else 0.0
        reason = self.guard.verdict(out.loss, norm, hmax)
        if reason is not None:
            self._diverged(reason, hidden_report(out.rnn_cache) if out.rnn_cache is not None else [])
            return None
        if cfg.clip_value:
            clip_grad_value(params, cfg.clip_value)
        self.guard.accept(norm)
        if cfg.diagnostics and out.rnn_cache is not None and (self.step + 1) % cfg.log_every == 0:
            self.last_diagnostics = layer_diagnostics(model, out.rnn_cache)  # before the update changes grads
        self.optimizer.lr = self.current_lr()
        self._updating = True
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        self._updating = False
        self.carry = out.carry
        return out.loss, norm, out.items

    def _diverged(self, reason: str, report: list, step: int | None = None) -> None:
        """Apply the guard policy to a rejected step (``step`` defaults to the one being attempted)."""
        cfg = self.cfg
        step = self.step + 1 if step is None else step
        msg = self.guard.explain(reason, step, report, getattr(cfg, "cell", ""), cfg.clip, self.optimizer.lr)
        self.guard.events += 1
        self.metrics.write(step=step, split="guard", event=cfg.guard, reason=reason)
        if cfg.guard == "abort" or self.guard.events > self.guard.max_backoffs:
            raise DivergenceError(msg + ("" if cfg.guard == "abort" else " (gave up after repeated backoffs)"))
        self.carry = self.task.initial_carry(self.model)
        if cfg.guard == "backoff":
            if self._good is not None:
                self._restore(self._good)
                if self.average is not None:
                    self.average.reset()
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
        """Train until a budget, early stopping, the task's target or a stop request; returns a summary."""
        cfg = self.cfg
        self.progress.start(self.step, cfg.max_steps, self.elapsed, cfg.max_minutes * 60, self.task.unit)
        note = busy_note()      # a machine busy with other work makes BLAS threads wait for each other
        if note is not None:
            self.progress.message(note)
        with StopSignals(self._on_signal) as signals:
            self.signals = signals
            try:
                stop = self._loop()
            finally:
                self.progress.close()
                release_workspaces(self.model)  # the activations kept between steps are not needed now
            self.signals = None
        summary = {"steps": self.step, "best": self.best, "selection": self.task.selection.key,
                   "elapsed_s": self.elapsed, "stop": stop, "run_dir": str(self.run_dir),
                   # a signal that came during the last step still counts: the caller (a script, or a
                   # job that trains several networks in a row) must learn that it was asked to stop
                   "exit_code": EXIT_CODES.get(signals.received or "SIGINT", 130)
                   if stop.startswith("interrupted") or signals.received else 0,
                   "last_eval": self.last_eval}
        return summary

    def _on_signal(self, name: str) -> None:
        self.progress.message(f"{name}: stopping after this step and saving last.npz (the run can be resumed "
                              "exactly with --resume)")

    def _loop(self) -> str:
        cfg = self.cfg
        if self.pending_eval:
            if self._evaluate_and_save() == "interrupted":
                return self._stop_here()
        extending = self._pre_final is not None and self._budget_left()
        if extending:
            # The run ended on its budget and is resumed with a larger one: its end-of-run evaluation
            # is not part of the longer run, so drop it (a run never stopped would not have it).
            self.best, self.evals_since_best = self._pre_final
            self.metrics.truncate_after(self.step, drop=lambda r: bool(r.get("final")))
            self._pre_final, self.last_eval_step = None, -1
        start, start_elapsed = time.perf_counter(), self.elapsed
        eval_time = 0.0
        window_t, window_items = time.perf_counter(), 0
        while True:
            if cfg.max_steps and self.step >= cfg.max_steps:
                stop = "max_steps"
                break
            if cfg.max_minutes and self.elapsed >= cfg.max_minutes * 60:
                stop = "time budget"
                break
            if self.stop_requested:
                return self._stop_here()
            if self._good is None or self.step % 50 == 0:
                self._remember_good()
            before = self._snapshot()
            try:
                result = self.train_step()
            except KeyboardInterrupt:
                return self._stop_here(rewind=before)
            self.step += 1
            self.elapsed = start_elapsed + time.perf_counter() - start - eval_time
            if result is not None:
                window_items += result[2]
                if self.step % cfg.log_every == 0:
                    now = time.perf_counter()
                    rate = window_items / max(now - window_t, 1e-9)
                    window_t, window_items = now, 0
                    self.metrics.write(step=self.step, split="train", loss=result[0], **self.task.train_record(result[0]),
                                       grad_norm=result[1], lr=self.optimizer.lr, rate=rate,
                                       elapsed=self.elapsed, **self.last_diagnostics)
                    self.progress.update(self.step, result[0], rate, self.elapsed)
            if self.step % cfg.eval_every == 0:
                t0 = time.perf_counter()
                outcome = self._evaluate_and_save()
                eval_time += time.perf_counter() - t0
                window_t = time.perf_counter()
                if outcome == "interrupted":
                    return self._stop_here()
                if outcome is not None:
                    return outcome
        if self.last_eval_step != self.step and self.step > 0:
            if self._evaluate_and_save(final=True) == "interrupted":
                return self._stop_here()
        elif self.last_eval_step != self.step:
            self.save(self.run_dir / LAST)
        return stop

    def _budget_left(self) -> bool:
        cfg = self.cfg
        return not ((cfg.max_steps and self.step >= cfg.max_steps)
                    or (cfg.max_minutes and self.elapsed >= cfg.max_minutes * 60))

    def _stop_here(self, rewind: dict | None = None) -> str:
        """Save the state at the last step boundary; never a half-made step."""
        if rewind is not None:
            if self._updating:
                self.progress.message(f"interrupted during a weight update: not saved; resume continues from "
                                      f"the last checkpoint in {self.run_dir}")
                return "interrupted"
            self._rewind(rewind)
        self.save(self.run_dir / LAST)
        name = self.signals.received if self.signals is not None and self.signals.received else "SIGINT"
        self.progress.message(f"stopped at step {self.step} ({name}); saved {self.run_dir / LAST}")
        return f"interrupted ({name})"

    def _snapshot(self) -> dict[str, Any]:
        return {"data": self.task.data_state(), "rng": snapshot.rng_states(self.task.rng_modules(self.model)),
                "carry": self.carry}

    def _rewind(self, state: dict[str, Any]) -> None:
        self.task.load_data_state(state["data"])
        snapshot.set_rng_states(self.task.rng_modules(self.model), state["rng"])
        self.carry = state["carry"]

    # -- evaluation and checkpoints --------------------------------------------------------------
    def _evaluate_and_save(self, final: bool = False) -> str | None:
        """Score validation, save checkpoints; returns a stop reason, "interrupted", or None."""
        task = self.task
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                metrics = task.evaluate(self.model, lambda: self.stop_requested, self.progress.eval_update)
                if self.average is not None:
                    with self.average.applied():
                        averaged = task.evaluate(self.model, lambda: self.stop_requested, self.progress.eval_update)
        except EvalInterrupted:
            self.pending_eval = True
            return "interrupted"
        finally:
            self.progress.eval_done()
        self.pending_eval = False
        key = task.selection.key
        value = metrics.get(key)
        if value is None or not math.isfinite(value) or not metrics.get("loss", 0.0) <= task.loss_limit:
            # Weights that are finite but score inf/nan (or hopelessly) on held-out data are diverged:
            # never save them; fall back to the last good state under the guard's policy.
            self._diverged(f"the validation {key} is {value}", [], step=self.step)
            return None
        self._pre_final = (self.best, self.evals_since_best) if final else None
        use_average = False
        if self.average is not None:
            avg_value = averaged.get(key)
            use_average = avg_value is not None and math.isfinite(avg_value) and task.selection.better(avg_value, value)
            metrics = {**metrics, **{f"avg_{k}": v for k, v in averaged.items()}}
            value = avg_value if use_average else value
        improved = task.selection.better(value, self.best)
        if improved:
            self.best, self.evals_since_best = value, 0
        else:
            self.evals_since_best += 1
        self.last_eval, self.last_eval_step = metrics, self.step
        self.metrics.write(step=self.step, split="val", **metrics, elapsed=self.elapsed,
                           **({"final": True} if final else {}))
        line = task.describe_eval(metrics)
        if self.average is not None:
            line += f"; averaged weights: {task.describe_eval(averaged)}{' (used)' if use_average else ''}"
        self.progress.message(f"step {self.step}: {line}{' (best)' if improved else ''}")
        self.save(self.run_dir / LAST)
        if improved and use_average:
            with self.average.applied():   # best.npz holds the weights that won: the averaged ones
                self.save(self.run_dir / BEST, weights="average")
        elif improved:
            self.save(self.run_dir / BEST)
        chosen = {**metrics, **averaged} if use_average else metrics   # the winner's figures for hooks and targets
        asked = hooks.notify(hooks.Evaluation(self.step, dict(chosen), key, task.selection.mode, final,
                                              str(self.run_dir)))
        if asked is not None and not final:
            return asked   # a caller's hook (a sweep's pruner) ends the run here, as a budget would
        if task.target_reached(chosen):
            return "target reached"
        if self.cfg.patience and self.evals_since_best >= self.cfg.patience:
            return "early stopping"
        return None
