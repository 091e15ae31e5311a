"""The char-LM's configuration: one dataclass, filled from defaults, a TOML file and flags.

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

from ...blas.precision import PRECISIONS
from ...cells import CELLS
from ...errors import ConfigError
from ...train.loopconfig import LoopConfig, validate_loop


# cells whose time loop runs its step products in bf16 under --precision bf16 (rnnlab.fast.bf16)
BF16_CELLS = ("lstm", "gru")


def _opt(default: Any, help: str = "", **meta: Any) -> Any:
    """A field with the help ``rnnlab train --help`` shows (rnnlab.commands.configflags)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class TrainConfig(LoopConfig):
    """Every setting of a char-LM run: the loop's (:class:`~rnnlab.train.loopconfig.LoopConfig`,
    with the char-LM's defaults for some), then the data's and the model's."""
    # the loop's settings, char-LM defaults
    lr: float = 2e-3
    clip: float = 5.0                  # global gradient-norm threshold; 0 disables
    schedule: str = "auto"             # cosine to min_lr over the budget when there is one, else constant
    max_steps: int = 0                 # 0: no step limit
    eval_every: int = 200
    # data
    corpus: str | None = _opt(None, cli=False)  # None: the embedded default (stdlib source); a path or dataset name
    data_dir: str | None = _opt(None, "folder holding named datasets (default: $RNNLAB_DATA)")
    split: tuple[float, float, float] = _opt((0.9, 0.05, 0.05), "train/val/test fractions, e.g. 0.9,0.05,0.05")
    reverse: bool = _opt(False, "read the text backwards (each split from its end): a backward LM, e.g. for "
                                "`rnnlab tag train --lm`")
    # model
    cell: str = _opt("lstm", "recurrent cell: " + ", ".join(CELLS) + " (irnn: unless given, --optimizer adam --lr "
                             "0.001 --clip 1 --warmup-steps 30 --cell-options '{\"identity_scale\": 0.5}', the "
                             "setting that trains it)")
    hidden_size: int = _opt(256, "hidden units per layer")
    num_layers: int = _opt(2, "stacked recurrent layers")
    embedding_size: int = _opt(64, "embedding size; 0 feeds one-hot vectors instead")
    # measured: 2x256 LSTM overfits nietzsche within minutes without dropout
    dropout: float = _opt(0.2, "dropout probability between layers and before the output")
    proj_size: int = _opt(0, "linear projection of the top layer before the output; 0: none")
    cell_options: dict = _opt({}, "extra cell options as JSON, e.g. '{\"identity_scale\": 0.5}'")
    batch_size: int = _opt(64, "parallel streams per batch (B)")
    seq_len: int = _opt(64, "characters per stream per step: the truncated-BPTT length (T)")
    eval_chars: int = _opt(1_000_000, "characters of the validation split scored at each evaluation during "
                                      "training (a bounded sample for large corpora); 0: all. `rnnlab eval` "
                                      "scores a whole split")

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
    from ...cells import make_cell

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
    except OSError as exc:  # a folder, unreadable
        raise ConfigError(f"--config {p}: cannot read it ({exc.strerror or exc}); give a TOML file") from None
    return data.get("train", data)


def field_types() -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(TrainConfig)}
