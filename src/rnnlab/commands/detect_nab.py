"""``rnnlab detect nab``: run detectors over a NAB corpus, with an ``--out`` folder that survives stops.

An interrupted run is continued with ``--out DIR --resume``: its settings (DIR/settings.json) stand,
so the flags need not be repeated; a flag given on resume must equal the run's own (the files it
scored already were scored with them), else one line names the flag.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from .configflags import given_settings


def _refuse_to_replace(paths: list[Path], force: bool) -> None:
    """Say so, before any training, when ``--out`` already holds these outputs (unless ``--force``)."""
    found = [p for p in paths if p.exists()]
    if found and not force:
        raise ConfigError(f"{found[0]} already exists; choose another --out, or pass --force to replace it")


# the detector `detect run` and `detect nab` use when no --detector is given (docs/anomaly.md, "Today's figures")
DEFAULT_DETECTOR = "online"

# the detector settings a run records (settings.json, results.json, thresholds.json), in this order
OPTION_KEYS = ("window", "hidden", "latent", "epochs", "lr", "samples", "post", "short", "slow", "long", "suppress", "peak",
               "warmup", "warmup_alarms", "calendar", "max_minutes", "refit_every", "refit_epochs", "refit_lr", "ensemble",
               "online_every",
               "online_batch", "online_memory", "online_lr", "online_warm", "online_clip", "online_floor",
               "online_norm", "online_log", "online_season", "online_pick", "online_average", "online_scales",
               "online_novel", "range_tolerance")


# settings added after runs were first recorded: a record without them ran with them off
OFF_BEFORE = {"warmup_alarms": False, "online_season": "off", "peak": 0, "slow": 0, "online_novel": -1}


def check_threshold_settings(path: str, options: dict) -> None:
    """Refuse, in one line naming the flags, to apply the thresholds of a ``detect nab --out`` file
    with detector settings other than those it was chosen with (a user's own file records none and
    is taken as it is). The time budget (max_minutes) may differ."""
    from ..tasks.anomaly.thresholds import read_settings

    recorded = read_settings(path)
    if recorded is None:
        return
    recorded = {**OFF_BEFORE, **recorded}
    differ = [k for k in OPTION_KEYS if k != "max_minutes" and k in recorded and recorded[k] != options[k]]
    if differ:
        raise ConfigError(f"--thresholds {path} was chosen with {_flags(differ, recorded)}, this run has "
                          f"{_flags(differ, options)}: a threshold is a score on the scale those settings make, so "
                          f"it does not carry over; give the file's flags, or choose thresholds for these settings "
                          f"(detect nab --out DIR)")


def _flags(keys: list[str], values: dict) -> str:
    flags = []
    for k in keys:
        name = k.replace("_", "-")
        v = values[k]
        flags.append((f"--{name}" if v else f"--no-{name}") if isinstance(v, bool) else f"--{name} {_shown(v)}")
    return " ".join(flags)


def _options(args: argparse.Namespace, saved: dict | None = None) -> dict:
    """The detector settings: the flags given, over ``saved`` (an interrupted run's) or the defaults."""
    from ..tasks.anomaly.config import DetectorConfig

    base = {k: v for k, v in (saved or {}).items() if k in OPTION_KEYS}
    if saved:  # a run saved before these settings existed had them off
        base = {**OFF_BEFORE, **base}
    cfg = DetectorConfig(**{**base, **given_settings(args, DetectorConfig)})
    return {k: getattr(cfg, k) for k in OPTION_KEYS}


PARTIAL, SETTINGS = "partial", "settings.json"


def _prepare_nab_out(out: Path, settings: dict, force: bool, resume: bool) -> None:
    """Refuse to replace finished results or an interrupted run by accident; record the settings
    of a new run (on --resume the interrupted run's stand)."""
    import shutil

    from ..io.atomic import atomic_write

    finished = [p for p in (out / "results.json", out / "table.md", out / "groups.md", out / "thresholds.json",
                            out / "scores") if p.exists()]
    started = (out / SETTINGS).exists() or (out / PARTIAL).exists()
    if force:
        for path in finished + [out / PARTIAL, out / SETTINGS]:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    elif resume:  # read and checked by _read_interrupted
        return
    elif finished:
        _refuse_to_replace(finished, force=False)
    elif started:
        raise ConfigError(f"--out {out} holds an interrupted run; continue it with --resume, or pass --force to "
                          "start over")
    with atomic_write(out / SETTINGS) as fh:
        fh.write(json.dumps(settings, indent=1, sort_keys=True).encode())


def run_nab(args: argparse.Namespace) -> int:
    """``detect nab``; its --out folder is locked (one live process writes into it at a time)."""
    from ..io.lock import RunLock
    from ..train.runs import refuse_run_folder

    if not args.out:
        return _run_nab(args)
    out = refuse_run_folder(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make --out {out}: {exc.strerror or exc}; choose a writable --out") from None
    with RunLock(out).acquire("--out"):
        return _run_nab(args)


def _run_nab(args: argparse.Namespace) -> int:
    import shutil

    from ..io.atomic import atomic_write
    from ..tasks.anomaly.benchmark import format_table, nab_table, reference_scores, run_nab as run_corpus
    from ..tasks.anomaly.nab import load_corpus
    from ..train.runs import check_out_dir
    from ..train.signals import Interrupted

    out = check_out_dir(args.out) if args.out else None
    if args.resume and (out is None or args.force):
        raise ConfigError("--resume needs --out, the folder of the interrupted run, and no --force (which starts over)")
    settings = _settings(args, _read_interrupted(out) if args.resume else None)
    groups, detectors, seeds = settings["groups"], settings["detectors"], settings["seeds"]
    options, thresholds = settings["options"], settings["thresholds"]
    fixed = None
    if thresholds is not None:  # read before any training: a bad file is one line now
        from ..tasks.anomaly.nab import PROFILES
        from ..tasks.anomaly.thresholds import read_thresholds, thresholds_for

        table = read_thresholds(thresholds)
        fixed = {name: thresholds_for(table, name, thresholds, PROFILES) for name in detectors}
        check_threshold_settings(thresholds, options)
    corpus = load_corpus(args.root, groups)
    if out is not None:
        _prepare_nab_out(out, settings, args.force, args.resume)
    print(f"NAB corpus {args.root}: {len(corpus)} files, {sum(len(f) for f in corpus)} rows, "
          f"{corpus.n_windows} windows; detectors {', '.join(detectors)}; seeds {seeds}")
    entries = reference_scores(corpus, seeds, range_tolerance=options["range_tolerance"],
                               warmup=options["warmup"], suppress=options["suppress"],
                               warmup_alarms=options["warmup_alarms"])
    if "numenta (HTM)" not in entries:
        print(f"(no HTM reference: {Path(args.root) / 'results' / 'numenta'} not found)")
    from ..train.executor import make_executor

    with make_executor(args.jobs, args.ray, log=lambda line: print(line, file=sys.stderr)) as executor:
        if executor.workers > 1 or args.ray:
            print(f"fits on {executor.describe()}")
        for name in detectors:
            try:
                entries[name] = run_corpus(corpus, name, seeds, store=out / PARTIAL if out else None,
                                           executor=executor, **options)
            except Interrupted:
                if out is not None:
                    print(f"the files scored so far are kept in {out / PARTIAL}; continue with the same command "
                          "and --resume", file=sys.stderr)
                raise
    rows = nab_table(corpus, entries, fixed=fixed)
    table = format_table(rows)
    print("\nNormalised NAB score (thresholds optimised over these files for every detector alike"
          + (f", except those marked 'fixed thresholds', scored at the thresholds of {thresholds}" if fixed
             else "") + "; mean ± std over seeds; leave-one-file-out: each file scored at the threshold optimised on "
          "the others):\n" + table)
    from ..tasks.anomaly.groups import format_group_table, split_groups

    group_table = format_group_table(corpus, entries)
    print("\nPer group, standard profile (each group at the threshold optimised over all these files"
          + ("; LOGO: at the threshold optimised on the other groups" if len(split_groups(corpus)) > 1 else "")
          + "; a group without windows shows its false positives' cost, 0 = no alarm):\n" + group_table)
    if out is not None:
        from ..tasks.anomaly.io import write_scores
        for name in detectors:
            for run in entries[name]:
                for key, scores in run.scores.items():
                    group, file = key.split("/", 1)
                    write_scores(out / "scores" / f"{name}-seed{run.seed}" / group / file, corpus[key], scores)
        results = {r.name: {"normalized": r.normalized, "held_out": r.held_out, "thresholds": r.thresholds,
                            "fixed": r.fixed, "seconds_per_10k": r.seconds_per_10k} for r in rows}
        with atomic_write(out / "table.md") as fh:
            fh.write((table + "\n").encode())
        with atomic_write(out / "groups.md") as fh:
            fh.write((group_table + "\n").encode())
        import numpy as np

        from ..tasks.anomaly.thresholds import FILE, write_thresholds
        chosen = {r.name: {p: float(np.median(v)) for p, v in r.thresholds.items()} for r in rows
                  if r.name in detectors}
        write_thresholds(out / FILE, chosen, {"root": str(Path(args.root).resolve()), "groups": groups,
                                              "files": len(corpus), "seeds": seeds,
                                              "fixed_from": thresholds}, options)
        with atomic_write(out / "results.json") as fh:  # last: its presence marks the run finished
            fh.write(json.dumps({"settings": options, "seeds": seeds, "groups": groups,
                                 "results": results}, indent=1).encode())
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
        (out / SETTINGS).unlink(missing_ok=True)
        print(f"wrote {out / 'table.md'}, {out / 'groups.md'}, {out / 'results.json'}, {out / FILE} and the scores "
              f"under {out / 'scores'}")
    return 0


def _read_interrupted(out: Path) -> dict:
    """The settings of the interrupted run in ``out`` (``--resume``), or one line saying why not."""
    if (out / "results.json").exists():
        raise ConfigError(f"--out {out} holds finished results (results.json); nothing to resume")
    if not (out / SETTINGS).is_file():
        raise ConfigError(f"--out {out} holds no interrupted run (no {SETTINGS}); run without --resume")
    try:
        saved = json.loads((out / SETTINGS).read_text())
        if not isinstance(saved, dict) or not isinstance(saved.get("options"), dict) or not saved.get("seeds"):
            raise ValueError("not the settings of a detect nab run")
    except (OSError, ValueError) as e:
        raise ConfigError(f"{out / SETTINGS}: cannot read ({e}); pass --force to start over") from None
    return saved


_FLAGS = {"root": "DIR", "groups": "--groups", "detectors": "--detector", "seeds": "--seed/--seeds",
          "thresholds": "--thresholds"}


def _settings(args: argparse.Namespace, saved: dict | None) -> dict:
    """A run's settings: the flags given, over an interrupted run's (``saved``, on --resume) or the
    defaults. On --resume a flag given must agree with the run's own, or one line names it."""
    old = saved or {}
    old_seeds = old.get("seeds") or [0]
    first = args.seed if args.seed is not None else old_seeds[0]
    count = args.seeds if args.seeds is not None else len(old_seeds)
    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else None
    settings = {"root": str(Path(args.root).resolve()),
                "groups": groups if args.groups is not None else old.get("groups"),
                "detectors": args.detector if args.detector is not None else old.get("detectors", [DEFAULT_DETECTOR]),
                "seeds": list(range(first, first + count)),
                "options": _options(args, old.get("options")),
                "thresholds": args.thresholds if args.thresholds is not None else old.get("thresholds")}
    if saved is not None:
        for key in sorted(set(saved) | set(settings)):
            if key == "options":
                _check_options(args.out, saved.get("options", {}), settings["options"])
            elif saved.get(key) != settings.get(key):
                raise ConfigError(f"--resume {args.out}: the interrupted run had {_FLAGS.get(key, key)} "
                                  f"{_shown(saved.get(key))}, these flags give {_shown(settings.get(key))}; leave "
                                  f"the flag out (the run's own settings stand), or choose a new --out")
    return settings


def _check_options(out: str, saved: dict, now: dict) -> None:
    for key in OPTION_KEYS:
        if key in saved and saved[key] != now[key]:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"--resume {out}: the interrupted run had {flag} {_shown(saved[key])}, these flags "
                              f"give {_shown(now[key])}; leave the flag out (the run's own settings stand), or "
                              f"choose a new --out")


def _shown(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "all" if value is None else str(value)
