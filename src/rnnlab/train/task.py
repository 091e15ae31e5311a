"""What a task tells the one training loop: the task object's contract.

The :class:`~rnnlab.train.trainer.Trainer` owns everything that is the same for
every use of the engine: optimizer, learning-rate schedule, clipping, the
divergence guard, checkpoints and exact resume, time and step budgets,
progress, ``metrics.jsonl`` and stopping on Ctrl-C / SIGTERM. Whatever differs
per task lives in one small object with the methods below (the char-LM in
:mod:`rnnlab.tasks.charlm`, the seq-to-one studies in
:mod:`rnnlab.experiments.seqtask`, the tagger in :mod:`rnnlab.tasks.tagging`...).

Data position and randomness: everything the task draws from (its batch
position, shuffling generators) must be captured by :meth:`Task.data_state`
and restored by :meth:`Task.load_data_state`, so that a run stopped after any
step and resumed continues bit for bit. The trainer snapshots the data state
at the start of every step; a step that is cut short (an exception inside it)
is rewound to that snapshot, never half-recorded.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from ..module import Module


class StepOutput(NamedTuple):
    """What one forward/backward pass hands the trainer."""

    loss: float            # the training objective of this batch (mean over its items)
    items: int             # how many items the loss averages over (characters, tokens, windows...)
    rnn_cache: Any = None  # the recurrent stack's cache, for the guard's |h| check and diagnostics
    carry: Any = None      # state to keep for the next batch (truncated BPTT), applied only if the step is


class Selection(NamedTuple):
    """Which validation metric picks ``best.npz``."""

    key: str               # e.g. "loss", "acc", "f1"
    mode: str = "min"      # "min" or "max"

    def better(self, new: float, old: float | None) -> bool:
        if old is None:
            return True
        return new < old if self.mode == "min" else new > old

    def worst(self) -> float:
        return float("inf") if self.mode == "min" else float("-inf")


class EvalInterrupted(Exception):
    """Raised inside :meth:`Task.evaluate` when the run was asked to stop mid-evaluation."""


class Task:
    """Base class of the per-task objects (see the module docstring)."""

    name: str = "task"
    #: unit of the progress rate ("chars", "tokens", "windows", "sequences")
    unit: str = "items"
    #: the validation metric that selects the best checkpoint
    selection: Selection = Selection("loss", "min")
    #: a training loss above this is divergence (e.g. 4 ln V for a softmax over V classes)
    loss_limit: float = float("inf")

    # -- model -------------------------------------------------------------------------
    def build_model(self) -> Module:
        raise NotImplementedError

    def pack_model(self, model: Module) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays (``param/<name>``) and metadata from which :meth:`unpack_model` rebuilds the model."""
        raise NotImplementedError

    def rng_modules(self, model: Module) -> list[tuple[str, Any]]:
        """``(name, module)`` of every module owning a generator ``rng`` (dropout), for checkpoints."""
        return [(name, m) for name, m in model.modules() if hasattr(m, "rng")]

    # -- data ----------------------------------------------------------------------------
    def next_batch(self) -> Any:
        """The next training batch (advances the data position)."""
        raise NotImplementedError

    def data_state(self) -> dict[str, Any]:
        """The data position and generators, JSON-able, taken *between* steps."""
        raise NotImplementedError

    def load_data_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- one step ------------------------------------------------------------------------
    def forward_backward(self, model: Module, batch: Any, carry: Any) -> StepOutput:
        """Forward, loss and backward (gradients accumulated into ``model.grads``)."""
        raise NotImplementedError

    def initial_carry(self, model: Module, batch: Any | None = None) -> Any:
        """The state carried into a batch (None for tasks whose batches are independent)."""
        return None

    def carry_arrays(self, carry: Any) -> tuple[dict[str, np.ndarray], Any]:
        """The carried state as arrays + a JSON skeleton, for checkpoints (none by default)."""
        return {}, None

    def load_carry(self, arrays: dict[str, np.ndarray], skeleton: Any, model: Module) -> Any:
        return self.initial_carry(model)

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, model: Module, should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        """Validation metrics (must include ``selection.key``); raise :class:`EvalInterrupted`
        when ``should_stop()`` turns true mid-way; ``progress(done, total)`` may be called."""
        raise NotImplementedError

    def describe_eval(self, metrics: dict[str, float]) -> str:
        """One line for the log, e.g. ``validation 1.402 bits/char``."""
        return "validation " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())

    def train_record(self, loss: float) -> dict[str, float]:
        """Extra fields of a training row of metrics.jsonl (e.g. bits/char)."""
        return {}

    def target_reached(self, metrics: dict[str, float]) -> bool:
        """True when the task's own stopping target is met (e.g. the adding problem solved)."""
        return False

    def meta(self) -> dict[str, Any]:
        """Anything else the checkpoint should record about the task (JSON-able)."""
        return {}


def param_arrays(model: Module) -> dict[str, np.ndarray]:
    """A model's weights and buffers as checkpoint arrays (``param/<dotted name>``)."""
    return {f"param/{name}": value for name, value in model.state_dict().items()}


class SourceTask(Task):
    """A task whose batches come from a source with ``next()``, ``state()`` and ``load(state)``
    (e.g. shuffled epochs over fixed windows): the data position is the source's state."""

    batches: Any

    def next_batch(self) -> Any:
        return self.batches.next()

    def data_state(self) -> dict[str, Any]:
        return self.batches.state()

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.batches.load(state)
