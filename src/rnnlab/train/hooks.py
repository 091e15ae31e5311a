"""Evaluation hooks: a caller hears every validation score of the one training loop, and may stop it.

>>> with on_evaluation(lambda ev: "pruned" if ev.value > 3.0 else None):
...     run_task(task, cfg, run_dir)      # or any command that trains, several networks included

A hook is called after each evaluation (the scores are written to ``metrics.jsonl`` and the
checkpoints saved), in the thread that registered it, with an :class:`Evaluation`. Returning a
string stops the loop there, as a budget would: the loop returns that string as its stop reason
(``summary["stop"]``), ``last.npz`` is already written, no exception leaves the loop. This is how a
hyper-parameter sweep (:mod:`rnnlab.experiments.sweep`) reports each trial's validation metric
to its pruner and ends the trials the pruner gives up on. Hooks nest; the innermost that asks for
a stop wins. An exception raised by a hook propagates (it is the caller's).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator, NamedTuple


class Evaluation(NamedTuple):
    step: int                    # the optimizer step evaluated after
    metrics: dict[str, float]    # every validation metric of this evaluation
    key: str                     # the metric that selects best.npz
    mode: str                    # "min" or "max"
    final: bool                  # the end-of-run evaluation (the loop stops anyway)
    run_dir: str

    @property
    def value(self) -> float:
        return self.metrics[self.key]


Hook = Callable[[Evaluation], "str | None"]
_HOOKS: contextvars.ContextVar[tuple[Hook, ...]] = contextvars.ContextVar("rnnlab_eval_hooks", default=())


@contextlib.contextmanager
def on_evaluation(hook: Hook) -> Iterator[None]:
    """Call ``hook`` after every evaluation of every training loop run inside the block."""
    token = _HOOKS.set(_HOOKS.get() + (hook,))
    try:
        yield
    finally:
        _HOOKS.reset(token)


def notify(evaluation: Evaluation) -> str | None:
    """Tell every registered hook (innermost last); the stop reason asked for, if any."""
    reason = None
    for hook in _HOOKS.get():
        asked = hook(evaluation)
        if asked:
            reason = str(asked)
    return reason


def active() -> bool:
    return bool(_HOOKS.get())


__all__ = ["Evaluation", "Hook", "active", "notify", "on_evaluation"]
