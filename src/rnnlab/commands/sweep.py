"""``rnnlab sweep SPACE.toml``: a hyper-parameter search on Optuna over any task's flags.

The search itself is :mod:`rnnlab.experiments.sweep`; this module turns a trial's settings into the
task's own command line (``rnnlab train ...``, ``rnnlab tag train ...``, ``rnnlab forecast train
...``, ``rnnlab detect nab ...``), checks every key of the TOML against that command's flags
before anything runs, and runs each trial through the command, in this process.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shlex
from pathlib import Path
from typing import Any

# task -> (argv prefix, default metric, direction, metric from the loop's evaluations)
TASK_COMMANDS: dict[str, tuple[tuple[str, ...], str, str, bool]] = {
    "train": (("train",), "loss", "minimize", True),
    "tag": (("tag", "train"), "f1", "maximize", True),
    "forecast": (("forecast", "train"), "owa", "minimize", True),
    "detect": (("detect", "nab"), "standard", "maximize", False),
}
MANAGED = {"out", "resume", "force", "help"}   # the sweep sets these itself


class _ParseError(Exception):
    pass


class _Quiet(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise _ParseError(message)


def _subparser(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> argparse.ArgumentParser:
    for word in prefix:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


class TaskCommand:
    """One task's command as the sweep's :class:`~rnnlab.experiments.sweep.TrialCommand`."""

    def __init__(self, task: str, fixed: dict[str, Any], path: Path) -> None:
        from ..cli import build_parser

        self.task = task
        self.prefix, self.metric, self.direction, self.reports = TASK_COMMANDS[task]
        self.title = "rnnlab " + " ".join(self.prefix)
        self.path, self.fixed = path, dict(fixed)
        self.parser = build_parser()
        sub = _subparser(self.parser, self.prefix)
        self.options: dict[str, argparse.Action] = {}
        self.positionals: list[argparse.Action] = []
        for a in sub._actions:
            if a.dest in MANAGED or isinstance(a, argparse._HelpAction):
                continue
            if a.option_strings:
                self.options.setdefault(a.dest, a)
            else:
                self.positionals.append(a)
        for a in list(self.options.values()):  # a flag's own name works too: train = ... for --train (train_file)
            for flag in a.option_strings:
                if flag.startswith("--") and not flag.startswith("--no-"):
                    self.options.setdefault(flag[2:].replace("-", "_"), a)

    def __reduce__(self) -> tuple:
        """Sent to a Ray worker as what builds it (the parser is rebuilt there, not pickled)."""
        return (TaskCommand, (self.task, self.fixed, self.path))

    # -- settings -> command line ------------------------------------------------------------
    def check_key(self, key: str, where: str) -> None:
        from ..errors import ConfigError

        if key in MANAGED:
            raise ConfigError(f"{self.path}: {where}.{key}: set by the sweep itself (each trial trains into "
                              "its own folder under the sweep's --out)")
        if key not in self.options and key not in {a.dest for a in self.positionals}:
            import difflib

            names = sorted(set(self.options) | {a.dest for a in self.positionals})
            close = difflib.get_close_matches(key, names, n=1)
            raise ConfigError(f"{self.path}: {where}.{key}: not a flag of {self.title}"
                              + (f" (did you mean {close[0]}?)" if close else f"; its flags: {', '.join(names)}"))

    def argv(self, params: dict[str, Any], out: Path | None = None) -> list[str]:
        settings = {**self.fixed, **params}
        argv = list(self.prefix)
        for a in self.positionals:
            if a.dest in settings:
                argv.append(_text(settings[a.dest]))
        for key, value in settings.items():
            a = self.options.get(key)
            if a is None:
                continue
            flag = next((s for s in a.option_strings if s.startswith("--") and not s.startswith("--no-")),
                        a.option_strings[0])
            if isinstance(a, argparse.BooleanOptionalAction):
                argv.append(flag if value else "--no-" + flag[2:])
            elif isinstance(a, argparse._StoreTrueAction):
                if value:
                    argv.append(flag)
            elif isinstance(a, argparse._StoreFalseAction):
                if not value:
                    argv.append(flag)
            else:
                argv += [flag, _text(value)]
        if out is not None:
            argv += ["--out", str(out), "--force"]
        return argv

    def command_line(self, params: dict[str, Any]) -> str:
        return "rnnlab " + shlex.join(self.argv(params))

    def parse(self, params: dict[str, Any], out: Path | None = None, where: str = "") -> argparse.Namespace:
        from ..errors import ConfigError

        argv = self.argv(params, out)
        quiet = _Quiet(add_help=False)
        # argparse reports through the innermost parser's error(): make each raise instead of exiting
        parsers = [self.parser] + [_subparser(self.parser, self.prefix[:i + 1]) for i in range(len(self.prefix))]
        saved = [p.error for p in parsers]
        try:
            for p in parsers:
                p.error = quiet.error  # type: ignore[method-assign]
            with contextlib.redirect_stderr(_Null()):
                return self.parser.parse_args(argv)
        except _ParseError as exc:
            raise ConfigError(f"{self.path}: {where or 'settings'}: {self.command_line(params)}: {exc}") from None
        finally:
            for p, e in zip(parsers, saved):
                p.error = e  # type: ignore[method-assign]

    def run(self, params: dict[str, Any], out: Path) -> int:
        args = self.parse(params, out)
        return int(args.run(args) or 0)

    def result(self, out: Path, metric: str) -> float | None:
        """``detect nab``: the mean over seeds of the normalised NAB score under profile ``metric``."""
        try:
            results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
            from .detect_nab import DEFAULT_DETECTOR

            detector = str(self.fixed.get("detector", DEFAULT_DETECTOR))
            values = results[detector]["normalized"][metric]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return float(sum(values) / len(values)) if values else None


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def build(spec: Any) -> TaskCommand:
    """The task's command for ``spec``, every key checked, and the space's corners parsed (bad values now)."""
    from ..errors import ConfigError

    command = TaskCommand(spec.task, spec.fixed, spec.path)
    for key in spec.fixed:
        command.check_key(key, "fixed")
    for key in spec.space:
        command.check_key(key, "space")
    if spec.task == "detect" and "," in str(spec.fixed.get("detector", "")):
        raise ConfigError(f"{spec.path}: fixed.detector: one detector per sweep (pred, encdec, vae or a + of them)")
    for name, p in spec.space.items():
        values = list(p.choices) if p.kind == "categorical" else [p.low, p.high]
        for v in values:
            command.parse({name: v}, Path("trial"), where=f"space.{name}")
    return command


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="hyper-parameter search on Optuna over any task's flags (needs rnnlab[sweep])",
        description="Search a task's flags with Optuna (TPE sampler, median pruner): each trial trains through "
                    "the task's own command and training loop, reports its validation metric at every "
                    "evaluation, and is stopped early when it falls behind. The study is kept in a database: "
                    "rerun the same command to continue it; start it on several machines with one database URL "
                    "to share it. See docs/sweeps.md for the SPACE.toml format.")
    p.add_argument("space", metavar="SPACE.toml", help="the task, fixed flags, search space and budget")
    p.add_argument("--out", metavar="DIR",
                   help="folder of the trials' runs, sweep.json, sweep.db and the plot (default: runs/sweeps/<SPACE>)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage URL (default: sqlite:///OUT/sweep.db); e.g. postgresql://host/db for "
                        "workers on several machines")
    p.add_argument("--study", metavar="NAME", help="study name (default: the TOML's study, else its file name)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run the trials as tasks on a Ray cluster (pip install 'rnnlab[ray]'), as many at a time as "
                        "it has CPUs: a local one with 2 CPUs when no ADDRESS is given, else the cluster at ADDRESS "
                        "(auto, host:6379, ray://host:10001; its workers must reach --storage). Default: one trial "
                        "at a time in this process")
    p.add_argument("--plot", action="store_true", help="also write sweep.png: metric per trial and the best so far")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.sweep import Sweep, require_optuna
    from ..experiments.sweep_plot import plot_sweep
    from ..experiments.sweep_spec import load_spec
    from ..train.runs import refuse_run_folder

    spec = load_spec(args.space)
    command = build(spec)
    require_optuna()
    if args.plot:
        from ..plotting import require_matplotlib
        require_matplotlib()
    out = refuse_run_folder(args.out or Path("runs") / "sweeps" / spec.path.stem)  # trials go in OUT/trial-NNNN
    sweep = Sweep(spec, command, out=out, storage=args.storage, study=args.study)
    if args.ray:
        import sys

        from ..experiments.sweep_exec import run_on
        from ..train.executor import make_executor

        with make_executor(ray=args.ray, log=lambda line: print(line, file=sys.stderr)) as executor:
            result = run_on(sweep, executor)
    else:
        result = sweep.run()
    c = result["counts"]
    print(f"study {result['study']}: {c['COMPLETE']} complete, {c['PRUNED']} pruned, {c['FAIL']} failed"
          + (f", {c['RUNNING']} running" if c["RUNNING"] else "") + f"; results in {out / 'sweep.json'}")
    if args.plot:
        print(f"plot: {plot_sweep(result, out / 'sweep.png')}")
    best = result["best"]
    if best is None:
        print("no trial has completed yet")
        return 1
    print(f"best validation {result['metric']} {best['value']:.6g} (trial {best['number']}); to reproduce:")
    print("  " + best["command"])
    return 0
