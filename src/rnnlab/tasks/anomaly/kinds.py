"""Detector kinds: what a network is trained on, what it measures on a row, and how that measure
compares with normal data. One small class per kind behind one interface, found by name in
:data:`KINDS` (``Detector("pred")``); a new kind is a subclass and :func:`register`.

* ``pred``: the window ending at row t-1 forecasts row t; measure: the forecast error e_t;
  reference: its median and robust sd on normal rows; raw: ((e_t - mu) / sd)^2, capped;
* ``encdec``: the window ending at t is reconstructed; measure: the vector of absolute
  reconstruction errors; reference: N(mu, S); raw: squared Mahalanobis distance / L, capped;
* ``online``: ``pred``'s forecaster learning as rows arrive, one step every few rows, each row
  scored before the model learns from it (:mod:`rnnlab.tasks.anomaly.online`);
* ``vae``: the window ending at t; measure: the mean negative log reconstruction probability
  over ``samples`` draws of z; reference: its median and robust sd; raw: the NLL, capped at
  median + 100 sd.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...layers import gaussian_nll
from .robust import RAW_CAP, center_scale


class DetectorKind:
    """The interface. ``lead``: 1 when the window *before* a row is the input (a forecaster),
    0 when the window ending at the row is (an autoencoder)."""

    name = ""
    lead = 0
    online = False  # True: the kind scores and learns in one pass (:meth:`member`), no fit-then-score

    def first_scored(self, window: int) -> int:
        """The first row with a raw measure."""
        return window - 1 + self.lead

    def inputs(self, views: np.ndarray, lo: int, hi: int, window: int) -> np.ndarray:
        """The input windows of rows lo..hi-1 (``views[i]`` is the window of rows i..i+L-1)."""
        a = lo - window + 1 - self.lead
        return np.ascontiguousarray(views[a:a + hi - lo])

    def targets(self, feats: np.ndarray, lo: int, hi: int) -> np.ndarray | None:
        """What training fits besides the inputs (a forecaster's next values), or None."""
        return None

    def measure(self, model, feats: np.ndarray, views: np.ndarray, lo: int, hi: int, window: int,
                rng: np.random.Generator, config) -> np.ndarray:
        raise NotImplementedError

    def reference(self, measure: np.ndarray) -> Any:
        """What the measure is on normal data (robust: one extreme row cannot move it far)."""
        return center_scale(measure)

    def raw(self, measure: np.ndarray, ref: Any) -> np.ndarray:
        raise NotImplementedError


class Pred(DetectorKind):
    name, lead = "pred", 1

    def targets(self, feats, lo, hi):
        return feats[lo:hi, :1].copy()

    def measure(self, model, feats, views, lo, hi, window, rng, config):
        return feats[lo:hi, 0] - model.forward(self.inputs(views, lo, hi, window))[0][:, 0]

    def raw(self, measure, ref):
        return np.minimum(((measure - ref[0]) / ref[1]) ** 2, RAW_CAP)


class Online(Pred):
    """``pred``'s forecaster learning as rows arrive (:mod:`rnnlab.tasks.anomaly.online`): it
    scores each block of rows with the model as it was before them, then takes one step on them."""

    name, online = "online", True

    def member(self, detector, seed, feats, first, start, bar):
        from .online import stream
        pick = detector.config.online_season == "pick" and detector.season > 0
        raw, model, info = stream(feats, first, start, detector.config, seed, bar, pick=pick)
        if pick:  # per member: the share of the scored rows that took the season network's measure
            detector.season_share.append(info["season"])
        return raw, model, info

    def raw(self, measure, ref):  # the stream's raw measure is final
        return measure


class EncDec(DetectorKind):
    name = "encdec"

    def measure(self, model, feats, views, lo, hi, window, rng, config):
        x = self.inputs(views, lo, hi, window)
        return np.abs(model.forward(x)[0] - x[..., 0]).astype(np.float64)

    def reference(self, measure):
        L = measure.shape[1]
        cov = np.cov(measure, rowvar=False).reshape(L, L)
        cov += np.eye(L) * (1e-2 * np.trace(cov) / L + 1e-8)
        return measure.mean(axis=0), np.linalg.inv(cov)

    def raw(self, measure, ref):
        d = measure - ref[0]
        return np.minimum(np.einsum("ij,ij->i", d @ ref[1], d) / measure.shape[1], RAW_CAP)


class Vae(DetectorKind):
    name = "vae"

    def measure(self, model, feats, views, lo, hi, window, rng, config):
        x = self.inputs(views, lo, hi, window)
        target = x[..., 0]
        total = np.zeros(len(x))
        for _ in range(config.samples):
            eps = rng.standard_normal((len(x), config.latent)).astype(np.float32)
            (m, v, _), _ = model.forward(x, eps)
            total += gaussian_nll(m.astype(np.float64), v.astype(np.float64), target).mean(axis=1)
        return total / config.samples

    def raw(self, measure, ref):
        return np.minimum(measure, ref[0] + 100.0 * ref[1])


KINDS: dict[str, DetectorKind] = {}


def register(kind: DetectorKind) -> DetectorKind:
    """Make ``kind`` available by its name (``Detector(kind.name)``, ``--detector``)."""
    KINDS[kind.name] = kind
    return kind


for _kind in (Pred(), EncDec(), Vae(), Online()):
    register(_kind)
