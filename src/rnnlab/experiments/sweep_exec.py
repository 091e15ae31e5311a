"""A sweep's trials through an executor (:mod:`rnnlab.train.executor`): ``rnnlab sweep SPACE.toml --ray``.

The driver (this process) holds the study: it asks Optuna for a trial (the sampler draws its
settings here, seeded as in a local sweep), hands ``(spec, command, trial id)`` to the executor,
and when the trial's fit ends tells Optuna its state. Up to ``executor.workers`` trials are in
flight; the next is asked for only after a finished one is told, so the sampler sees every result
so far. A worker (a Ray task) opens the same study storage (``sqlite:///OUT/sweep.db`` by default,
or the ``--storage`` URL: workers on other machines need a URL they can reach), takes the trial by
id and trains it through the task's command and the one training loop, exactly as
:meth:`Sweep._objective` does in a local sweep: it reports each validation score to the storage
and asks the pruner, which sees every other trial's reports there, and keeps a heartbeat.

Failures: a worker that dies under a trial is reported by the executor and the trial is run once
more (the same trial id; its repeated reports are the same numbers and are ignored); if it dies
again the trial is marked FAIL and reported. Ctrl-C (or any error that ends the job) marks every
trial in flight FAIL: interrupted trials are never results.

What matches a local sweep: a trial's fit depends only on its settings (and the fixed seed), so the
same settings give byte-identical intermediate values and trial values on either backend (one
BLAS thread per fit on both). Which settings are drawn: TPE's first ``n_startup_trials`` (10)
trials come from its seeded random sampler in the order asked, the same on both; after those, and
which trials the median pruner stops, depend on which other trials had finished by then, so with
several workers in flight they can differ from a one-at-a-time run.
"""
from __future__ import annotations

import contextlib
import io
import time
import warnings
from pathlib import Path
from typing import Any

from ..train.executor import WorkerLost
from ..train.guard import DivergenceError
from ..train.signals import Interrupted
from .sweep import Sweep, TrialFailed, _TrialLog, make_pruner, require_optuna, suggest


def run_trial(spec: Any, command: Any, out: Path, storage_url: str, study_name: str, trial_id: int) -> dict:
    """One trial in a worker: the study opened from its storage, the trial trained, its outcome returned
    (the driver tells Optuna). An error in the settings (ConfigError) or an interrupt is raised."""
    from .pool import one_blas_thread

    optuna = require_optuna()
    from optuna.storages._heartbeat import get_heartbeat_thread

    sweep = Sweep(spec, command, out=out, storage=storage_url, study=study_name, stream=io.StringIO())
    study = optuna.load_study(study_name=study_name, storage=sweep.storage(),
                              sampler=optuna.samplers.RandomSampler(seed=0),  # never used: the driver sampled
                              pruner=make_pruner(optuna, spec))
    trial = optuna.trial.Trial(study, trial_id)
    outcome: dict[str, Any] = {"state": "COMPLETE", "value": None, "error": None}
    with get_heartbeat_thread(trial_id, study._storage), one_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a retried trial's reports at steps already reported are ignored
        try:
            outcome["value"] = sweep._objective(trial)
        except optuna.TrialPruned:
            outcome["state"] = "PRUNED"
        except (TrialFailed, DivergenceError) as exc:
            outcome.update(state="FAIL", error=f"{type(exc).__name__}: {exc}")
    log = sweep.logs.get(trial.number, _TrialLog())
    outcome.update(values=log.values, pruned_at=log.pruned_at)
    return outcome


def run_on(sweep: Sweep, executor: Any) -> dict[str, Any]:
    """The sweep's trials through ``executor.stream`` (Ray, or ``Serial`` in this process)."""
    require_optuna()
    from optuna.trial import TrialState

    study = sweep.open_study()
    spec = sweep.spec
    if not sweep._begin(study, sweep.finished(study), where=executor.describe()):
        return sweep.summary(study)
    deadline = time.monotonic() + spec.minutes * 60 if spec.minutes else None
    asked: list[Any] = []
    in_flight: dict[int, Any] = {}      # i (the i-th trial asked here) -> its Trial, until told

    def next_args() -> tuple | None:
        if sweep._stop or (deadline is not None and time.monotonic() >= deadline):
            return None
        if spec.n_trials is not None and sweep.finished(study) + len(in_flight) >= spec.n_trials:
            return None
        with warnings.catch_warnings():  # Optuna warns that heartbeats are meant for optimize(): ours are the workers'
            warnings.simplefilter("ignore", UserWarning)
            trial = study.ask()
        for p in spec.space.values():
            suggest(trial, p)
        trial.set_user_attr("command", sweep.command.command_line(trial.params))
        in_flight[len(asked)] = trial
        asked.append(trial)
        return (spec, sweep.command, sweep.out, sweep.storage_url, sweep.study_name, trial._trial_id)

    def on_result(i: int, outcome: Any) -> None:
        trial = in_flight.pop(i)
        if isinstance(outcome, WorkerLost):
            sweep._line(f"trial {trial.number}: its worker died twice; the trial is marked FAIL ({outcome})")
            outcome = {"state": "FAIL", "value": None, "values": [], "pruned_at": None, "error": str(outcome)}
        sweep.logs[trial.number] = _TrialLog([tuple(v) for v in outcome["values"]], outcome["pruned_at"])
        if outcome["state"] == "COMPLETE":
            frozen = study.tell(trial, outcome["value"])
        else:
            frozen = study.tell(trial, state=TrialState[outcome["state"]])
        sweep._after_trial(study, frozen)

    try:
        executor.stream(run_trial, next_args, on_result=on_result)
    except KeyboardInterrupt as exc:
        _fail(study, in_flight)
        sweep._line("interrupted: the trials in progress are marked FAIL; rerun the same command to continue "
                    "the study")
        raise exc if isinstance(exc, Interrupted) else Interrupted(130) from None
    except BaseException:
        _fail(study, in_flight)
        raise
    finally:
        if sweep._bar is not None:
            sweep._bar.close()
            sweep._bar = None
    return sweep.summary(study)


def _fail(study: Any, in_flight: dict[int, Any]) -> None:
    from optuna.trial import TrialState

    for trial in in_flight.values():
        with contextlib.suppress(Exception):  # finished meanwhile, or the storage is gone
            study.tell(trial, state=TrialState.FAIL)
    in_flight.clear()
