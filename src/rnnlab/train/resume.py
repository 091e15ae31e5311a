"""What a training checkpoint holds, and how a run continues from one (:class:`Checkpointing`).

A checkpoint (``last.npz``, ``best.npz``; :mod:`rnnlab.checkpoint` writes it atomically) holds
everything the next step depends on, taken at a step boundary: the weights, the optimizer's slots
and scalars, the carried recurrent state, the task's data position and every random generator the
task names (dropout masks, batch order), the loop's counters (step, best, patience, elapsed time,
the learning-rate scale the guard set, a pending evaluation, the guard's history), the weight
average if one is kept, and which BLAS library ran each step product (``RNNLAB_BLAS=auto``; a
resumed run takes the same ones back, :func:`rnnlab.blas.choice.preset`). Restoring all of it is
what makes resume bit-exact: the same batches, masks, updates and metrics as a run never stopped.
The loop that decides *when* a checkpoint may be written is :class:`rnnlab.train.trainer.Trainer`.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..blas import choice as blas_choice
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError
from . import snapshot


class Checkpointing:
    """:meth:`save` and :meth:`restore` of the training loop's whole state (a mixin of ``Trainer``)."""

    def save(self, path: Path, weights: str = "current") -> None:
        """Write a checkpoint; ``weights="average"`` marks one whose parameters are the averaged weights."""
        arrays, meta = self.task.pack_model(self.model)
        opt_arrays, opt_scalars = snapshot.pack_optimizer(self.optimizer)
        carry_arrays, carry_skel = self.task.carry_arrays(self.carry)
        arrays.update(opt_arrays)
        arrays.update(carry_arrays)
        if self.average is not None:
            arrays.update(self.average.arrays())
        meta.update(task=self.task.name, task_meta=self.task.meta(), config=self.cfg.to_dict(),
                    optimizer=opt_scalars, carry=carry_skel, data=self.task.data_state(),
                    rng=snapshot.rng_states(self.task.rng_modules(self.model)),
                    trainer={"step": self.step, "best": self.best, "evals_since_best": self.evals_since_best,
                             "elapsed": self.elapsed, "lr_scale": self.lr_scale, "pending_eval": self.pending_eval,
                             "last_eval_step": self.last_eval_step,
                             "pre_final": list(self._pre_final) if self._pre_final is not None else None,
                             "guard_norms": list(self.guard.norms), "guard_events": self.guard.events,
                             "average_count": self.average.count if self.average is not None else 0,
                             "weights": weights},
                    blas=blas_choice.choices()["chosen"])
        save_checkpoint(path, arrays, meta)

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint written by :meth:`save` (the task checks the model fits)."""
        arrays, meta = load_checkpoint(path)
        try:
            state = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
            self.model.load_state_dict(state)
            snapshot.unpack_optimizer(self.optimizer, arrays, meta["optimizer"])
            self.carry = self.task.load_carry(arrays, meta.get("carry"), self.model)
            self.task.load_data_state(meta["data"] if "data" in meta else meta["batcher"])  # "batcher": before 0.2
            snapshot.set_rng_states(self.task.rng_modules(self.model), meta["rng"])
            t = meta["trainer"]
            self.step, self.evals_since_best = int(t["step"]), int(t["evals_since_best"])
            best = t["best"] if "best" in t else t["best_val"]
            self.best = None if best is None or not math.isfinite(best) else float(best)
            self.elapsed, self.lr_scale = float(t["elapsed"]), float(t["lr_scale"])
            self.pending_eval = bool(t.get("pending_eval", False))
            self.last_eval_step = int(t.get("last_eval_step", self.step))
            self._pre_final = tuple(t["pre_final"]) if t.get("pre_final") is not None else None
            self.guard.norms.extend(t["guard_norms"])
            self.guard.events = int(t["guard_events"])
            if self.average is not None:
                self.average.load(arrays, int(t.get("average_count", 0)))
            blas_choice.preset(meta.get("blas"))   # the step products' libraries it ran with: bit-exact
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot resume from this checkpoint ({exc}); train a new run, or "
                                  "resume from the run's other checkpoint (best.npz / last.npz)") from None
        self.metrics.truncate_after(self.step)
