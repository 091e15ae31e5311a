"""The forecasting API: train a run (``rnnlab forecast train``) and :class:`Forecaster`.

>>> from rnnlab.tasks.forecast import Forecaster
>>> fc = Forecaster(cell="gru", window=168, horizon=48).fit("m4-hourly", data_dir="../shared/data",
...                                                          max_minutes=10)
>>> f = fc.predict(series)              # Forecast: .point (N, H), .lower, .upper, .quantiles
>>> fc.evaluate(series, actuals)        # {"smape", "mase", "owa", ...} beside Naive2
>>> fc.save("model.npz"); fc = Forecaster.load("model.npz")   # or a run folder

``Forecaster.load`` also takes several run folders (an ensemble of seeds): their forecasts are
averaged quantile by quantile.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ...blas import precision
from ...checkpoint import load_checkpoint, save_checkpoint
from ...errors import CheckpointError, ConfigError, DataError, InputWarning
from ...train import Progress, run_task
from ...train.job import Job, open_job
from ...train.loopconfig import BUDGET_FIELDS
from ...train.runs import BEST, find_checkpoint
from . import features as F
from .baselines import forecast_all
from .data import as_series, check_horizon, last_values, load_dataset
from .metrics import owa
from .model import make_model
from .spec import ForecastSpec, as_spec
from .task import (KIND, ForecastConfig, ForecastTask, encode_groups, make_spec, metric_period,
                   predict_normalised, score, training_min_window)


class Forecast(NamedTuple):
    ids: list
    point: np.ndarray       # (N, H) the median (quantile nearest 0.5)
    quantiles: np.ndarray   # (N, H, Q)
    levels: list            # the Q quantile levels
    seconds: float

    @property
    def lower(self) -> np.ndarray:
        return self.quantiles[..., 0]

    @property
    def upper(self) -> np.ndarray:
        return self.quantiles[..., -1]


def train_run(cfg: ForecastConfig, out: str | None = None, resume: str | None = None, force: bool = False,
              log: Callable[[str], None] = print, progress: Progress | None = None,
              series: Sequence | None = None, given: dict | None = None,
              flags: dict | None = None) -> tuple[dict, Path]:
    """Train (or resume) a forecaster run folder; returns the trainer's summary and the folder.

    On resume the run's own settings stand; ``given`` holds those the user gave: budget ones
    replace the run's budget, ``data_dir`` its data folder, others must equal the run's
    (:func:`~rnnlab.train.job.resumed_config`; ``flags`` names their flags where they are not
    ``--field-name``). ``given=None`` (the API) takes the budget fields of ``cfg`` that differ
    from the defaults."""
    if given is None:  # the API: budget fields of cfg that differ from the defaults count as given
        given = {k: getattr(cfg, k) for k in BUDGET_FIELDS if getattr(cfg, k) != getattr(ForecastConfig(), k)}
    with open_job("forecast", ForecastConfig, cfg, out=out, resume=resume, force=force, given=given,
                  flags=flags) as job:
        return _train_run(job, log, progress, series)


def _train_run(job: Job, log: Callable[[str], None], progress: Progress | None,
               series: Sequence | None) -> tuple[dict, Path]:
    cfg, ckpt, meta, run_dir = job.cfg, job.ckpt, job.meta, job.run_dir
    cfg.validate()
    precision.check(cfg.precision)   # one line naming the missing CPU feature or package, before any work
    if series is None:
        ds = load_dataset(cfg.data, cfg.data_dir)
        series, horizon, season = ds.series, ds.horizon, ds.season
    else:
        series, horizon, season = as_series(series), None, None
    series = last_values(series, cfg.history)
    spec = make_spec(cfg, series, horizon, season)
    if ckpt is not None:
        saved = ForecastSpec.from_dict(meta.get("model"), f"{ckpt}: model")
        # runs made before the robust level (robust False) and before the phase counted from the end (no phase)
        spec = spec.replace(robust=saved.robust, phase=saved.phase)
    if cfg.test and not Path(cfg.test).is_file():
        raise DataError(f"--test {cfg.test}: no such file; give the test values (M4's wide layout or long)")
    if ckpt is not None and meta.get("model") != spec.to_dict():
        raise CheckpointError(f"{ckpt}: the run's model differs from what these settings and data give")
    init_state = _init_state(cfg.init, spec) if cfg.init and ckpt is None else None
    task = ForecastTask(spec, series, batch=cfg.batch_size, seed=cfg.seed, holdout=cfg.holdout,
                        eval_batch=cfg.eval_batch, mase_period=metric_period(cfg, spec),
                        min_window=training_min_window(cfg, spec),
                        short_share=cfg.short_share, init_state=init_state)
    log(f"rnnlab forecast train: {len(series)} series from {cfg.data}; {spec.model} {spec.cell} "
        f"{spec.hidden_size} units, window {spec.window}, horizon {spec.horizon}, season "
        f"{spec.season}, MASE period {task.m}, {spec.norm} scale; run folder {run_dir}")
    if init_state is not None:
        log(f"starting from the weights of {cfg.init}")
    log(f"validation Naive2: sMAPE {task.naive2[0]:.3f}, MASE {task.naive2[1]:.3f}")
    if task.length_note():
        log(task.length_note())
    if task.selection.key != "owa":
        log("Naive2 is exact on the validation slice, so OWA cannot rank models: best.npz selects on sMAPE")
    if progress is None:
        progress = Progress(loss_label=lambda loss: f"pinball {loss:.4f}")
    summary = run_task(task, cfg, run_dir, resume_from=ckpt, log=log, progress=progress)
    return summary, run_dir


def _init_state(path: str, spec: ForecastSpec | dict) -> dict:
    """The weights of the run (or model file) ``path``, checked against the network ``spec`` describes: one
    line naming --init when a shape differs."""
    if not Path(path).exists():
        raise ConfigError(f"--init {path}: no such run folder or model file")
    their, state, _ = _load_member(path)
    spec = as_spec(spec)
    own = make_model(spec).state_dict()
    for name, value in own.items():
        if name not in state or state[name].shape != value.shape:
            got = "missing" if name not in state else f"{tuple(state[name].shape)}"
            keys = ("model", "cell", "hidden_size", "num_layers", "quantiles", "periods")
            theirs = ", ".join(f"{k} {list(v) if isinstance(v, tuple) else v}" for k in keys
                               if (v := getattr(their, k)) != getattr(spec, k))
            raise ConfigError(f"--init {path}: its network does not fit these settings ({name}: {got}, these settings "
                              f"need {tuple(value.shape)}; the run has {theirs or 'other shapes'}); train with the "
                              f"same --model/--cell/--hidden-size/--layers/--quantiles as that run")
    return {name: np.asarray(state[name]) for name in own}


def warn_absurd(series: Sequence, window: int) -> None:
    """A warning (``InputWarning``) naming the first absurd value in each series' input window: the
    forecast is still made (inputs are scaled robustly and clipped), but the user should look."""
    for s in series:
        start = max(0, len(s) - window)
        bad = F.absurd_values(s.values[start:])
        if bad.size:
            i = start + int(bad[0])
            when = f" ({s.timestamps[i]})" if getattr(s, "timestamps", None) is not None else ""
            more = f", and {bad.size - 1} more" if bad.size > 1 else ""
            warnings.warn(f"series '{s.id}': value {i + 1}{when} is {s.values[i]:.6g}, over 1000 robust "
                          f"deviations from the series' median{more}; check that row (the forecast scales "
                          f"it down, robustly)", InputWarning, stacklevel=3)


def _load_member(path: str | Path) -> tuple[ForecastSpec, dict, dict]:
    p = Path(path)
    ckpt = find_checkpoint(p, prefer=BEST) if p.is_dir() else p
    arrays, meta = load_checkpoint(ckpt)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{ckpt} is not a forecaster (kind {meta.get('kind')!r}); give a run of "
                              f"'rnnlab forecast train'")
    state = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    return ForecastSpec.from_dict(meta.get("model"), f"{ckpt}: model"), state, meta.get("config", {})


class Forecaster:
    """A global recurrent forecaster (one network for all series); see the module docstring."""

    def __init__(self, **settings: Any) -> None:
        self.cfg = ForecastConfig(**settings)
        self.members: list[tuple[ForecastSpec, Any]] = []   # (spec, model)
        self.run_dir: Path | None = None
        self.summary: dict | None = None

    @property
    def spec(self) -> ForecastSpec:
        if not self.members:
            raise CheckpointError("this Forecaster is not trained yet; call fit() or Forecaster.load()")
        return self.members[0][0]

    def fit(self, data, *, data_dir: str | None = None, out: str | None = None, force: bool = True,
            log: Callable[[str], None] = lambda s: None, **loop: Any) -> "Forecaster":
        """Train on ``m4-hourly``, a CSV path, or a list of series / arrays (``loop``: budgets, lr...)."""
        series = None if isinstance(data, (str, Path)) else data
        self.cfg = dataclasses.replace(self.cfg, data=str(data) if series is None else "<python>",
                                       data_dir=data_dir, **loop)
        import tempfile
        out = out or tempfile.mkdtemp(prefix="rnnlab-forecast-")
        self.summary, self.run_dir = train_run(self.cfg, out, force=force, log=log,
                                               progress=Progress(enabled=False), series=series)
        spec, state, _ = _load_member(self.run_dir)
        self.members = [(spec, self._model(spec, state))]
        return self

    @staticmethod
    def _model(spec: ForecastSpec, state: dict) -> Any:
        model = make_model(spec)
        model.load_state_dict(state)
        return model.eval()

    @classmethod
    def load(cls, *paths: str | Path) -> "Forecaster":
        """A run folder (its best.npz), a checkpoint or a saved model; several make an ensemble."""
        fc = cls()
        for p in paths:
            spec, state, config = _load_member(p)
            if fc.members and spec.replace(seed=0) != fc.spec.replace(seed=0):
                raise CheckpointError(f"{p}: its model differs from the first one's; an ensemble needs runs "
                                      f"with the same settings (seeds may differ)")
            fc.members.append((spec, cls._model(spec, state)))
            if config:
                fc.cfg = ForecastConfig.from_dict(config)
        if paths and Path(paths[0]).is_dir():
            fc.run_dir = Path(paths[0])
        return fc

    def save(self, path: str | Path) -> Path:
        spec, model = self.members[0]
        arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
        save_checkpoint(Path(path), arrays, {"kind": KIND, "model": spec.to_dict(), "config": self.cfg.to_dict()})
        return Path(path)

    def predict(self, series, horizon: int | None = None) -> Forecast:
        """Forecast the ``horizon`` values after the end of each series."""
        spec = self.spec
        series = as_series(series)
        h = check_horizon(horizon, spec.horizon)
        start = time.perf_counter()
        L = spec.window
        xs = [s.values[-L:] for s in series]        # a series shorter than the window: all its values
        warn_absurd(series, L)
        starts = np.array([len(s) - len(x) for s, x in zip(series, xs)])
        clocks, ids = [F.clock(s, spec.clock_phase) for s in series], [s.id for s in series]
        q = np.zeros((len(series), spec.horizon, spec.num_quantiles))
        for rows, e in encode_groups(spec, xs, clocks, starts, ids):
            q[rows] = np.mean([F.decode(sp, e, predict_normalised(model, sp, e)) for sp, model in self.members],
                              axis=0)
        q = q[:, :h]
        return Forecast([s.id for s in series], q[..., F.median_index(spec)], q, list(spec.quantiles),
                        time.perf_counter() - start)

    def evaluate(self, series, actuals, season: int | None = None) -> dict:
        """sMAPE, MASE and OWA (against Naive2) of the forecasts of ``actuals (N, H)``."""
        series = as_series(series)
        actuals = np.asarray(actuals, dtype=np.float64).reshape(len(series), -1)
        m = season or self.spec.season
        f = self.predict(series, actuals.shape[1])
        xs = [s.values for s in series]
        n2 = score(xs, actuals, forecast_all("naive2", xs, actuals.shape[1], m).forecasts, m)
        s, q = score(xs, actuals, f.point, m)
        coverage = float(np.mean((actuals >= f.lower) & (actuals <= f.upper)))
        return {"smape": s, "mase": q, "owa": owa((s, q), n2), "coverage": coverage, "seconds": f.seconds}
