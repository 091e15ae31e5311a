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
  stream goes on; T in steps).
"""
from __future__ import annotations

import numpy as np

from rnnlab.models.seqmodel import SeqModel
from rnnlab.tasks.anomaly.online import _Run
from rnnlab.train.online import OnlineLearner

DEFAULTS = {"steps": 1, "cell": "lstm", "diff": 0, "decay": 0.0}


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


__all__ = ["DEFAULTS", "ExpRun", "parse", "with_diff"]
