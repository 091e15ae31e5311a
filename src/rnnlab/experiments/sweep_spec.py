"""The search-space file of ``rnnlab sweep SPACE.toml``: parsed and checked, with one-line errors.

::

    task = "train"            # train (char-LM), tag, forecast or detect
    n_trials = 20             # trials of the study in all (complete + pruned), over every run and machine
    minutes = 30              # and/or: stop starting trials after this long (per invocation)
    # metric = "loss"         # default: the task's own validation metric (loss, f1, owa; NAB score for detect)
    # direction = "minimize"  # default: the metric's own
    # seed = 0                # the sampler's seed

    [fixed]                   # flags every trial gets, by their flag name (- or _)
    text = "corpus.txt"       # a positional argument by its name
    max_steps = 300

    [space]                   # flags the sampler chooses
    lr = { type = "float", low = 1e-4, high = 1e-2, log = true }
    hidden_size = { type = "int", low = 32, high = 128, step = 32 }
    cell = { type = "categorical", choices = ["lstm", "gru"] }
    dropout = [0.0, 0.1, 0.3]           # a list: categorical

    [pruner]
    kind = "median"           # median (default) or none
    startup_trials = 2        # trials that run to the end before any is pruned
    warmup_steps = 0          # training steps of a trial before it may be pruned

Which keys are flags of the task is checked by the command (it knows the parser).
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

TASKS = {"train": "train", "charlm": "train", "tag": "tag", "tagging": "tag", "forecast": "forecast",
         "detect": "detect"}
TOP_KEYS = {"task", "n_trials", "minutes", "metric", "direction", "seed", "study", "fixed", "space", "pruner"}
PRUNER_KEYS = {"kind", "startup_trials", "warmup_steps"}


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    name: str
    kind: str                       # "float", "int" or "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()


@dataclass
class SweepSpec:
    path: Path
    task: str
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Param] = field(default_factory=dict)
    n_trials: int | None = None
    minutes: float | None = None
    metric: str | None = None
    direction: str | None = None
    seed: int = 0
    study: str | None = None
    pruner: str = "median"
    startup_trials: int = 2
    warmup_steps: int = 0


def _err(path: Path, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {msg}")


def flag_key(name: str) -> str:
    """A flag as the TOML may spell it (``hidden-size``, ``--hidden-size``, ``hidden_size``) -> ``hidden_size``."""
    return name.lstrip("-").replace("-", "_")


def _number(path: Path, key: str, value: Any, kind: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(path, key, f"expected a number, got {value!r}")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise _err(path, key, f"expected an integer, got {value!r}")
        return int(value)
    if not math.isfinite(value):
        raise _err(path, key, f"expected a finite number, got {value!r}")
    return float(value)


def parse_param(path: Path, name: str, value: Any) -> Param:
    key = f"space.{name}"
    if isinstance(value, list):
        value = {"type": "categorical", "choices": value}
    if not isinstance(value, dict):
        raise _err(path, key, "expected a table such as { type = \"float\", low = 1e-4, high = 1e-2, log = true } "
                              "or a list of choices")
    kind = value.get("type")
    if kind not in ("float", "int", "categorical"):
        raise _err(path, f"{key}.type", f"expected \"float\", \"int\" or \"categorical\", got {kind!r}")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
    for k in value:
        if k not in allowed:
            raise _err(path, f"{key}.{k}", f"unknown key for a {kind} parameter (allowed: {', '.join(sorted(allowed))})")
    if kind == "categorical":
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _err(path, f"{key}.choices", "expected a non-empty list")
        for c in choices:
            if not isinstance(c, (str, int, float, bool)):
                raise _err(path, f"{key}.choices", f"choices must be strings, numbers or booleans, got {c!r}")
        return Param(name, kind, choices=tuple(choices))
    for k in ("low", "high"):
        if k not in value:
            raise _err(path, f"{key}.{k}", f"missing (a {kind} parameter needs low and high)")
    low, high = _number(path, f"{key}.low", value["low"], kind), _number(path, f"{key}.high", value["high"], kind)
    if not low < high:
        raise _err(path, key, f"low ({low}) must be below high ({high})")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise _err(path, f"{key}.log", f"expected true or false, got {log!r}")
    if log and low <= 0:
        raise _err(path, f"{key}.low", f"a log-scaled range needs low > 0, got {low}")
    step = value.get("step")
    if step is not None:
        step = _number(path, f"{key}.step", step, kind)
        if step <= 0:
            raise _err(path, f"{key}.step", f"must be positive, got {step}")
        if log:
            raise _err(path, f"{key}.step", "cannot be combined with log = true")
    return Param(name, kind, low, high, log, step)


def _positive(path: Path, key: str, value: Any, kind: type) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok:
        raise _err(path, key, f"expected a positive {'integer' if kind is int else 'number'}, got {value!r}")
    return kind(value)


def parse_spec(data: dict[str, Any], path: Path) -> SweepSpec:
    """Check a parsed TOML document; ConfigError naming the file and key on the first problem."""
    for k in data:
        if k not in TOP_KEYS:
            raise _err(path, k, f"unknown key (expected one of: {', '.join(sorted(TOP_KEYS))})")
    task = data.get("task")
    if task is None:
        raise _err(path, "task", "missing; say which task the trials train: train, tag, forecast or detect")
    if task not in TASKS:
        raise _err(path, "task", f"expected train (or charlm), tag, forecast or detect, got {task!r}")
    spec = SweepSpec(path=path, task=TASKS[task])
    if "n_trials" in data:
        spec.n_trials = _positive(path, "n_trials", data["n_trials"], int)
    if "minutes" in data:
        spec.minutes = _positive(path, "minutes", data["minutes"], float)
    if spec.n_trials is None and spec.minutes is None:
        raise _err(path, "n_trials", "give n_trials, minutes, or both (when to stop starting trials)")
    for k in ("metric", "study"):
        if k in data:
            if not isinstance(data[k], str) or not data[k]:
                raise _err(path, k, f"expected a non-empty string, got {data[k]!r}")
            setattr(spec, k, data[k])
    if "direction" in data:
        if data["direction"] not in ("minimize", "maximize"):
            raise _err(path, "direction", f"expected \"minimize\" or \"maximize\", got {data['direction']!r}")
        spec.direction = data["direction"]
    if "seed" in data:
        if isinstance(data["seed"], bool) or not isinstance(data["seed"], int):
            raise _err(path, "seed", f"expected an integer, got {data['seed']!r}")
        spec.seed = data["seed"]
    for table in ("fixed", "space", "pruner"):
        if not isinstance(data.get(table, {}), dict):
            raise _err(path, table, "expected a table ([" + table + "])")
    for k, v in data.get("fixed", {}).items():
        if isinstance(v, dict):
            raise _err(path, f"fixed.{k}", "expected a value, not a table (search ranges go under [space])")
        spec.fixed[flag_key(k)] = v
    for k, v in data.get("space", {}).items():
        name = flag_key(k)
        if name in spec.fixed:
            raise _err(path, f"space.{k}", "is also under [fixed]; give it in one place")
        spec.space[name] = parse_param(path, name, v)
    if not spec.space:
        raise _err(path, "space", "empty; give at least one flag to search over")
    pruner = data.get("pruner", {})
    for k in pruner:
        if k not in PRUNER_KEYS:
            raise _err(path, f"pruner.{k}", f"unknown key (expected one of: {', '.join(sorted(PRUNER_KEYS))})")
    if "kind" in pruner:
        if pruner["kind"] not in ("median", "none"):
            raise _err(path, "pruner.kind", f"expected \"median\" or \"none\", got {pruner['kind']!r}")
        spec.pruner = pruner["kind"]
    for k in ("startup_trials", "warmup_steps"):
        if k in pruner:
            v = pruner[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise _err(path, f"pruner.{k}", f"expected a non-negative integer, got {v!r}")
            setattr(spec, k, v)
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"search-space file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {p}: {exc}") from None
    return parse_spec(data, p)
