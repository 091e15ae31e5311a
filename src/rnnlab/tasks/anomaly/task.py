"""Training a detector's network on one series: a task of the one training loop.

The windows come from the series' probationary period only (:mod:`rnnlab.tasks.anomaly.detector`
cuts them); the task draws shuffled epochs over them (:class:`rnnlab.experiments.seqtask.EpochBatches`,
its position the data state) and evaluates the loss on the same fixed windows, so ``best.npz``
holds the weights that fit the normal data best. The losses:

* ``pred``: mean squared error of the next value(s);
* ``encdec``: mean squared reconstruction error of the window's value channel;
* ``vae``: Gaussian NLL of the value channel under the decoder's mean and log-variance, plus
  ``beta * KL / L`` (the KL per window spread over its L steps); evaluation uses ``z = mu``.

The VAE's sampling generator belongs to its GaussianLatent layer and is saved in checkpoints
(``Task.rng_modules``), so a resumed run draws the same samples.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...train.batches import EpochBatches
from ...layers import GaussianNLL, MSELoss
from ...module import Module, no_grad
from ...train.task import EvalInterrupted, SourceTask, StepOutput, param_arrays
from .models import make_model
from .spec import DetectorSpec

KIND = "rnnlab.anomaly"


class AnomalyTask(SourceTask):
    name = "anomaly"
    unit = "windows"

    def __init__(self, spec: DetectorSpec | dict, x: np.ndarray, y: np.ndarray | None, *, batch: int = 32,
                 seed: int = 0, beta: float = 1.0, eval_batch: int = 1024, init: dict | None = None) -> None:
        self.spec, self.x, self.beta, self.eval_batch = DetectorSpec.from_dict(spec), x, beta, eval_batch
        self.init = init  # weights to start from (online refits), else the spec's seeded initialisation
        self.y = y if y is not None else x[..., 0]
        self.batches = EpochBatches(x, self.y, max(1, min(batch, len(x))), seed)
        self.mse, self.nll = MSELoss(), GaussianNLL()

    def build_model(self) -> Module:
        model = make_model(self.spec)
        if self.init is not None:
            model.load_state_dict(self.init)
        return model

    def pack_model(self, model: Module) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return param_arrays(model), {"kind": KIND, "model": self.spec.to_dict()}

    def loss(self, model: Module, x: np.ndarray, y: np.ndarray, *, backward: bool,
             eps: np.ndarray | None = None) -> tuple[float, Any]:
        """The task's loss on one batch (and its backward when asked); returns (loss, stack cache)."""
        kind = self.spec.detector
        if kind == "vae":
            (m, v, kl), cache = model.forward(x, eps)
            nll, ncache = self.nll.forward(m, v, y)
            steps = x.shape[1]
            if backward:
                dm, dv = self.nll.backward(1.0, ncache)
                model.backward((dm, dv, self.beta / steps), cache)
            return nll + self.beta * kl / steps, cache.enc
        out, cache = model.forward(x)
        loss, lcache = self.mse.forward(out, y)
        if backward:
            model.backward(self.mse.backward(1.0, lcache), cache)
        return loss, (cache.rnn if kind == "pred" else cache.enc)

    def forward_backward(self, model: Module, batch: tuple, carry: Any) -> StepOutput:
        x, y = batch
        loss, rnn_cache = self.loss(model, x, y, backward=True)
        return StepOutput(loss, len(x), rnn_cache, None)

    def evaluate(self, model: Module, should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        was_training = model.training
        model.eval()
        total = 0.0
        latent = self.spec.latent_size
        try:
            with no_grad():
                for i in range(0, len(self.x), self.eval_batch):
                    if should_stop():
                        raise EvalInterrupted
                    x, y = self.x[i:i + self.eval_batch], self.y[i:i + self.eval_batch]
                    eps = np.zeros((len(x), latent), dtype=x.dtype) if self.spec.detector == "vae" else None
                    total += self.loss(model, x, y, backward=False, eps=eps)[0] * len(x)
        finally:
            model.train(was_training)
        return {"loss": total / len(self.x)}

    def describe_eval(self, metrics: dict[str, float]) -> str:
        return f"probationary-period loss {metrics['loss']:.4g}"
