"""Sequence-to-one studies (adding problem, pixel digits) as a task of the one training loop.

A study run is an ordinary run folder (``config.json``, ``metrics.jsonl``,
``best.npz``, ``last.npz``) under the study's output folder, trained by
:class:`rnnlab.train.Trainer`: the same guard, checkpoints, exact resume and
budgets as ``rnnlab train``. What the study supplies is a batch source (fresh
random batches, or shuffled epochs over a fixed set), a fixed evaluation set
and the kind of output: regression (MSE, best = lowest) or classification
(cross-entropy and accuracy, best = highest accuracy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..layers import MSELoss, SoftmaxCrossEntropy
from ..module import no_grad
from ..train import Progress, run_task
from ..train.guard import DivergenceError
from ..train.loopconfig import LoopConfig
from ..train.progress import MetricsLog
from ..train.runs import METRICS, prepare_run_dir
from ..train.signals import raise_if_interrupted
from ..train.batches import EpochBatches, RandomBatches  # noqa: F401  (re-exported)
from ..train.task import EvalInterrupted, Selection, SourceTask, StepOutput, param_arrays
from ..models.seqmodel import SeqModel

KIND = "rnnlab.seqmodel"


class SequenceTask(SourceTask):
    name = "sequence"
    unit = "sequences"

    def __init__(self, model_spec: dict, batches: Any, eval_set: tuple[np.ndarray, np.ndarray], kind: str,
                 stop_below: float = -math.inf, eval_batch: int = 500, loss_limit: float | None = None) -> None:
        if kind not in ("regression", "classification"):
            raise ValueError(f"kind must be regression or classification, got {kind!r}")
        self.model_spec, self.batches, self.eval_set, self.kind = dict(model_spec), batches, eval_set, kind
        self.stop_below, self.eval_batch = stop_below, eval_batch
        self.loss_fn = MSELoss() if kind == "regression" else SoftmaxCrossEntropy()
        if kind == "classification":
            self.selection = Selection("acc", "max")
            self.loss_limit = 4 * math.log(max(model_spec["output_size"], 2))
        if loss_limit is not None:  # e.g. inf: an IRNN's first losses are legitimately far above ln K
            self.loss_limit = loss_limit

    def build_model(self) -> SeqModel:
        return SeqModel(**self.model_spec)

    def pack_model(self, model: SeqModel) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return param_arrays(model), {"kind": KIND, "model": dict(self.model_spec), "output": self.kind}

    def forward_backward(self, model: SeqModel, batch: tuple, carry: Any) -> StepOutput:
        x, y = batch
        yhat, cache = model.forward(x)
        loss, lcache = self.loss_fn.forward(yhat, y)
        model.backward(self.loss_fn.backward(1.0, lcache), cache)
        return StepOutput(loss, len(x), cache.rnn, None)

    def evaluate(self, model: SeqModel, should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        """Loss (and accuracy for classification) over the fixed set, in eval mode (population statistics)."""
        x, y = self.eval_set
        was_training = model.training
        model.eval()
        total, correct = 0.0, 0
        try:
            with no_grad():
                for i in range(0, len(x), self.eval_batch):
                    if should_stop():
                        raise EvalInterrupted
                    yhat, _ = model.forward(x[i:i + self.eval_batch])
                    loss, _ = self.loss_fn.forward(yhat, y[i:i + self.eval_batch])
                    total += loss * len(yhat)
                    if self.kind == "classification":
                        correct += int((yhat.argmax(axis=1) == y[i:i + self.eval_batch]).sum())
        finally:
            model.train(was_training)
        out = {"loss": total / len(x)}
        if self.kind == "classification":
            out["acc"] = correct / len(x)
        return out

    def target_reached(self, metrics: dict[str, float]) -> bool:
        return self.kind == "regression" and metrics["loss"] < self.stop_below


@dataclass
class FitResult:
    history: list            # validation rows: step, seconds, eval_loss (, eval_acc)
    steps: int
    seconds: float
    diverged: bool
    stop: str
    bad_steps: int


def fit_sequence(task: SequenceTask, cfg: LoopConfig, run_dir: str | Path,
                 log: Callable[[str], None] = lambda s: None) -> FitResult:
    """Train one study run in ``run_dir`` (an existing run there is replaced); a run whose guard gave
    up counts as diverged, a result rather than an error."""
    run_dir = prepare_run_dir(str(run_dir), force=True)
    quiet = Progress(enabled=False)
    diverged, stop = False, "diverged"
    try:
        summary = run_task(task, cfg.validate(), run_dir, log=lambda *_: None, progress=quiet)
        raise_if_interrupted(summary)  # Ctrl-C or SIGTERM: stop the study, do not record a cut-short run
        stop = summary["stop"]
    except DivergenceError as exc:
        diverged = True
        log(f"  diverged: {exc}")
    rows = MetricsLog(run_dir / METRICS).read()
    history = [{"step": r["step"], "seconds": r["elapsed"], "eval_loss": r["loss"],
                **({"eval_acc": r["acc"]} if "acc" in r else {})} for r in rows if r.get("split") == "val"]
    for h in history:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in h.items() if k != "step")
        log(f"  step {h['step']:>6}  {shown}")
    steps = max((r["step"] for r in rows if r.get("split") in ("train", "val", "guard")), default=0)
    seconds = max((r.get("elapsed", 0.0) for r in rows), default=0.0)
    bad = sum(1 for r in rows if r.get("split") == "guard")
    if not history:
        history = [{"step": steps, "seconds": seconds, "eval_loss": math.nan,
                    **({"eval_acc": math.nan} if task.kind == "classification" else {})}]
    return FitResult(history, steps, seconds, diverged, stop, bad)


def reestimate_population(model: Any, x: np.ndarray, batch: int = 32, seed: int = 0) -> int:
    """Re-estimate every batch-norm cell's population statistics with the model's current weights.

    Cooijmans et al. (2016) estimate the statistics used at test time by averaging the batch
    statistics over the training set after training; rnnlab's BN-LSTM keeps a running average
    during training instead (momentum 0.1), which can lag weights that are still moving. This
    resets the statistics and runs training-mode forward passes (no gradients) over shuffled
    batches of ``x`` with momentum 1/n, i.e. a plain average over the n batches. Returns the
    number of batch-norm cells updated (0: nothing to do, e.g. an LSTM).
    """
    cells = [m for _, m in model.modules() if hasattr(m, "stat_index")]
    if not cells:
        return 0
    for cell in cells:
        for key in ("x", "h", "c"):
            cell.buffers[f"mean_{key}"][:] = 0.0
            cell.buffers[f"var_{key}"][:] = 1.0
    saved = [cell.momentum for cell in cells]
    was_training = model.training
    model.train()
    order = np.random.default_rng(seed).permutation(len(x))
    try:
        with no_grad():
            for n, i in enumerate(range(0, len(order) - batch + 1, batch), start=1):
                for cell in cells:
                    cell.momentum = 1.0 / n
                model.forward(x[order[i:i + batch]])
    finally:
        for cell, m in zip(cells, saved):
            cell.momentum = m
        model.train(was_training)
    return len(cells)


def run_dir_for(opts: Any, study: str, label: str, seed: int) -> Path:
    """Where one condition's run for one seed lives: ``<study out>/<study>-runs[/<budget>]/<label>-seed<k>``."""
    base = Path(opts.out) if opts.out else Path("runs") / "experiments"
    budget = getattr(opts, "budget", None)
    folder = base / f"{study}-runs"
    if budget in ("steps", "time"):
        folder = folder / budget
    return folder / f"{label.replace(' ', '-').replace('=', '')}-seed{seed}"
