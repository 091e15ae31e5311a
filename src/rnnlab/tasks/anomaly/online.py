"""The ``online`` detector: a small LSTM forecaster that learns as the rows arrive, as HTM does.

The other detectors fit on the probationary period and then (apart from refits every 500 rows)
freeze. This one streams through the series once, in blocks of ``k = online_every`` rows:

1. **score first**: rows t..t+k-1 are forecast from the window of the L rows before each, by the
   model *as it was before it saw any of them* (so row t's forecast never uses row t or later);
   the measure is the forecast error e_t (in the series' robust units, see below);
2. **then learn**: one Adam step (``online_lr``) on a batch of ``online_batch`` windows: the k
   newest ones (rows t..t+k-1 as targets) and the rest drawn at random from the last
   ``online_memory`` rows (a replay memory, so a daily cycle learned yesterday is not forgotten
   by the last hour's rows). The loss is the Huber loss of the errors (``online_clip`` robust
   units): one absurd row moves the weights no more than a large ordinary one;
3. at the end of the probationary period (rows not scored by NAB) the model also takes
   ``online_warm`` extra steps on batches of probationary windows, so it starts the scored
   rows knowing the probationary rows well (NAB's rules allow any use of those rows).

Inputs (per row): the value scaled with the median and robust sd (MAD) of the probationary rows,
values beyond 20 units compressed logarithmically (:mod:`rnnlab.tasks.anomaly.robust`); hour-of-
day and day-of-week when timestamps are given; and, with ``online_scales = "16,128"``, the means
of the scaled value over the last 16 and 128 rows (inputs at several time scales; each uses rows
up to its own only).

Raw measure: ``max(|e_t| - F, 0)`` with the noise floor ``F = online_floor`` robust units, divided
by the typical such error of the ``online_norm`` rows before row t plus F (``pred`` renews its
reference statistics on the recent rows in the same spirit), capped at RAW_CAP; errors below F
count 0 and within F / 2 the model takes no step; then, with ``online_log`` (the default), its
logarithm ``log(1 + x)``. (``|e|``, not ``e^2`` as ``pred``: the squared error's heavy tail made
ordinary daily errors look rare to the likelihood, 47.2 against 62.8 on artificialWithAnomaly in
development. The logarithm tames the same tail further: one row forecast 50 typical errors off
counts about 4, not 50, in the likelihood's short-window mean, so a single wild row no longer
outscores a run of clearly wrong rows, the mark of a changed pattern; docs/anomaly.md.) A flat
line or a clean square wave, once learned to within the floor, gives a raw measure of 0 and the
likelihood little to flag. The raw measure goes to the anomaly likelihood and range alarms as for
every detector (:mod:`rnnlab.tasks.anomaly.detector`).

Two networks (``online_season = "pick"``, the default): one with the value a day before each row
as a further input (:func:`season_column`), one without, both stream as above (twice the cost);
row t takes the raw measure of the one whose clipped forecast errors over the ``online_pick`` rows
before t summed lower (:func:`pick_season`): the season input helps where a daily pattern must be
expected at its hour (NAB's artificial daily jumps) and hurts where yesterday misleads, and which
holds shows in the recent errors, never in a later row.

Everything is seeded by the member's seed: the same series and seed give the same scores, byte
for byte. The network is :class:`~rnnlab.models.seqmodel.SeqModel` (LSTM -> Linear on the last
step), the same gradient-checked, torch-matched network as ``pred``; the update is the engine's
:class:`~rnnlab.optim.adam.Adam`.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from ...models.seqmodel import SeqModel
from ...module import no_grad
from ...train.online import OnlineLearner
from ...train.signals import Interrupted, StopSignals
from .robust import RAW_CAP


def scale_features(feats: np.ndarray, scales: tuple[int, ...]) -> np.ndarray:
    """``feats`` with, per scale w, the mean of column 0 over rows max(0, t-w+1)..t appended."""
    if not scales:
        return feats
    v = feats[:, 0].astype(np.float64)
    c = np.concatenate([[0.0], np.cumsum(v)])
    t = np.arange(len(v))
    cols = [feats]
    for w in scales:
        lo = np.maximum(0, t - w + 1)
        cols.append(((c[t + 1] - c[lo]) / (t + 1 - lo))[:, None].astype(feats.dtype))
    return np.concatenate(cols, axis=1)


def daily_rows(timestamps: np.ndarray | None) -> int:
    """Rows per day when the rows are a whole number of a day apart in the median (5-minute rows:
    288), else 0 (no timestamps, irregular or coarser than 2 rows a day)."""
    if timestamps is None or len(timestamps) < 3:
        return 0
    t = np.asarray(timestamps).astype("datetime64[s]").astype(np.int64)
    step = float(np.median(np.diff(t)))
    if not step > 0:
        return 0
    per_day = 86400.0 / step
    return int(round(per_day)) if per_day >= 2 and abs(per_day - round(per_day)) < 1e-6 else 0


def season_column(v: np.ndarray, period: int, timestamps: np.ndarray | None = None, shift: int = 0) -> np.ndarray:
    """Row r holds the value a day before the row *after* r (0 before there is one): a window
    ending at row t-1 then shows the forecaster row t's value of a day ago. Uses rows up to r only.

    Without timestamps, a day is ``period`` rows: row r holds ``v[r + 1 - period]``. With them
    (in time order), a day is 24 hours of the clock: row r holds the value of the row nearest to
    ``t_{r+1} - 1 day`` among rows 0..r, if it is within half a step (the median step) of it, else
    0 (the stream has a gap there); the last row's next time is one step on. On rows a whole step
    apart the two agree; on a stream with gaps (NAB: 18 of the 41 shipped files have some, up to
    174 h; sensors that drop readings) counting rows would show, for a day's worth of rows after each
    gap and for good after a missing row, the value of another hour.

    ``shift`` (an experiment's, ``benchmarks/nab_online_nets.py``; the detector uses 0): the value
    ``shift`` steps after the day before instead, still among rows 0..r only (0 where that is later)."""
    n = len(v)
    out = np.zeros(n, dtype=v.dtype)
    if period < 1 or n == 0:
        return out
    r = np.arange(n)
    t = None if timestamps is None else np.asarray(timestamps).astype("datetime64[s]").astype(np.int64)
    if t is None or n < 2 or np.any(np.diff(t) < 0):
        j = r + 1 - period + shift
        ok = (j >= 0) & (j <= r)
        out[ok] = v[j[ok]]
        return out
    step = int(np.median(np.diff(t)))
    target = np.append(t[1:], t[-1] + step) - 86400 + shift * step
    big = np.iinfo(np.int64).max
    before = np.minimum(np.searchsorted(t, target, side="right") - 1, r)   # at or before the target, <= r
    after = np.minimum(before + 1, r)                                       # the first row after it, <= r
    gap_b = np.where(before >= 0, np.abs(target - t[np.maximum(before, 0)]), big)
    gap_a = np.where(after > before, np.abs(t[after] - target), big)
    j = np.where(gap_a < gap_b, after, before)
    ok = np.minimum(gap_a, gap_b) <= step // 2                # the nearest row, within half a step
    out[ok] = v[j[ok]]
    return out


def parse_scales(text: str) -> tuple[int, ...]:
    """``"16,128"`` -> (16, 128); ``""`` -> ()."""
    return tuple(int(s) for s in str(text).replace(" ", "").split(",") if s)


def local_scale(e: np.ndarray, width: int, chunk: int = 4096) -> np.ndarray:
    """``1.4826 x`` the median of ``e`` over the ``width`` rows *before* each row (fewer at the start;
    0 for the first row): the recent typical error, from earlier rows only."""
    pad = np.concatenate([np.full(width, np.nan), e])
    out = np.empty(len(e))
    for a in range(0, len(e), chunk):
        b = min(a + chunk, len(e))
        win = np.lib.stride_tricks.sliding_window_view(pad[a:b + width - 1], width)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[a:b] = np.nanmedian(win, axis=1)
    return 1.4826 * np.nan_to_num(out, nan=0.0)


class OnlineForecaster:
    """The network, its optimiser and its replay sampler; :meth:`errors` then :meth:`learn`."""

    def __init__(self, n_features: int, cfg: Any, seed: int) -> None:
        seeds = np.random.SeedSequence([seed, 23]).spawn(2)
        self.model = SeqModel("lstm", n_features, cfg.hidden, 1, seed=int(seeds[0].generate_state(1)[0]))
        # the one loop's optimizer and guard, one update at a time (rnnlab.train.online)
        self.learner = OnlineLearner(self.model, "adam", lr=cfg.online_lr,
                                     hint="lower --online-lr or raise --online-floor")
        self.scorer = None  # with online_average = d: a copy whose weights are the running average
        if cfg.online_average > 0:
            self.scorer = SeqModel("lstm", n_features, cfg.hidden, 1, seed=int(seeds[0].generate_state(1)[0]))
            self.pairs = [(q, p) for (_, q, _), (_, p, _) in zip(self.scorer.named_parameters(),
                                                                  self.model.named_parameters())]
        self.rng = np.random.default_rng(seeds[1])
        self.cfg = cfg

    @property
    def steps(self) -> int:
        return self.learner.steps

    def errors(self, views: np.ndarray, targets: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Forecast errors of ``rows`` (each from the window of the L rows before it), no learning."""
        L = self.cfg.window
        with no_grad():
            yhat = (self.scorer or self.model).forward(views[rows - L])[0][:, 0]
        return targets[rows].astype(np.float64) - yhat

    def learn(self, views: np.ndarray, targets: np.ndarray, rows: np.ndarray) -> None:
        """One Adam step on the Huber loss of the forecasts of ``rows`` (through the learner's guard)."""
        self.learner.update(self._forward_backward, (views, targets, rows))
        if self.scorer is not None:
            d = self.cfg.online_average
            for q, p in self.pairs:
                q *= d
                q += (1.0 - d) * p

    def _forward_backward(self, model: SeqModel, batch: tuple) -> float:
        """The Huber loss of the forecasts of ``rows`` (mean over the batch), its gradient into ``model``."""
        views, targets, rows = batch
        L, clip = self.cfg.window, self.cfg.online_clip
        yhat, cache = model.forward(views[rows - L])
        err = yhat[:, 0] - targets[rows]
        # d Huber / d yhat, mean over the batch; no gradient within half the noise floor (there the
        # forecast counts as exact: Adam would otherwise take full-size steps on vanishing errors and
        # make a flat line's forecast jitter past the floor)
        grad = np.where(np.abs(err) > 0.5 * self.cfg.online_floor, np.clip(err, -clip, clip), 0.0) / len(rows)
        model.backward(grad[:, None].astype(yhat.dtype), cache)
        a = np.abs(err.astype(np.float64))
        return float(np.mean(np.where(a <= clip, 0.5 * a * a, clip * (a - 0.5 * clip))))

    def replay(self, lo: int, hi: int, newest: np.ndarray) -> np.ndarray:
        """``newest`` plus rows drawn uniformly from [lo, hi), ``online_batch`` in all."""
        extra = max(self.cfg.online_batch - len(newest), 0)
        if extra == 0 or hi <= lo:
            return newest
        return np.concatenate([newest, self.rng.integers(lo, hi, size=extra)])


@contextmanager
def fixed_products() -> Iterator[None]:
    """Every float32 product of the stream in one fixed summation order (``RNNLAB_BLAS=exact``,
    :mod:`rnnlab.blas.exact`), unless ``RNNLAB_BLAS`` names another library. A BLAS rounds a product
    in an order of its own (the kernel OpenBLAS picks for the CPU, oneMKL's path, and under ``auto``
    whichever of the two won a timing on this machine), and the detector's thousands of small online
    steps carry a last-bit difference into every later forecast: the same seed scored 65.2 on an
    Intel and 66.8 on an AMD core with OpenBLAS (docs/anomaly.md, "Scores that do not depend on the
    CPU"). With the fixed order the scores are the same bits on every CPU.

    Only with the compiled steps (numba, :mod:`rnnlab.fast.accel`): without them the fixed-order
    product is a NumPy loop over ``k``, about 7x the stream's cost (78 s of CPU against 10.5 s for a
    4,032-row file), and the NumPy element-wise steps round ``tanh`` otherwise anyway; so there the
    stream keeps OpenBLAS for every product (one library, chosen without timing, as before)."""
    from ...blas import choice
    from ...fast import accel

    named = os.environ.get("RNNLAB_BLAS", "").strip().lower() not in ("", "auto")
    previous = choice.requested()
    if not named:
        choice.set_requested("exact" if accel.enabled() else "openblas")
    try:
        yield
    finally:
        if not named:
            choice.set_requested(previous)


def stream(feats: np.ndarray, first: int, start: int, cfg: Any, seed: int, bar=None, pick: bool = False
           ) -> tuple[np.ndarray, Any, dict]:
    """One network's raw measure for every row (0 before ``first``), learning online from row
    ``first`` on; returns (raw, model, info) as :meth:`Detector._member` does. With ``pick`` the last
    column of ``feats`` is the season input: a network without it and one with it both stream
    through the series, and each row takes the raw measure of the one that forecast the
    ``online_pick`` rows before it better (:func:`pick_season`; ``info["season"]``: the share of the
    rows after ``start`` scored by the season network). Ctrl-C or SIGTERM stops it at the end of the
    block in hand and raises :class:`Interrupted` (130 or 143), as a training run of the other kinds
    does: the whole job stops, no score is written."""
    with fixed_products(), StopSignals() as stop:
        return _stream(feats, first, start, cfg, seed, bar, stop, pick)


class _Run:
    """One network streaming through ``feats``: its windows, targets, forecaster and errors."""

    def __init__(self, feats: np.ndarray, cfg: Any, seed: int) -> None:
        feats = scale_features(feats, parse_scales(cfg.online_scales))
        self.views = np.lib.stride_tricks.sliding_window_view(feats, cfg.window, axis=0).transpose(0, 2, 1)
        self.targets = np.ascontiguousarray(feats[:, 0])
        self.net = OnlineForecaster(feats.shape[1], cfg, seed)
        self.err = np.zeros(len(feats))
        self.cfg = cfg

    def warm(self, first: int, start: int) -> None:
        for _ in range(self.cfg.online_warm if start > first else 0):
            self.net.learn(self.views, self.targets, self.net.replay(first, start, np.empty(0, dtype=np.int64)))

    def block(self, rows: np.ndarray, first: int) -> None:
        """Score ``rows`` with the model as it is, then one step on them and replayed rows."""
        self.err[rows] = self.net.errors(self.views, self.targets, rows)
        self.net.learn(self.views, self.targets,
                       self.net.replay(max(first, rows[-1] + 1 - self.cfg.online_memory), rows[-1] + 1, rows))

    def raw(self, first: int) -> np.ndarray:
        """The raw measure of every row from the errors (module docstring), 0 before ``first``."""
        cfg, raw = self.cfg, np.zeros(len(self.err))
        e = np.maximum(np.abs(self.err[first:]) - cfg.online_floor, 0.0)  # the noise floor, continuously
        if cfg.online_norm > 0:
            denom = local_scale(e, cfg.online_norm) + cfg.online_floor
            e = np.divide(e, denom, out=np.where(e > 0, RAW_CAP, 0.0), where=denom > 0)  # floor 0: 0/0 is 0
        e = np.minimum(e, RAW_CAP)
        raw[first:] = np.log1p(e) if cfg.online_log else e
        return raw


def pick_season(plain: np.ndarray, season: np.ndarray, width: int, clip: float) -> np.ndarray:
    """Per row t, True when the season network's forecast errors (``season``, robust units) over the
    ``width`` rows before t (t itself excluded) sum lower than the plain one's, each error counted up
    to ``clip`` (the Huber loss's bound: one absurd row does not decide); ties go to the plain one."""
    def before(e: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(np.minimum(np.abs(e), clip))])
        t = np.arange(len(e))
        return c[t] - c[np.maximum(t - width, 0)]
    return before(season) < before(plain)


def _stream(feats: np.ndarray, first: int, start: int, cfg: Any, seed: int, bar, stop: StopSignals,
            pick: bool = False) -> tuple[np.ndarray, Any, dict]:
    t0 = time.perf_counter()
    n, k = len(feats), cfg.online_every
    runs = [_Run(feats[:, :-1], cfg, seed), _Run(feats, cfg, seed)] if pick else [_Run(feats, cfg, seed)]
    warmed = False
    for t in range(first, n, k):
        if not warmed and t >= start:
            warmed = True
            for run in runs:
                run.warm(first, start)
        rows = np.arange(t, min(t + k, n))
        for run in runs:
            run.block(rows, first)
        if bar is not None:
            bar.advance(len(rows))
        if stop.received:
            raise Interrupted(stop.exit_code())
    info = {"steps": sum(r.net.steps for r in runs), "refits": 0}
    if pick:
        use = pick_season(runs[0].err, runs[1].err, cfg.online_pick, cfg.online_clip)
        raw = np.where(use, runs[1].raw(first), runs[0].raw(first))
        net = runs[1 if use[-1] else 0].net
        info["season"] = float(use[start:].mean()) if n > start else 0.0
    else:
        raw, net = runs[0].raw(first), runs[0].net
    return raw, (net.scorer or net.model).eval(), {**info, "fit_s": time.perf_counter() - t0, "errors": runs[0].err}
