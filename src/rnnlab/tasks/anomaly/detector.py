"""``Detector(kind).fit_score(values, timestamps) -> scores``: an anomaly score in [0, 1] per row.

NAB's rules: a row's score may use only rows up to it, and a detector may fit only on the
series' probationary period, its first ``P = min(floor(0.15 n), 750)`` rows. So:

1. the series is scaled with the median and robust standard deviation (MAD) of its first P rows,
   values beyond 20 such units compressed logarithmically (:mod:`rnnlab.tasks.anomaly.robust`:
   one extreme value, even 1e6 in a series of about 1, must not make every other value 0);
2. the network trains (through the one training loop, :class:`~rnnlab.tasks.anomaly.task.AnomalyTask`)
   on windows lying wholly in those rows;
3. every row t then gets a raw measure from the window *ending at* t (``pred``: the window
   ending at t-1 forecasts row t), compared with what the same measure was over the
   probationary period:

   * ``pred``: the forecast error e_t; its median mu and robust standard deviation sd on the
     probationary rows; raw a_t = ((e_t - mu) / sd)^2 (twice the error's negative log-likelihood
     under N(mu, sd), up to a constant);
   * ``encdec``: the absolute reconstruction errors of the window, a vector E_t of L values;
     a Gaussian N(mu, S) of these vectors over the probationary windows; raw a_t = the squared
     Mahalanobis distance (E_t - mu)^T S^-1 (E_t - mu) / L;
   * ``vae``: the negative log reconstruction probability of the window, averaged over its L steps
     and over ``samples`` draws of z from q(z | window);

   each raw measure is capped (``pred``, ``encdec``: at RAW_CAP = 1e4, an error of 100 sd;
   ``vae``: at its probationary median + 100 robust sd), so that one absurd row cannot swamp the
   likelihood's long-window statistics and hide every later anomaly;

4. the raw measure becomes a score in [0, 1] (:mod:`rnnlab.tasks.anomaly.likelihood`), by
   default HTM's anomaly likelihood (short-window mean against the long-window distribution),
   its statistics taken over the scored rows only (``warmup``: the network's errors on the rows it
   trained on are smaller and would make every new row look rare);
5. a row whose value leaves the range of all earlier values by more than ``range_tolerance``
   times that range scores 1 (HTM's "spatial anomaly" rule, its constant 0.05; 0 turns it off),
   before the onset rule; absurd values (more than 1e4 robust sd from the probationary median)
   do not widen that range (the first stretch of them; recurring ones do,
   :func:`~rnnlab.tasks.anomaly.robust.range_exempt`), and ``fit_score`` warns about them, naming
   their rows.

Rows before the first full window, all probationary rows and the ``warmup`` rows after them
score 0 (NAB does not score the probationary rows), but for the range alarms among the ``warmup``
rows with ``warmup_alarms`` (the default). Then onsets only, and one alarm per run of onsets, at
its peak (``peak``, :func:`~rnnlab.tasks.anomaly.likelihood.peaks`). ``ensemble = K`` trains K networks from
different seeds and averages their raw measures; a joint kind such as ``pred+vae`` averages the
likelihood z of its parts.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ...checkpoint import load_checkpoint
from ...timeseries.windows import calendar_features
from ...errors import ConfigError, DataError
from ...module import no_grad
from ...train import run_task
from ...train.loopconfig import LoopConfig
from ...train.progress import Progress, WorkProgress
from ...train.runs import BEST, LAST, prepare_run_dir
from ...train.signals import raise_if_interrupted
from .config import DetectorConfig
from .likelihood import POST, range_alarms
from .novelty import novel_rows
from .robust import absurd_rows, center_scale, compress, describe_rows, range_exempt
from .kinds import KINDS
from .models import make_model
from .spec import DetectorSpec
from .task import AnomalyTask


def parse_kind(kind: str) -> list[str]:
    """The parts of a detector's name: one of KINDS, or several different ones joined by + ('pred+vae')."""
    parts = kind.strip().split("+")
    if any(p not in KINDS for p in parts) or len(set(parts)) < len(parts):
        raise ConfigError(f"unknown detector {kind!r}; choose from {', '.join(KINDS)}, or several "
                          "different ones joined by + (e.g. pred+vae)")
    return parts


def first_scored(kind: str, window: int) -> int:
    """The first row with a raw measure: a forecaster needs the window before the row, the
    autoencoders the window ending at it."""
    return KINDS[kind].first_scored(window)

MIN_WINDOWS = 16


def probationary_rows(n: int) -> int:
    """NAB's probationary period: ``min(floor(0.15 n), 750)`` rows."""
    return int(min(math.floor(0.15 * n), 750))


class Detector:
    """One detector (``pred``, ``encdec`` or ``vae``) with its settings; ``fit_score`` per series.

    A joint detector (``pred+vae``, any of them joined by ``+``) runs each part with the same
    settings and seed and scores the mean of the parts' likelihood z (each part's raw measure
    against its own statistics; :func:`~rnnlab.tasks.anomaly.likelihood.anomaly_likelihood`).
    """

    def __init__(self, kind: str = "pred", seed: int = 0, **options: Any) -> None:
        self.parts = parse_kind(kind)
        self.kind, self.seed = "+".join(self.parts), int(seed)
        self.config = DetectorConfig(**options).validate()
        if len(self.parts) > 1 and self.config.post != "likelihood":
            raise ConfigError(f"the joint detector {kind} needs --post likelihood")
        self.model = None
        self.last_fit: dict[str, Any] = {}
        self.season = 0  # the online detector's season input: rows per day, 0 for none (last series)
        self.season_share: list[float] = []  # --online-season pick: per member, the rows scored by the season network

    # -- inputs ----------------------------------------------------------------------------------
    def min_rows(self) -> int:
        """The fewest rows a series needs: MIN_WINDOWS training windows in its probationary period."""
        need = self.config.window + MIN_WINDOWS + max(KINDS[p].lead for p in self.parts)
        return int(math.ceil(need / 0.15))

    def _features(self, values: np.ndarray, timestamps: np.ndarray | None, start: int) -> np.ndarray:
        center, scale = center_scale(values[:start])
        v = compress((values - center) / scale)
        cols = [v[:, None]]
        if self.config.calendar and timestamps is not None:
            cols.append(calendar_features(timestamps))
        self.season, self.season_share = 0, []
        if self.kind == "online":
            from .online import season_column
            from .season import season_period

            self.season = season_period(self.config.online_season, values, timestamps, start)
            if self.season:
                cols.append(season_column(v, self.season, timestamps)[:, None])
        return np.concatenate(cols, axis=1).astype(np.float32)

    def _check(self, values, timestamps) -> tuple[np.ndarray, np.ndarray | None]:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if len(values) == 0:
            raise DataError("the series is empty")
        if not np.isfinite(values).all():
            raise DataError(f"the value at row {int(np.argmin(np.isfinite(values)))} is not a finite number")
        if len(values) < self.min_rows():
            raise DataError(f"the series has {len(values)} rows; the {self.kind} detector with --window "
                            f"{self.config.window} needs at least {self.min_rows()} (its first 15% must hold "
                            f"{MIN_WINDOWS} windows)")
        if timestamps is not None:
            timestamps = np.asarray(timestamps)
            if len(timestamps) != len(values):
                raise DataError(f"{len(timestamps)} timestamps for {len(values)} values")
        return values, timestamps

    # -- fit and score -----------------------------------------------------------------------------
    def member_seed(self, k: int) -> int:
        """The seed of ensemble member k: the detector's own seed for member 0, derived ones after."""
        return self.seed if k == 0 else int(np.random.SeedSequence([self.seed, 1, k]).generate_state(1)[0])

    def fit_score(self, values, timestamps=None, *, run_dir: str | Path | None = None,
                  log=lambda *a: None, progress: bool | WorkProgress = True, warn=None) -> np.ndarray:
        """Train on the probationary period of ``values`` and score every row; returns (n,) scores.

        With ``refit_every = R`` the network also learns online: after each block of R scored rows
        it trains on (``refit_epochs`` passes over) the windows of the last P rows before the next
        block, and the reference statistics of the raw measure are taken afresh on those windows.
        With ``ensemble = K`` K networks (seeds :meth:`member_seed`) do all this independently and
        the raw measure is the mean of theirs, taken before the score. ``progress`` shows the rows
        scored by every network (a bar on a terminal, a line every 30 s in logs; False: silent).
        ``warn`` (default: a line on stderr) gets one line naming absurd rows
        (:func:`~rnnlab.tasks.anomaly.robust.absurd_rows`), which are scored but do not widen the
        range of the range alarms.
        """
        values, timestamps = self._check(values, timestamps)
        absurd = absurd_rows(values, probationary_rows(len(values)))
        if absurd.any() and not isinstance(progress, WorkProgress):  # a joint detector's parts: warned once
            (warn or _warn)(f"{describe_rows(np.flatnonzero(absurd), values)}: more than 1e4 robust standard "
                            "deviations from the median of the first 15% of the series; scored, but the first "
                            "stretch of them is left out of the range of the range alarms")
        if isinstance(progress, WorkProgress):  # a caller's bar (a joint detector's parts share one)
            return self._fit_score(values, timestamps, run_dir, log, progress)
        bar = WorkProgress(self.work(len(values)), f"{self.kind} (x{self.config.ensemble})"
                           if self.config.ensemble > 1 else self.kind, enabled=bool(progress))
        try:
            return self._fit_score(values, timestamps, run_dir, log, bar)
        finally:
            bar.close()

    def work(self, n: int) -> int:
        """Rows to score for a series of ``n`` rows, over all networks: what the progress bar counts."""
        return sum(self.config.ensemble * max(n - first_scored(p, self.config.window), 0) for p in self.parts)

    def _fit_score(self, values, timestamps, run_dir, log, bar: WorkProgress) -> np.ndarray:
        if len(self.parts) > 1:
            return self._joint(values, timestamps, run_dir, log, bar)
        cfg = self.config
        n, start = len(values), probationary_rows(len(values))
        feats = self._features(values, timestamps, start)
        views = np.lib.stride_tricks.sliding_window_view(feats, cfg.window, axis=0).transpose(0, 2, 1)  # (n-L+1, L, F)
        first = first_scored(self.kind, cfg.window)
        t0 = time.perf_counter()
        members, fit = [], {"steps": 0, "refits": 0, "fit_s": 0.0}
        for k in range(cfg.ensemble):
            raw_k, model, info = self._member(self.member_seed(k), feats, views, first, start,
                                              run_dir if k == 0 else None, log, bar)
            members.append(raw_k)
            if k == 0:
                self.model = model
            for key in fit:
                fit[key] += info[key]
        raw = np.mean(members, axis=0)
        alarms = range_alarms(values, cfg.range_tolerance, ignore=range_exempt(values, start))
        novel = novel_rows(values, start, cfg.online_novel) if self.kind == "online" and cfg.online_novel >= 0 \
            else None
        scores = POST[cfg.post](raw, start, first, short=cfg.short, long=cfg.long, suppress=cfg.suppress,
                                warmup=cfg.warmup, alarms=alarms, warmup_alarms=cfg.warmup_alarms,
                                peak=cfg.peak, slow=cfg.slow, novel=novel)
        self.last_fit = {"rows": n, "probationary": start, **fit, "total_s": time.perf_counter() - t0,
                         "raw": raw, "members": members, "range_alarms": alarms}
        return scores

    def _joint(self, values, timestamps, run_dir, log, bar: WorkProgress) -> np.ndarray:
        cfg, t0 = self.config, time.perf_counter()
        raws, first, fit = [], 0, {"steps": 0, "refits": 0, "fit_s": 0.0}
        for kind in self.parts:
            part = Detector(kind, seed=self.seed, **asdict(cfg))
            part.fit_score(values, timestamps, run_dir=Path(run_dir) / kind if run_dir else None, log=log,
                           progress=bar)
            raws.append(part.last_fit["raw"])
            first = max(first, first_scored(kind, cfg.window))
            fit = {key: fit[key] + part.last_fit[key] for key in fit}
        start = probationary_rows(len(values))
        alarms = range_alarms(values, cfg.range_tolerance, ignore=range_exempt(values, start))
        scores = POST["likelihood"](np.stack(raws), start, first, short=cfg.short, long=cfg.long,
                                    suppress=cfg.suppress, warmup=cfg.warmup, alarms=alarms,
                                    warmup_alarms=cfg.warmup_alarms, peak=cfg.peak, slow=cfg.slow)
        self.last_fit = {"rows": len(values), "probationary": start, **fit, "total_s": time.perf_counter() - t0,
                         "raw": np.stack(raws), "range_alarms": alarms}
        return scores

    def _member(self, seed: int, feats: np.ndarray, views: np.ndarray, first: int, start: int, run_dir,
                log, bar: WorkProgress) -> tuple[np.ndarray, Any, dict]:
        """One network's raw measure for every row (0 before ``first``), trained from ``seed``."""
        cfg, n = self.config, len(feats)
        if KINDS[self.kind].online:  # learns as the rows arrive: no fit, no refits
            return KINDS[self.kind].member(self, seed, feats, first, start, bar)
        spec = DetectorSpec(self.kind, feats.shape[1], cfg.hidden, cfg.window, seed, horizon=1,
                            latent_size=cfg.latent)
        t0 = time.perf_counter()
        model, steps = self._train(spec, feats, views, first, start, cfg.epochs, None, run_dir, log)
        fit_s = time.perf_counter() - t0
        ref = self._reference(self._measure(model, feats, views, first, start, seed))
        raw = np.zeros(n)
        block = cfg.refit_every if cfg.refit_every > 0 else n
        lo, hi, refits = first, start + block, 0
        while lo < n:
            hi = min(hi, n)
            raw[lo:hi] = self._raw(self._measure(model, feats, views, lo, hi, seed), ref)
            bar.advance(hi - lo)
            if hi >= n:
                break
            t1 = time.perf_counter()
            model, k = self._train(spec, feats, views, max(first, hi - start), hi, cfg.refit_epochs, model, None, log)
            ref = self._reference(self._measure(model, feats, views, max(first, hi - start), hi, seed))
            steps, refits, fit_s = steps + k, refits + 1, fit_s + time.perf_counter() - t1
            lo, hi = hi, hi + block
        return raw, model, {"steps": steps, "refits": refits, "fit_s": fit_s}

    def _train(self, spec: DetectorSpec, feats: np.ndarray, views: np.ndarray, lo: int, hi: int, epochs: int,
               init, run_dir, log) -> tuple[Any, int]:
        """Train on the windows whose scored row is in [lo, hi) (from ``init``'s weights when given)
        through the one training loop; returns the best model (eval mode) and the steps taken."""
        cfg, kind = self.config, KINDS[self.kind]
        x, y = kind.inputs(views, lo, hi, cfg.window), kind.targets(feats, lo, hi)
        seed = spec.seed if init is None else int(np.random.SeedSequence([spec.seed, hi]).generate_state(1)[0])
        task = AnomalyTask(spec, x, y, batch=cfg.batch, seed=seed, beta=cfg.beta,
                           init=None if init is None else init.state_dict())
        steps = epochs * task.batches.per_epoch
        loop = LoopConfig(lr=cfg.lr if init is None else cfg.lr * cfg.refit_lr, max_steps=steps,
                          max_minutes=cfg.max_minutes if init is None else 0.0, schedule="cosine",
                          eval_every=max(1, steps // 5), log_every=max(1, steps), guard="backoff", seed=seed)
        with tempfile.TemporaryDirectory(prefix="rnnlab-detect-") as tmp:
            folder = prepare_run_dir(str(run_dir), force=True) if run_dir else Path(tmp)
            summary = run_task(task, loop.validate(), folder, log=log, progress=Progress(enabled=False))
            raise_if_interrupted(summary)  # Ctrl-C or SIGTERM: stop the whole job, not just this network
            ckpt = folder / BEST if (folder / BEST).exists() else folder / LAST
            arrays, _ = load_checkpoint(ckpt)
        model = make_model(spec)
        model.load_state_dict({k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")})
        return model.eval(), int(summary.get("steps") or 0)

    def _measure(self, model, feats: np.ndarray, views: np.ndarray, lo: int, hi: int, seed: int,
                 chunk: int = 2048) -> np.ndarray:
        """The model's measure for rows lo..hi-1 (:meth:`DetectorKind.measure`), in chunks."""
        cfg, kind = self.config, KINDS[self.kind]
        rng = np.random.default_rng([seed, 1, lo])
        with no_grad():
            outs = [kind.measure(model, feats, views, a, min(a + chunk, hi), cfg.window, rng, cfg)
                    for a in range(lo, hi, chunk)]
        return np.concatenate(outs).astype(np.float64)

    def _reference(self, measure: np.ndarray) -> Any:
        return KINDS[self.kind].reference(measure)

    def _raw(self, measure: np.ndarray, ref: Any) -> np.ndarray:
        return KINDS[self.kind].raw(measure, ref)

    def describe(self) -> dict[str, Any]:
        return {"detector": self.kind, "seed": self.seed, **asdict(self.config)}


def _warn(line: str) -> None:
    import sys
    print(f"warning: {line}", file=sys.stderr)
