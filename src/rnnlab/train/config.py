"""Training configuration: one dataclass, filled from defaults, a TOML file and flags.

Precedence: defaults < ``--config FILE.toml`` < command-line flags. The
resolved configuration is printed at start and saved in every checkpoint,
so a run can always be reproduced from its folder.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..blas.precision import PRECISIONS
from ..cells import CELLS
from ..errors import ConfigError
from .loopconfig import validate_loop


# cells whose time loop runs its step products in bf16 under --precision bf16 (rnnlab.fast.bf16)
BF16_CELLS = ("lstm", "gru")


@dataclass
class TrainConfig:
    # data
    corpus: str | None = None          # None: the embedded default (stdlib source); a path or dataset name
    data_dir: str | None = None
    split: tuple[float, float, float] = (0.9, 0.05, 0.05)
    reverse: bool = False              # read every split backwards (a backward LM, for tagging features)
    # model
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    embedding_size: int = 64           # 0: one-hot input
    dropout: float = 0.2               # measured: 2x256 LSTM overfits nietzsche within minutes without it
    proj_size: int = 0
    cell_options: dict = field(default_factory=dict)
    # optimisation
    batch_size: int = 64
    seq_len: int = 64
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    precision: str = "fp32"            # bf16: matrix products in bf16, fp32 accumulation (rnnlab.blas.precision)
    clip: float = 5.0                  # global gradient-norm threshold; 0 disables
    clip_value: float = 0.0            # element-wise clip (min-char-rnn's +-5); 0 disables
    schedule: str = "auto"             # cosine to min_lr over the budget when there is one, else constant
    warmup_steps: int = 0
    lr_step_size: int = 1000           # for the "step" schedule
    lr_gamma: float = 0.5
    min_lr: float = 0.0                # for the "cosine" schedule
    # budget and bookkeeping
    max_steps: int = 0                 # 0: no step limit
    max_minutes: float = 0.0           # 0: no time limit
    eval_every: int = 200
    eval_chars: int = 1_000_000        # per evaluation during training; 0: the whole validation split
    patience: int = 0                  # evaluations without improvement before stopping; 0: never
    log_every: int = 10
    guard: str = "backoff"             # what to do on a non-finite or exploding step
    diagnostics: bool = False
    seed: int = 0

    def validate(self) -> "TrainConfig":
        """The char-LM's own settings here; the loop's (optimizer, schedule, budgets...) by
        :func:`rnnlab.train.loopconfig.validate_loop`, shared with every task."""
        if self.cell not in CELLS:
            raise ConfigError(f"unknown --cell {self.cell!r}; choose from {', '.join(CELLS)}")
        validate_loop(self)
        for name in ("hidden_size", "num_layers", "batch_size", "seq_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{flag(name)} must be at least 1, got {getattr(self, name)}")
        for name in ("embedding_size", "proj_size", "eval_chars"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{flag(name)} must be >= 0, got {getattr(self, name)}")
        check_cell_options(self.cell, self.cell_options)
        check_precision_cell(self.precision, self.cell)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        check_types(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        data = dict(data)
        if "split" in data:
            data["split"] = tuple(data["split"])
        return cls(**data)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        return "\n".join(f"  {k} = {v!r}" for k, v in self.to_dict().items())


def check_precision_cell(precision: str, cell: str) -> None:
    """A known --precision, and bf16 only for a cell whose time loop has bf16 step products."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and cell not in BF16_CELLS:
        raise ConfigError(f"--precision bf16 runs the {', '.join(BF16_CELLS)} cell so far, not --cell {cell}")


def check_cell_options(cell: str, options: Any) -> None:
    """``--cell-options`` must be options the cell takes, with values it accepts (tried on a 1x1 cell)."""
    from ..cells import make_cell

    if not isinstance(options, dict):
        raise ConfigError(f"--cell-options must be a JSON object, got {type(options).__name__}")
    try:
        make_cell(cell, 1, 1, **options)
    except TypeError as exc:
        raise ConfigError(f"--cell-options {options} do not fit the {cell} cell: {exc}") from None
    except (ValueError, ArithmeticError) as exc:
        raise ConfigError(f"--cell-options {options}: {exc}") from None


def flag(name: str) -> str:
    """The command-line flag of a config field: ``hidden_size`` -> ``--hidden-size``."""
    return "--" + name.replace("_", "-")


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
          dict: "a table (JSON object)", tuple: "a list of three numbers"}


def check_types(data: dict[str, Any]) -> None:
    """Refuse values of the wrong type (a TOML ``hidden_size = "256"``) with one line naming the key.

    Types come from the defaults of :class:`TrainConfig`: an int field takes
    a whole number (not a boolean), a float field any number, a field whose
    default is None a string; ``split`` takes three numbers. Unknown keys are
    left to :meth:`TrainConfig.from_dict`.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a table of settings, got {type(data).__name__}")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name not in data:
            continue
        value, default = data[f.name], getattr(defaults, f.name)
        kind = str if default is None else type(default)
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is tuple:
            ok = (isinstance(value, (list, tuple)) and len(value) == 3
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
        else:
            ok = isinstance(value, kind) or (default is None and value is None)
        if not ok:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise ConfigError(f"config key {f.name} ({flag(f.name)}) must be {_KINDS.get(kind, kind.__name__)}, "
                              f"got {_type_name(value)} {shown}")


def _type_name(value: Any) -> str:
    names = {bool: "boolean", int: "whole number", float: "number", str: "string", list: "list", dict: "table",
             tuple: "list", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; a ``[train]`` table is accepted as well as top-level keys."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid TOML in {p}: {exc}") from None
    return data.get("train", data)


def field_types() -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(TrainConfig)}
