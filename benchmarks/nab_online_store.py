"""Save both networks' forecast errors of the ``online`` detector per NAB file, then re-score variants.

The default ``online`` (``--online-season pick``) streams two networks (one with the value a day
before as an input, one without) and turns their forecast errors into a raw measure, picks one per
row, and scores it with the anomaly likelihood, range alarms, onset and peak rules. The networks are
the expensive part (about 31 s of CPU per 10,000 rows); everything after them takes seconds. So:

    python benchmarks/nab_online_store.py run ../shared/data/nab --seed 0 --out /tmp/store
    python benchmarks/nab_online_store.py eval ../shared/data/nab /tmp/store --seeds 0,1,2 [--variant default --variant slow=20 ...]

``run`` saves, per file, the errors of each network (``plain``, and ``season`` when the timestamps'
step divides a day), exactly as :func:`rnnlab.tasks.anomaly.online.stream` computes them (the same
classes, seeds and order of work; ``eval --check`` compares the default variant with
``Detector("online").fit_score`` on a file). ``eval`` re-scores them with the library's functions
and prints standard / low FP / low FN, LOFO, LOGO and the per-group table for each variant.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from rnnlab.tasks.anomaly.config import DetectorConfig
from rnnlab.tasks.anomaly.detector import Detector, first_scored, probationary_rows
from rnnlab.tasks.anomaly.likelihood import (_finish, _rolling_mean, anomaly_likelihood, decade_scale, log_tail,
                                             range_alarms, two_scale_z)
from rnnlab.tasks.anomaly.nab import PROFILES, evaluate, load_corpus
from rnnlab.tasks.anomaly.novelty import novel_rows
from rnnlab.tasks.anomaly.online import _Run, fixed_products, pick_season
from rnnlab.tasks.anomaly.robust import range_exempt


def resolution_binds(values: np.ndarray, resolution: int) -> bool:
    """Whether (max - min) / N of the probationary rows exceeds their robust scale."""
    from rnnlab.tasks.anomaly.robust import center_scale

    p = np.asarray(values, dtype=np.float64)[:probationary_rows(len(values))]
    return resolution > 0 and (p.max() - p.min()) / resolution > center_scale(p)[1]


def stream_errors(values: np.ndarray, timestamps, seed: int, resolution: int = 0, exp: dict | None = None,
                  **options) -> dict:
    """The errors of the networks ``online.stream`` runs for this file (``plain``, ``season``).
    ``resolution = N`` (an experiment, not a detector setting): the input scale is at least
    (max - min) / N of the probationary rows (HTM's encoder resolution with N = 130). ``exp``: the
    network experiments of ``nab_online_nets`` (None: the detector's own ``_Run``); ``options``:
    detector settings (``hidden=64``)."""
    import rnnlab.tasks.anomaly.detector as D

    det = Detector("online", seed=seed, **options)
    values, timestamps = det._check(values, timestamps)
    cfg, n = det.config, len(values)
    start, first = probationary_rows(n), first_scored("online", det.config.window)
    plain_scale = D.center_scale
    if resolution > 0:
        def floored(x):
            med, sc = plain_scale(x)
            return med, max(sc, (np.max(x) - np.min(x)) / resolution)
        D.center_scale = floored
    try:
        feats = det._features(values, timestamps, start)
    finally:
        D.center_scale = plain_scale
    pick = cfg.online_season == "pick" and det.season > 0
    season_feats = feats
    if exp is None:
        make = _Run
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from nab_online_nets import ExpRun, season_input

        def make(x, c, s):
            return ExpRun(x, c, s, exp)
        if pick:
            season_feats = season_input(feats, timestamps, det.season, exp)
    with fixed_products():
        runs = [make(feats[:, :-1], cfg, seed), make(season_feats, cfg, seed)] if pick else [make(feats, cfg, seed)]
        warmed = False
        for t in range(first, n, cfg.online_every):
            if not warmed and t >= start:
                warmed = True
                for run in runs:
                    run.warm(first, start)
            rows = np.arange(t, min(t + cfg.online_every, n))
            for run in runs:
                run.block(rows, first)
    out = {"plain": runs[0].err, "first": first, "start": start, "season_period": det.season}
    if pick:
        out["season"] = runs[1].err
    return out


def run(args) -> None:
    corpus = load_corpus(args.root, args.groups.split(",") if args.groups else None)
    folder = Path(args.out) / f"seed{args.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    options = {}
    for item in args.set or []:
        name, value = item.split("=")
        options[name] = type(getattr(DetectorConfig(), name))(value)
    exp = None
    if args.exp:
        sys.path.insert(0, str(Path(__file__).parent))
        from nab_online_nets import parse

        exp = parse(args.exp)
    for key, f in corpus.files.items():
        path = folder / (key.replace("/", "__") + ".npz")
        if path.is_file():
            continue
        if args.resolution and not resolution_binds(f.values, args.resolution):  # unchanged: the base run's
            path.symlink_to(Path(args.base).resolve() / f"seed{args.seed}" / path.name)
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        out = stream_errors(f.values, f.timestamps, args.seed, resolution=args.resolution, exp=exp, **options)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        np.savez(path.with_suffix(".tmp.npz"), seconds=secs, cpu=cpu, **out)
        path.with_suffix(".tmp.npz").rename(path)
        print(f"seed {args.seed} {key}: {len(f)} rows, {secs:.1f} s wall, {cpu:.1f} s CPU", flush=True)


# -- re-scoring ------------------------------------------------------------------------------------

class Cfg:
    """The online settings the raw measure reads (``_Run.raw``), defaults as DetectorConfig; and
    experiment-only scoring settings (not detector settings): ``surprise = X`` adds the surprise-count
    channel (:func:`surprise_z`) over ``surprise_window`` rows; 0, the default, leaves the detector's scores."""

    EXPERIMENTS = {"surprise": 0.0, "surprise_window": 10, "deseason": -1, "deseason_days": 1, "deseason_mode": "sub", "third": 0,
                   "combine": "pick", "novel_bins": 130}

    def __init__(self, **kw) -> None:
        from rnnlab.tasks.anomaly.config import DetectorConfig

        d = DetectorConfig()
        for name in ("online_floor", "online_norm", "online_log", "online_pick", "online_clip", "short", "long",
                     "suppress", "warmup", "warmup_alarms", "peak", "slow", "range_tolerance", "online_novel"):
            setattr(self, name, kw.pop(name, getattr(d, name)))
        for name, default in self.EXPERIMENTS.items():
            setattr(self, name, kw.pop(name, default))
        assert not kw, kw


def raw_of(err: np.ndarray, first: int, cfg) -> np.ndarray:
    r = _Run.__new__(_Run)
    r.err, r.cfg = err, cfg
    return _Run.raw(r, first)


def picked_raw(saved: dict, cfg: Cfg) -> np.ndarray:
    first = int(saved["first"])
    raw = raw_of(saved["plain"], first, cfg)
    if "season" in saved:
        other = raw_of(saved["season"], first, cfg)
        if getattr(cfg, "combine", "pick") == "min":    # an experiment: the smaller of the two networks' measures
            return np.minimum(raw, other)
        if getattr(cfg, "combine", "pick") == "mean":
            return 0.5 * (raw + other)
        use = pick_season(saved["plain"], saved["season"], cfg.online_pick, cfg.online_clip)
        raw = np.where(use, other, raw)
    return raw


def surprise_z(raw: np.ndarray, level: float, width: int = 10, long: int = 8640, mean_floor: float = 0.03,
               var_floor: float = 3e-4) -> np.ndarray:
    """An experiment, HTM's likelihood on a 0/1 measure: b_t = 1 where the online raw measure
    ``log(1 + x)`` has x > ``level`` (an error of more than ``level`` typical errors), m_t = the mean of b
    over the last ``width`` rows (HTM's 10), z_t = (m_t - mu_t) / sd_t with mu_t and sd_t of m over the
    ``long`` rows up to t, floored as nupic floors its estimate (mean >= 0.03, variance >= 3e-4). HTM's
    raw score is near 0/1 per row (a row predicted or not), so two surprising rows in a row in a file
    whose surprises come singly are rare to it (docs/anomaly.md, "The blips HTM catches"). Row t uses
    rows up to t only."""
    b = (np.asarray(raw, dtype=np.float64) > np.log1p(level)).astype(np.float64)
    m = _rolling_mean(b, width)
    mean, sq = _rolling_mean(m, long), _rolling_mean(m * m, long)
    return (m - np.maximum(mean, mean_floor)) / np.sqrt(np.maximum(sq - mean * mean, var_floor))


def seasonal_expected(raw: np.ndarray, period: int, half: int, days: int = 1) -> np.ndarray:
    """An experiment: per row t, the surprise the stream showed at this time of day before, the
    smallest over the last ``days`` days d of the largest raw measure among rows t - d * period - half ..
    t - d * period + half (0 where a day d is not yet available). Row t reads rows up to
    t - period + half < t only (``half < period``). A daily-recurring large error (a server's daily
    spike that the forecaster misses each day) then counts as expected."""
    raw = np.asarray(raw, dtype=np.float64)
    n = len(raw)
    if period < 1 or half >= period or n == 0:
        return np.zeros(n)
    w = 2 * half + 1
    pad = np.concatenate([np.zeros(w - 1), raw])
    wmax = np.lib.stride_tricks.sliding_window_view(pad, w).max(axis=1)   # wmax[j] = max raw[j-w+1 .. j]
    out = np.full(n, np.inf)
    t = np.arange(n)
    for d in range(1, days + 1):
        j = t - d * period + half                                           # the neighbourhood's last row
        ok = j - 2 * half >= 0
        cur = np.zeros(n)
        cur[ok] = wmax[j[ok]]
        out = np.minimum(out, cur)
    return out


def deseasoned(raw: np.ndarray, saved: dict, cfg) -> np.ndarray:
    """``raw`` less the surprise expected at this time of day (:func:`seasonal_expected`), for streams
    with a daily period; unchanged otherwise or with ``cfg.deseason < 0`` (an experiment)."""
    period = int(saved.get("season_period", 0))
    if cfg.deseason < 0 or period < 1:
        return raw
    ref = seasonal_expected(raw, period, cfg.deseason, cfg.deseason_days)
    if cfg.deseason_mode == "sub":
        return np.maximum(raw - ref, 0.0)
    if cfg.deseason_mode == "half":
        return np.maximum(raw - 0.5 * ref, 0.0)
    raise ValueError(cfg.deseason_mode)


def default_scores(values: np.ndarray, saved: dict, cfg: Cfg) -> np.ndarray:
    """What ``Detector("online").fit_score`` gives from the saved errors (the default settings); with
    ``cfg.surprise > 0`` each row's z is also at least the surprise channel's (an experiment)."""
    first, start = int(saved["first"]), int(saved["start"])
    alarms = range_alarms(values, cfg.range_tolerance, ignore=range_exempt(values, start))
    if cfg.third > 0:  # an experiment: a third short window, z the largest of the three
        from rnnlab.tasks.anomaly.likelihood import likelihood_z
        raw, out = deseasoned(picked_raw(saved, cfg), saved, cfg), np.zeros(len(values))
        f0 = max(first, start) if cfg.warmup > 0 else first
        z = np.maximum(two_scale_z(raw[f0:], cfg.short, cfg.slow, cfg.long), likelihood_z(raw[f0:], cfg.third, cfg.long))
        out[f0:] = decade_scale(log_tail(z))
        return _finish(out, max(start, f0), cfg.warmup, cfg.suppress, alarms, cfg.warmup_alarms, cfg.peak)
    if cfg.surprise > 0:
        raw, out = picked_raw(saved, cfg), np.zeros(len(values))
        f0 = max(first, start) if cfg.warmup > 0 else first
        z = np.maximum(two_scale_z(raw[f0:], cfg.short, cfg.slow, cfg.long),
                       surprise_z(raw[f0:], cfg.surprise, cfg.surprise_window, cfg.long))
        out[f0:] = decade_scale(log_tail(z))
        return _finish(out, max(start, f0), cfg.warmup, cfg.suppress, alarms, cfg.warmup_alarms, cfg.peak)
    novel = novel_rows(values, start, cfg.online_novel, cfg.novel_bins) if cfg.online_novel >= 0 else None
    return anomaly_likelihood(deseasoned(picked_raw(saved, cfg), saved, cfg), start, first, short=cfg.short, long=cfg.long,
                              suppress=cfg.suppress, warmup=cfg.warmup, alarms=alarms,
                              warmup_alarms=cfg.warmup_alarms, peak=cfg.peak, slow=cfg.slow, novel=novel)


def variant(text: str) -> Cfg:
    """``default`` or ``name=value,name=value`` (scoring settings of :class:`Cfg`, e.g. ``slow=20``)."""
    if text == "default":
        return Cfg()
    kw = {}
    for part in text.split(","):
        name, value = part.split("=")
        kw[name] = type(getattr(Cfg(), name))(value) if not isinstance(getattr(Cfg(), name), bool) \
            else value.lower() in ("1", "true", "yes")  # e.g. surprise=3 (an experiment, Cfg.EXPERIMENTS)
    return Cfg(**kw)


def load_store(folder: Path, corpus) -> dict[str, dict]:
    out = {}
    for key in corpus.files:
        with np.load(folder / (key.replace("/", "__") + ".npz")) as z:
            out[key] = {k: z[k] for k in z.files}
    return out


def summarise(scores: dict, corpus) -> tuple[list[float], dict]:
    from rnnlab.tasks.anomaly.benchmark import leave_one_out
    from rnnlab.tasks.anomaly.groups import group_scores

    ev = evaluate(scores, corpus, PROFILES)
    lofo = leave_one_out(scores, corpus, PROFILES["standard"])["normalized"]
    groups = group_scores(scores, corpus, PROFILES["standard"])
    return [ev["standard"]["normalized"], ev["reward_low_FP_rate"]["normalized"],
            ev["reward_low_FN_rate"]["normalized"], lofo, groups["all"]["logo"]], groups


def evaluate_variants(args) -> None:
    corpus = load_corpus(args.root, args.groups.split(",") if args.groups else None)
    seeds = [int(s) for s in args.seeds.split(",")]
    stores = {s: load_store(Path(args.store) / f"seed{s}", corpus) for s in seeds}
    rows = sum(len(f) for f in corpus.files.values())
    for s in seeds:  # the networks' cost as the store recorded it (both networks, per file)
        cpu = sum(float(v.get("cpu", np.nan)) for v in stores[s].values())
        print(f"seed {s}: the networks took {cpu:.0f} s of CPU for {rows} rows ({1e4 * cpu / rows:.1f} s per 10,000)")
    for name in args.variant or ["default"]:
        fn, cfg = default_scores, variant(name)
        per_seed, per_group = [], []
        for s in seeds:
            scores = {key: fn(f.values, stores[s][key], cfg) for key, f in corpus.files.items()}
            figs, groups = summarise(scores, corpus)
            per_seed.append(figs)
            per_group.append(groups)
            print(f"{name} seed {s}: " + " / ".join(f"{x:.1f}" for x in figs[:3]) + f", LOFO {figs[3]:.1f}, "
                  f"LOGO {figs[4]:.1f}", flush=True)
        m = np.mean(per_seed, axis=0)
        sd = np.std(per_seed, axis=0, ddof=1) if len(per_seed) > 1 else np.zeros(5)
        cells = [f"{a:.1f} ± {b:.1f}" for a, b in zip(m, sd)]
        print(f"{name} mean: " + " / ".join(cells[:3]) + f", LOFO {cells[3]}, LOGO {cells[4]}")
        for g in per_group[0]:
            ins = np.mean([p[g]["in_sample"] for p in per_group])
            logo = np.mean([p[g]["logo"] for p in per_group])
            print(f"    {g:24s} {ins:6.1f}  LOGO {logo:6.1f}")


def windows(args) -> None:
    """Per-window diagnosis (benchmarks/nab_windows.py) of one variant, one seed, beside HTM's."""
    sys.path.insert(0, str(Path(__file__).parent))
    from nab_windows import describe
    from rnnlab.tasks.anomaly.nab import load_results

    corpus = load_corpus(args.root, args.groups.split(",") if args.groups else None)
    show = [g for g in args.show.split(",") if g]
    profile = PROFILES["standard"]
    describe("HTM", load_results(Path(args.root) / "results", "numenta", corpus), corpus, profile, show)
    for s in [int(x) for x in args.seeds.split(",")]:
        store = load_store(Path(args.store) / f"seed{s}", corpus)
        for name in args.variant or ["default"]:
            scores = {key: default_scores(f.values, store[key], variant(name)) for key, f in corpus.files.items()}
            describe(f"{name} seed {s}", scores, corpus, profile, show)


def check(args) -> None:
    """The default variant from the saved errors against the detector itself, on one file."""
    corpus = load_corpus(args.root, [args.check.split("/")[0]])
    f = corpus[args.check]
    saved = load_store(Path(args.store) / f"seed{args.seeds.split(',')[0]}", type(corpus)({args.check: f}))
    got = default_scores(f.values, saved[args.check], Cfg())
    want = Detector("online", seed=int(args.seeds.split(",")[0])).fit_score(f.values, f.timestamps, progress=False)
    print(f"{args.check}: max |difference| {np.abs(got - want).max():.3g}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("root")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True)
    r.add_argument("--groups", default="")
    r.add_argument("--resolution", type=int, default=0, help="an experiment: the input scale at least (max - min) "
                   "/ N of the probationary rows; files where it does not bind link to --base's")
    r.add_argument("--base", default="", help="with --resolution: the store of the default run")
    r.add_argument("--set", action="append", help="a detector setting for the networks, e.g. hidden=64 or "
                   "online_lr=2e-3 (repeatable)")
    r.add_argument("--exp", action="append", help="a network experiment of benchmarks/nab_online_nets.py, e.g. "
                   "steps=2, cell=gru, diff=1, decay=2000, nbhd=2, nbhd_max=2 (repeatable)")
    e = sub.add_parser("eval")
    e.add_argument("root")
    e.add_argument("store")
    e.add_argument("--seeds", default="0")
    e.add_argument("--groups", default="")
    e.add_argument("--variant", action="append", help="default, or scoring settings such as slow=20 or "
                   "slow=20,peak=0 (repeatable)")
    e.add_argument("--check", default="", help="a file key: compare the default with the detector on it")
    e.add_argument("--windows", action="store_true", help="the per-window diagnosis instead of the figures")
    e.add_argument("--show", default="", help="with --windows: only these groups")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args)
    elif args.check:
        check(args)
    elif args.windows:
        windows(args)
    else:
        evaluate_variants(args)


if __name__ == "__main__":
    sys.exit(main())
