"""Experiments on the ``online`` detector's *network and its online learning* (not its scoring), for
``benchmarks/nab_online_store.py run --exp ...``: each changes how the forecast errors are made, so a
variant needs its own store (a new stream of every file), re-scored afterwards like the default's.

Detector settings that exist already (``hidden``, ``window``, ``online_lr``, ``online_batch``,
``online_every``) go through ``run --set name=value`` and the detector's own code. The ones here are
experiments only (not detector settings; one is moved into the library if it is adopted):

- ``steps = N``: N Adam steps per block instead of 1, each on the block's newest windows plus a fresh
  replay draw (more learning per row from the same rows, as a larger batch is);
- ``cell = gru``: a GRU (the engine's gradient-checked, torch-matched ``GRUCell``) instead of the LSTM;
- ``diff = 1``: the first difference of the scaled value, v_t - v_{t-1} (0 on the first row), as a
  further input (rows up to t only);
- ``decay = T``: the learning rate ``online_lr * sqrt(T / (T + s))`` after s steps (settles as the
  stream goes on; T in steps);
- ``nbhd = W``: the season network also gets the values at W rows either side of the day before
  (by the clock: lags day - W .. day + W, :func:`season_at`), so it can follow a daily event whose
  period drifts by a row or two (ec2_cpu_utilization_24ae8d's spike comes every 284-293 rows);
- ``nbhd_max = W``: instead, one more input, the largest of those 2W + 1 values (cheaper).

The season inputs, as the detector's own (:func:`rnnlab.tasks.anomaly.online.season_column`), sit on
the row *before* the one they describe and read rows up to their own only (tested).
"""
from __future__ import annotations

import numpy as np

from rnnlab.models.seqmodel import SeqModel
from rnnlab.tasks.anomaly.online import _Run, season_column
from rnnlab.train.online import OnlineLearner

DEFAULTS = {"steps": 1, "cell": "lstm", "diff": 0, "decay": 0.0, "nbhd": 0, "nbhd_max": 0}


def parse(items: list[str] | None) -> dict:
    """``["steps=2", "cell=gru"]`` -> the experiment settings (the rest at their defaults)."""
    out = dict(DEFAULTS)
    for item in items or []:
        name, value = item.split("=")
        if name not in DEFAULTS:
            raise SystemExit(f"unknown experiment {name!r}; choose from {', '.join(DEFAULTS)}")
        out[name] = type(DEFAULTS[name])(value)
    return out


def with_diff(feats: np.ndarray) -> np.ndarray:
    """``feats`` with column 0's first difference appended (row t: v_t - v_{t-1}; row 0: 0)."""
    d = np.zeros(len(feats), dtype=feats.dtype)
    d[1:] = feats[1:, 0] - feats[:-1, 0]
    return np.concatenate([feats, d[:, None]], axis=1)


def season_at(v: np.ndarray, period: int, timestamps: np.ndarray | None, shift: int) -> np.ndarray:
    """The library's :func:`~rnnlab.tasks.anomaly.online.season_column` at ``shift`` rows from the
    day before (row r: the value of the row nearest to ``t_{r+1} - 1 day + shift`` steps among rows
    0..r, else 0); ``shift = 0`` is the detector's own season input."""
    return season_column(v, period, timestamps, shift)


def season_input(feats: np.ndarray, timestamps, period: int, exp: dict) -> np.ndarray:
    """The season network's inputs: ``feats`` (whose last column is the detector's season column) with
    the neighbourhood columns of ``nbhd`` or the maximum of ``nbhd_max`` appended; ``feats`` itself
    when neither is set. Column 0 of ``feats`` is the scaled value."""
    v = feats[:, 0]
    if exp["nbhd"] > 0:
        w = exp["nbhd"]
        cols = [season_at(v, period, timestamps, s) for s in range(-w, w + 1) if s != 0]
        return np.concatenate([feats, np.stack(cols, axis=1)], axis=1)
    if exp["nbhd_max"] > 0:
        w = exp["nbhd_max"]
        m = np.max(np.stack([season_at(v, period, timestamps, s) for s in range(-w, w + 1)]), axis=0)
        return np.concatenate([feats, m[:, None]], axis=1)
    return feats


class ExpRun(_Run):
    """``online._Run`` with the experiment settings above; with the defaults it is ``_Run`` exactly."""

    def __init__(self, feats: np.ndarray, cfg, seed: int, exp: dict) -> None:
        if exp["diff"]:
            feats = with_diff(feats)
        super().__init__(feats, cfg, seed)
        self.exp = exp
        if exp["cell"] != "lstm":  # the same seeds as OnlineForecaster's LSTM
            net = self.net
            seeds = np.random.SeedSequence([seed, 23]).spawn(2)
            net.model = SeqModel(exp["cell"], net.model.spec["input_size"], cfg.hidden, 1,
                                 seed=int(seeds[0].generate_state(1)[0]))
            net.learner = OnlineLearner(net.model, "adam", lr=cfg.online_lr)

    def _lr(self) -> None:
        if self.exp["decay"] > 0:
            T = self.exp["decay"]
            self.net.learner.optimizer.lr = self.cfg.online_lr * np.sqrt(T / (T + self.net.steps))

    def warm(self, first: int, start: int) -> None:
        for _ in range(self.cfg.online_warm if start > first else 0):
            self._lr()
            self.net.learn(self.views, self.targets, self.net.replay(first, start, np.empty(0, dtype=np.int64)))

    def block(self, rows: np.ndarray, first: int) -> None:
        self.err[rows] = self.net.errors(self.views, self.targets, rows)
        lo = max(first, rows[-1] + 1 - self.cfg.online_memory)
        for _ in range(self.exp["steps"]):
            self._lr()
            self.net.learn(self.views, self.targets, self.net.replay(lo, rows[-1] + 1, rows))


__all__ = ["DEFAULTS", "ExpRun", "parse", "season_at", "season_input", "with_diff"]
