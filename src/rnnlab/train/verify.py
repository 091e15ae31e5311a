"""Check that a task resumes exactly: the test every task of the one loop must pass.

``check_exact_resume(make_task, cfg, workdir, stop_at)`` trains a run straight
through, then the same run stopped inside step ``stop_at + 1`` (a
KeyboardInterrupt raised in the middle of the step, the worst moment) and
resumed from its ``last.npz``, and asserts that both end with identical
metrics (every row but the timings) and bit-identical ``last.npz`` and
``best.npz``. ``check_guard_refused_all(run, before)`` checks a run of poisoned
batches: the divergence guard refused every step. Use them on a task of your own::

    check_exact_resume(lambda: MyTask(...), LoopConfig(max_steps=20, eval_every=5), tmp_path, stop_at=7)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..checkpoint import load_checkpoint
from .progress import MetricsLog, Progress
from .runs import prepare_run_dir
from .task import Task
from .trainer import Trainer

TIMINGS = ("time", "elapsed", "rate")


def _stopping_trainer(stop_at: int) -> type:
    class StopsOnce(Trainer):
        stopped = False

        def train_step(self):  # type: ignore[override]
            if self.step == stop_at and not StopsOnce.stopped:
                StopsOnce.stopped = True
                self.task.next_batch()          # the batch is drawn, then the interrupt lands
                raise KeyboardInterrupt
            return super().train_step()

    return StopsOnce


def metric_rows(run: Path) -> list[dict]:
    """A run's metrics without the timings (which differ between any two runs)."""
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in MetricsLog(Path(run) / "metrics.jsonl").read()]


def check_guard_refused_all(run: str | Path, before: dict[str, np.ndarray]) -> None:
    """For a run whose every step was non-finite (poisoned batches): its metrics have guard rows, and
    its ``last.npz``, if one was written, holds the weights ``before`` it started (nothing was applied)."""
    run = Path(run)
    assert [r for r in MetricsLog(run / "metrics.jsonl").read() if r.get("split") == "guard"]
    if (run / "last.npz").exists():
        arrays = load_checkpoint(run / "last.npz")[0]
        for name, value in before.items():
            np.testing.assert_array_equal(arrays[f"param/{name}"], value)


def check_exact_resume(make_task: Callable[[], Task], cfg: Any, workdir: str | Path, stop_at: int) -> dict:
    """Assert that stopping at ``stop_at`` and resuming equals the uninterrupted run; returns the
    interrupted session's summary."""
    from . import run_task

    quiet: dict[str, Any] = dict(log=lambda *a: None, progress=Progress(enabled=False))
    workdir = Path(workdir)
    full = prepare_run_dir(str(workdir / "full"), force=True)
    run_task(make_task(), cfg, full, **quiet)
    part = prepare_run_dir(str(workdir / "part"), force=True)
    first = run_task(make_task(), cfg, part, trainer_cls=_stopping_trainer(stop_at), **quiet)
    assert first["steps"] == stop_at and first["exit_code"] == 130, first
    run_task(make_task(), cfg, part, resume_from=part / "last.npz", **quiet)
    assert metric_rows(full) == metric_rows(part), "the resumed run's metrics differ from the straight run's"
    for name in ("last.npz", "best.npz"):
        a, b = load_checkpoint(full / name)[0], load_checkpoint(part / name)[0]
        assert a.keys() == b.keys(), name
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")
    return first
