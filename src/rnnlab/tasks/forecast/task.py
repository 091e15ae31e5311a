"""Training one global forecaster on many series: a task of the one training loop.

Every batch draws ``batch_size`` windows (input ``L`` + horizon ``H``) from all series, a series
chosen uniformly and then a start uniformly within it (:func:`rnnlab.timeseries.windows.sample_windows`,
as the M4 winners trained one network on all series). Windows end before each series' *cutoff*,
``len - holdout - H``: the last ``H`` values before the holdout are the validation slice (never
the test set), and ``holdout`` values at the end (0 for M4, whose test set is a separate file) are
left for a rolling-origin test. The data position is the batch generator's state, so a resumed run
draws the same windows bit for bit.

Validation forecasts the slice from the ``L`` values before it, and reports sMAPE, MASE and OWA
(against Naive2 on the same slice; :mod:`rnnlab.tasks.forecast.metrics`) and the pinball loss;
``best.npz`` has the lowest OWA.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ...timeseries.windows import sample_windows
from ...errors import DataError
from ...module import Module, no_grad
from ...train.task import EvalInterrupted, Selection, StepOutput, Task
from . import features as F
from .baselines import forecast_all
from .config import ForecastConfig
from .frequency import frequency
from .metrics import evaluate, owa
from .model import PinballLoss, backward_model, make_model, network, run_model
from .spec import ForecastSpec, as_spec

KIND = "rnnlab.forecast"


def make_spec(cfg: ForecastConfig, series: Sequence, default_horizon: int | None = None,
              default_season: int | None = None) -> ForecastSpec:
    """The model spec (network and features) for this data, the automatic settings resolved."""
    freq = frequency(cfg.frequency)
    season = cfg.season or (freq.period if freq else 0) or default_season or F.infer_season(series)
    horizon = cfg.horizon or (freq.horizon if freq else 0) or default_horizon or max(2 * season, 8)
    window = cfg.window or (freq.window if freq and not cfg.season else 0) or max(7 * season, 2 * horizon)
    norm = F.choose_norm([np.asarray(getattr(s, "values", s)) for s in series]) if cfg.norm == "auto" else cfg.norm
    periods = tuple(float(p) for p in cfg.periods)
    size = F.feature_size(periods)
    return ForecastSpec(model=cfg.model, cell=cfg.cell, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                        seed=cfg.seed, window=window, horizon=horizon, season=season, norm=norm, base=cfg.base,
                        periods=periods, quantiles=tuple(float(q) for q in sorted(cfg.quantiles)), robust=True,
                        phase=cfg.phase, input_size=size, future_size=size)


def training_min_window(cfg: ForecastConfig, spec: ForecastSpec) -> int:
    """The shortest input length of the short batches (``--min-window``, by default the horizon), or 0 when
    ``--short-share 0`` asks for full windows only."""
    return (cfg.min_window or spec.horizon) if cfg.short_share > 0 else 0


def metric_period(cfg: ForecastConfig, spec: ForecastSpec) -> int:
    """MASE's (and Naive2's) period: --mase-period, else M4's for --frequency, else the model's season."""
    freq = frequency(cfg.frequency)
    return cfg.mase_period or (freq.period if freq else 0) or spec.season


def score(insamples: Sequence[np.ndarray], actual: np.ndarray, forecast: np.ndarray, m: int) -> tuple[float, float]:
    """sMAPE and MASE averaged over all points, the M4 way; series with a constant in-sample part
    (MASE undefined) count in sMAPE only (:func:`rnnlab.tasks.forecast.metrics.evaluate`)."""
    return tuple(evaluate(insamples, actual, forecast, m))


class ForecastTask(Task):
    name = "forecast"
    unit = "windows"
    selection = Selection("owa", "min")

    def __init__(self, spec: ForecastSpec | dict, series: Sequence, *, batch: int = 64, seed: int = 0, holdout: int = 0,
                 eval_batch: int = 512, mase_period: int = 0, min_window: int = 0,
                 short_share: float = 1.0, init_state: dict[str, np.ndarray] | None = None) -> None:
        self.spec, self.batch, self.eval_batch = as_spec(spec), batch, eval_batch
        self.min_window = min_window                # >0: batches of input lengths min_window..window,
        self.short_share = short_share              # a share short_share of them (1: every batch)
        self.init_state = init_state                # weights of a trained model to start from (--init)
        self.m = mase_period or self.spec.season      # the metric's period (validation MASE, Naive2)
        L, H = self.spec.window, self.spec.horizon
        self.ids = [str(getattr(s, "id", k)) for k, s in enumerate(series)]
        self.values = [np.asarray(getattr(s, "values", s), dtype=np.float64) for s in series]
        self.clocks = [F.clock(s, self.spec.clock_phase) for s in series]
        lengths = np.array([len(v) for v in self.values])
        self.cutoff = lengths - holdout - H            # training windows end here
        # a series trains with a window of min(L, cutoff - H) inputs: short histories get shorter windows
        self.trainable = np.flatnonzero(self.cutoff - H >= 1)
        if self.trainable.size == 0:
            raise DataError(f"no series is long enough for one input value, {H} to predict and {H} to validate "
                            f"on (the longest, '{self.ids[int(lengths.argmax())]}', has {int(lengths.max())} "
                            f"values{f' with {holdout} held out' if holdout else ''}); use a shorter --horizon")
        self.mixed = bool((self.cutoff[self.trainable] - H < L).any())
        self.rng = np.random.default_rng([seed, 17])
        self.loss_fn = PinballLoss()
        self._validation_set()

    def length_note(self) -> str | None:
        """One line on the series shorter than a full window (trained with shorter windows) and those too
        short to train or validate on (still forecast), or None when every series holds a full window."""
        L, H = self.spec.window, self.spec.horizon
        short = int(((self.cutoff - H >= 1) & (self.cutoff - H < L)).sum())
        untrained = int((self.cutoff - H < 1).sum())
        if not short and not untrained:
            return None
        parts = []
        if short:
            parts.append(f"{short} series shorter than a full window of {L} train with windows of their length")
        if untrained:
            parts.append(f"{untrained} series have under {2 * H + 1} values and cannot give a training window "
                         f"(they are still forecast, from the values they have)")
        return "; ".join(parts)

    def _validation_set(self) -> None:
        L, H, m = self.spec.window, self.spec.horizon, self.m
        keep = [k for k, c in enumerate(self.cutoff) if c >= 1]
        self.val_rows = np.array(keep, dtype=np.int64)
        ends = self.cutoff[keep] + H
        self.val_start = np.maximum(ends - H - L, 0)
        self.val_x = [self.values[k][s:e - H] for k, s, e in zip(keep, self.val_start, ends)]
        self.val_y = np.stack([self.values[k][e - H:e] for k, e in zip(keep, ends)])
        self.val_insample = [self.values[k][:e - H] for k, e in zip(keep, ends)]
        n2 = forecast_all("naive2", self.val_insample, H, m).forecasts
        self.naive2 = score(self.val_insample, self.val_y, n2, m)
        if self.naive2[0] == 0 or self.naive2[1] == 0:
            # Naive2 is exact on the validation slice (e.g. constant series): OWA is 1 or inf there,
            # no ranking, so best.npz is chosen by sMAPE instead (metrics.py, degenerate cases)
            self.selection = Selection("smape", "min")

    # -- model ---------------------------------------------------------------------------
    def build_model(self) -> Module:
        model = make_model(self.spec)
        if self.init_state is not None:
            model.load_state_dict(self.init_state)
        return model

    def pack_model(self, model: Module) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"param/{name}": value for name, value in model.state_dict().items()}
        return arrays, {"kind": KIND, "model": self.spec.to_dict()}

    # -- data ----------------------------------------------------------------------------
    def next_batch(self) -> tuple[F.Encoded, np.ndarray]:
        L, H = self.spec.window, self.spec.horizon
        if self.mixed:  # the batch's window length is that of a series drawn uniformly (its min(L, cutoff - H))
            k = self.trainable[self.rng.integers(0, self.trainable.size)]
            L = int(min(L, self.cutoff[k] - H))
        if 0 < self.min_window < L and self.short_share > 0 and (self.short_share >= 1
                                                                 or self.rng.random() < self.short_share):
            L = int(self.rng.integers(self.min_window, L + 1))  # histories shorter than the window: trained on
        w = sample_windows(self.values, L, H, self.batch, cutoff=self.cutoff, rng=self.rng)
        e = F.encode(self.spec, w.x, [self.clocks[k] for k in w.series_index], w.start)
        return e, F.targets(self.spec, e, w.y)

    def data_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    # -- one step ------------------------------------------------------------------------
    def forward_backward(self, model: Module, batch: tuple, carry: Any) -> StepOutput:
        e, target = batch
        out, cache = run_model(model, self.spec, e.x, e.u)
        loss, lcache = self.loss_fn.forward(out, target, list(self.spec.quantiles))
        backward_model(model, self.spec, self.loss_fn.backward(1.0, lcache), cache)
        return StepOutput(loss, len(target), network(self.spec).recurrent(cache), None)

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, model: Module, should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        spec, q = self.spec, list(self.spec.quantiles)
        fc = np.zeros(self.val_y.shape)
        loss = 0.0
        for rows, e in encode_groups(spec, self.val_x, [self.clocks[k] for k in self.val_rows], self.val_start,
                                     [self.ids[k] for k in self.val_rows], dtype=model.dtype):
            out = predict_normalised(model, spec, e, self.eval_batch, should_stop)
            loss += self.loss_fn.forward(out, F.targets(spec, e, self.val_y[rows]), q)[0] * len(rows)
            fc[rows] = F.decode(spec, e, out)[..., F.median_index(spec)]
        loss /= len(self.val_y)
        s, q = score(self.val_insample, self.val_y, fc, self.m)
        return {"owa": owa((s, q), self.naive2), "smape": s, "mase": q, "loss": loss}

    def describe_eval(self, metrics: dict[str, float]) -> str:
        return (f"validation OWA {metrics['owa']:.4f} (sMAPE {metrics['smape']:.3f}, MASE {metrics['mase']:.3f}, "
                f"pinball {metrics['loss']:.4f})")

    def meta(self) -> dict[str, Any]:
        return {"series": len(self.values), "naive2_val": list(self.naive2)}


def encode_groups(spec: ForecastSpec, xs: Sequence[np.ndarray], clocks: Sequence, starts: np.ndarray,
                  ids: Sequence[str] | None = None, dtype=np.float32):
    """Windows of different lengths (series shorter than the model's window), encoded in groups of one
    length: yields ``(rows, Encoded)``, ``rows`` the positions of the group's windows in ``xs``."""
    lengths = np.array([len(x) for x in xs], dtype=np.int64)
    starts = np.asarray(starts)
    for n in np.unique(lengths):
        rows = np.flatnonzero(lengths == n)
        yield rows, F.encode(spec, np.stack([xs[i] for i in rows]), [clocks[i] for i in rows], starts[rows],
                             None if ids is None else [ids[i] for i in rows], dtype=dtype)


def predict_normalised(model: Module, spec: ForecastSpec, e: F.Encoded, eval_batch: int = 512,
                       should_stop: Callable[[], bool] = lambda: False) -> np.ndarray:
    """Network outputs ``(N, H, Q)`` for encoded windows, in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    outs = []
    try:
        with no_grad():
            for i in range(0, len(e.x), eval_batch):
                if should_stop():
                    raise EvalInterrupted
                out, _ = run_model(model, spec, e.x[i:i + eval_batch], e.u[i:i + eval_batch])
                outs.append(np.array(out, dtype=np.float64))
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, spec.horizon, spec.num_quantiles))
