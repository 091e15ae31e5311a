"""Hyper-parameter sweeps on Optuna (``rnnlab sweep SPACE.toml``), for any task's command.

Each trial is one run of the task's own training command with the sampled flags, in its own folder
(``OUT/trial-<number>``), through the one training loop; the loop tells the trial every validation
score (:mod:`rnnlab.train.hooks`), the trial reports it to Optuna, and when the pruner (median by
default) gives up on the trial the hook ends the loop there, cleanly, like a budget. The trial's
value is its best validation score (the one ``best.npz`` holds). A command whose result is not a
training loop's score (``detect nab``: a NAB score over a corpus) gives its value when it ends, and
is not pruned.

The study lives in a database (``sqlite:///OUT/sweep.db`` by default): rerunning the command
continues it, and the same command started on other machines with one database URL
(``postgresql://...``) joins it. ``n_trials`` counts the finished (complete or pruned) trials of
the study, over every invocation and machine. A trial stopped by Ctrl-C or SIGTERM is marked FAIL
and the sweep stops (exit 130/143); a trial whose process was killed is left RUNNING until its
heartbeat is stale, then marked FAIL by the next worker. Failed trials are never results.

Optuna is an optional extra (``pip install rnnlab[sweep]``), imported only here.
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from ..errors import ConfigError, RnnlabError
from ..io.atomic import atomic_write
from ..train.guard import DivergenceError
from ..train.hooks import Evaluation, on_evaluation
from ..train.signals import Interrupted
from .sweep_spec import Param, SweepSpec

HEARTBEAT_S, GRACE_S = 30, 120
MAX_FAILS_IN_A_ROW = 3


class TrialCommand(Protocol):
    """What the sweep needs of a task's command (given by :mod:`rnnlab.commands.sweep`)."""

    title: str                  # "rnnlab train"
    metric: str                 # the default metric (the task's selection key)
    direction: str              # its direction, "minimize" or "maximize"
    reports: bool               # True: the metric comes from the loop's evaluations (prunable)

    def run(self, params: dict[str, Any], out: Path) -> int: ...      # exit status of the command
    def command_line(self, params: dict[str, Any]) -> str: ...
    def result(self, out: Path, metric: str) -> float | None: ...     # when not ``reports``


class TrialFailed(RnnlabError):
    """A trial's command ended without a result (an error, no evaluation): the trial is FAIL, the sweep goes on."""


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("rnnlab sweep needs Optuna: pip install 'rnnlab[sweep]' (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is ours to print
    return optuna


def make_pruner(optuna: Any, spec: SweepSpec) -> Any:
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_steps)
    return optuna.pruners.NopPruner()


def suggest(trial: Any, p: Param) -> Any:
    if p.kind == "categorical":
        return trial.suggest_categorical(p.name, list(p.choices))
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.name, float(p.low), float(p.high), step=p.step, log=p.log)


@dataclass
class _TrialLog:
    values: list[tuple[int, float]] = field(default_factory=list)
    pruned_at: int | None = None


class Sweep:
    """One invocation of a sweep: ``Sweep(spec, command, out=..., storage=..., study=...).run()``."""

    def __init__(self, spec: SweepSpec, command: TrialCommand, *, out: Path, storage: str | None = None,
                 study: str | None = None, stream: TextIO | None = None) -> None:
        self.spec, self.command, self.out = spec, command, Path(out)
        self.metric = spec.metric or command.metric
        self.direction = spec.direction or (command.direction if self.metric == command.metric else None)
        if self.direction is None:
            raise ConfigError(f"{spec.path}: direction: say whether metric {self.metric!r} is to be minimized "
                              "or maximized (direction = \"minimize\" or \"maximize\")")
        self.storage_url = storage or f"sqlite:///{(self.out / 'sweep.db').resolve()}"
        self.study_name = study or spec.study or spec.path.stem
        self.stream = stream or sys.stderr
        self.logs: dict[int, _TrialLog] = {}
        self.fails_in_a_row = 0
        self._stop = False
        self._started = 0.0
        self._done_here = 0
        self._bar: Any = None

    # -- the study ---------------------------------------------------------------------------
    def open_study(self) -> Any:
        optuna = require_optuna()
        url = self.storage_url
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        try:
            storage = self.storage()
        except Exception as exc:  # a bad URL, a missing driver, an unreachable server
            raise ConfigError(f"--storage {url}: cannot open the study database ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else exc})") from None
        spec = self.spec
        pruner = make_pruner(optuna, spec)
        existing = 0
        with contextlib.suppress(KeyError):
            existing = len(optuna.load_study(study_name=self.study_name, storage=storage).trials)
        sampler = optuna.samplers.TPESampler(seed=spec.seed + existing)  # a resumed study draws anew
        study = optuna.create_study(storage=storage, study_name=self.study_name, direction=self.direction,
                                    sampler=sampler, pruner=pruner, load_if_exists=True)
        if study.direction.name.lower() != self.direction:
            raise ConfigError(f"study {self.study_name!r} in {url} is to {study.direction.name.lower()} its "
                              f"metric, not {self.direction}; choose another --study")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return study

    def storage(self) -> Any:
        """The study's storage as a worker opens it (the URL was checked by :meth:`open_study`)."""
        optuna = require_optuna()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(self.storage_url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)

    def finished(self, study: Any) -> int:
        from optuna.trial import TrialState

        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def run(self) -> dict[str, Any]:
        """Run trials until ``n_trials`` / ``minutes``, one at a time in this process (``study.optimize``);
        through an executor (Ray): :func:`rnnlab.experiments.sweep_exec.run_on`."""
        optuna = require_optuna()
        study = self.open_study()
        spec = self.spec
        n_before = self.finished(study)
        if not self._begin(study, n_before):
            return self.summary(study)

        def stop_if_asked(study: Any, frozen: Any) -> None:
            self._after_trial(study, frozen)
            if self._stop:
                study.stop()
        callbacks = [stop_if_asked]
        if spec.n_trials is not None:
            callbacks.insert(0, optuna.study.MaxTrialsCallback(
                spec.n_trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))
        try:
            study.optimize(self._objective, timeout=spec.minutes * 60 if spec.minutes else None,
                           callbacks=callbacks, catch=(TrialFailed, DivergenceError), gc_after_trial=False)
        except KeyboardInterrupt as exc:  # Interrupted (the trial's loop stopped on a signal) or a bare Ctrl-C
            self._fail_running(study)
            code = getattr(exc, "exit_code", 130)
            self._line(f"interrupted: the trial in progress is marked FAIL; rerun the same command to continue "
                       f"the study")
            raise Interrupted(code) from None
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        return self.summary(study)

    def _begin(self, study: Any, n_before: int, where: str = "") -> bool:
        """The first line and the progress bar; False when the study already has its ``n_trials``."""
        spec = self.spec
        if spec.n_trials is not None and n_before >= spec.n_trials:
            self._line(f"study {self.study_name!r} already has {n_before} finished trials (n_trials = "
                       f"{spec.n_trials}); raise n_trials to run more")
            return False
        self._line(f"study {self.study_name!r} ({self.storage_url}): {n_before} finished trials so far; "
                   f"{self.direction} validation {self.metric}"
                   + (f", up to {spec.n_trials} trials" if spec.n_trials else "")
                   + (f", {spec.minutes:g} minutes" if spec.minutes else "")
                   + (f"; trials on {where}" if where else ""))
        self._started = time.monotonic()
        self._total = spec.n_trials - n_before if spec.n_trials else None
        self._bar = _bar(self.stream, self._total)
        return True

    def _fail_running(self, study: Any) -> None:
        """Our own trial left RUNNING by an interrupt outside the objective: FAIL, never a result."""
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number in self.logs:
                with contextlib.suppress(Exception):
                    study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)

    # -- one trial ---------------------------------------------------------------------------
    def _objective(self, trial: Any) -> float:
        optuna = sys.modules["optuna"]
        params = {name: suggest(trial, p) for name, p in self.spec.space.items()}
        log = self.logs.setdefault(trial.number, _TrialLog())
        folder = self.out / f"trial-{trial.number:04d}"
        t0 = time.monotonic()
        trial.set_user_attr("command", self.command.command_line(params))
        trial.set_user_attr("run_dir", str(folder))

        def hook(ev: Evaluation) -> str | None:
            if self.metric not in ev.metrics:
                raise ConfigError(f"{self.spec.path}: metric: {self.metric!r} is not a validation metric of "
                                  f"{self.command.title} (it reports: {', '.join(sorted(ev.metrics))})")
            value = float(ev.metrics[self.metric])
            log.values.append((ev.step, value))
            if ev.final or not math.isfinite(value) or (log.values[:-1] and ev.step <= log.values[-2][0]):
                return None
            trial.report(value, ev.step)
            if trial.should_prune():
                log.pruned_at = ev.step
                return "pruned"
            return None

        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "log.txt", "w", encoding="utf-8") as f, \
                contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            with on_evaluation(hook) if self.command.reports else contextlib.nullcontext():
                try:
                    code = self.command.run(params, folder)
                except (DivergenceError, TrialFailed) as exc:
                    print(f"error: {exc}", file=f)
                    raise
                except RnnlabError as exc:  # the settings cannot run: the same for every trial; stop
                    raise ConfigError(f"trial {trial.number} ({self.command.command_line(params)}): {exc}") from None
        trial.set_user_attr("seconds", time.monotonic() - t0)
        if code in (130, 143):
            raise Interrupted(code)
        if code:
            raise TrialFailed(f"exit status {code}; see {folder / 'log.txt'}")
        if log.pruned_at is not None:
            trial.set_user_attr("pruned_at", log.pruned_at)
            raise optuna.TrialPruned(f"pruned at step {log.pruned_at}")
        if self.command.reports:
            finite = [v for _, v in log.values if math.isfinite(v)]
            if not finite:
                raise TrialFailed(f"no validation {self.metric} was reported; see {folder / 'log.txt'}")
            return min(finite) if self.direction == "minimize" else max(finite)
        value = self.command.result(folder, self.metric)
        if value is None or not math.isfinite(value):
            raise TrialFailed(f"no {self.metric} in the command's results; see {folder / 'log.txt'}")
        return float(value)

    def _after_trial(self, study: Any, frozen: Any) -> None:
        state = frozen.state.name
        self._done_here += 1
        self.fails_in_a_row = self.fails_in_a_row + 1 if state == "FAIL" else 0
        log = self.logs.get(frozen.number, _TrialLog())
        if state == "COMPLETE":
            what = f"{self.metric} {frozen.value:.5g}"
        elif state == "PRUNED":
            last = log.values[-1][1] if log.values else float("nan")
            what = f"pruned at step {log.pruned_at} ({self.metric} {last:.5g})"
        else:
            what = f"FAIL (see {frozen.user_attrs.get('run_dir', self.out)}/log.txt)"
        try:
            best = f"best {study.best_value:.5g} (trial {study.best_trial.number})"
        except ValueError:
            best = "no result yet"
        spent = time.monotonic() - self._started
        count = f"{self._done_here}/{self._total}" if self._total else f"{self._done_here}"
        eta = ""
        if self._total:
            left = spent / self._done_here * max(self._total - self._done_here, 0)
            eta = f", ETA {_clock(min(left, self.spec.minutes * 60 - spent) if self.spec.minutes else left)}"
        elif self.spec.minutes:
            eta = f", {_clock(max(self.spec.minutes * 60 - spent, 0))} left"
        if self._bar is not None:
            self._bar.update(1)
        params = " ".join(f"{k}={_show(v)}" for k, v in frozen.params.items())
        self._line(f"[{count}] trial {frozen.number}: {what}; {best}; {_clock(spent)} spent{eta}  {params}")
        if self.fails_in_a_row >= MAX_FAILS_IN_A_ROW:
            self._line(f"{MAX_FAILS_IN_A_ROW} trials in a row failed; stopping (see their log.txt)")
            self._stop = True

    def _line(self, text: str) -> None:
        if getattr(self, "_bar", None) is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    # -- results -----------------------------------------------------------------------------
    def summary(self, study: Any) -> dict[str, Any]:
        trials = []
        for t in study.get_trials(deepcopy=False):
            trials.append({"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
                           "pruned_at": t.user_attrs.get("pruned_at"), "seconds": t.user_attrs.get("seconds"),
                           "intermediate": {int(k): v for k, v in t.intermediate_values.items()}})
        counts = {s: sum(1 for t in trials if t["state"] == s) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
        result: dict[str, Any] = {"study": self.study_name, "storage": self.storage_url, "metric": self.metric,
                                  "direction": self.direction, "counts": counts, "trials": trials, "best": None}
        if counts["COMPLETE"]:
            best = study.best_trial
            result["best"] = {"number": best.number, "value": best.value, "params": best.params,
                              "command": self.command.command_line(best.params)}
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.out / "sweep.json") as f:
            f.write(json.dumps(result, indent=1).encode("utf-8"))
        return result


def _bar(stream: TextIO, total: int | None) -> Any:
    """A progress bar over the trials on a terminal (tqdm, the 'progress' extra); None elsewhere, where the
    line printed after each trial (count, best so far, time spent, ETA) is the progress."""
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=stream, desc="sweep", unit="trial", dynamic_ncols=True, leave=False)


def _show(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _clock(seconds: float) -> str:
    m, s = divmod(int(max(seconds, 0)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
