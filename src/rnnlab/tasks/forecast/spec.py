"""The forecaster's model spec: what a checkpoint's ``meta["model"]`` holds, as a typed, frozen record.

:class:`ForecastSpec` describes the network (``model``, ``cell``, ``hidden_size``, ``num_layers``,
``seed``, ``input_size``, ``future_size``, ``quantiles``) and what it sees (``window``, ``horizon``,
``season``, ``norm``, ``base``, ``periods``, ``robust``, ``phase``; :mod:`rnnlab.tasks.forecast.features`).
:meth:`ForecastSpec.to_dict` gives exactly the dict checkpoints and ``config.json`` have always held,
so old run folders load; :meth:`ForecastSpec.from_dict` reads such a dict back and refuses an unknown
key, a missing one or an ill-typed value with one line naming the key (a checkpoint is untrusted input).

Two keys are optional, for runs saved before they existed: ``robust`` (absent: ``False``, the
mean/standard-deviation scaling) and ``phase`` (absent: ``None``, written back absent, and the
time features count from the series' first value, :attr:`ForecastSpec.clock_phase` ``"start"``).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

from ...errors import CheckpointError

MODELS = ("direct", "encdec")
CELLS = ("lstm", "gru")
NORMS = ("log", "standard")
BASES = ("snaive", "none")
PHASES = ("end", "start")


@dataclass(frozen=True)
class ForecastSpec:
    model: str
    cell: str
    hidden_size: int
    num_layers: int
    seed: int
    window: int
    horizon: int
    season: int
    norm: str
    base: str
    periods: tuple[float, ...]
    quantiles: tuple[float, ...]
    input_size: int
    future_size: int
    robust: bool = False          # optional: absent in runs saved before the robust scaling
    phase: str | None = None      # optional: absent (None) in runs saved before the phase counted from the end

    @property
    def clock_phase(self) -> str:
        """The phase the time features use: ``phase``, or ``"start"`` for runs saved without one."""
        return self.phase or "start"

    @property
    def num_quantiles(self) -> int:
        return len(self.quantiles)

    def to_dict(self) -> dict[str, Any]:
        """The dict saved as ``meta["model"]``: the keys and order written since the forecaster began
        (``phase`` left out when it is ``None``), lists for the tuples."""
        d = {"model": self.model, "cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
             "seed": self.seed, "window": self.window, "horizon": self.horizon, "season": self.season,
             "norm": self.norm, "base": self.base, "periods": list(self.periods), "quantiles": list(self.quantiles),
             "robust": self.robust}
        if self.phase is not None:
            d["phase"] = self.phase
        d["input_size"], d["future_size"] = self.input_size, self.future_size
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "model spec") -> "ForecastSpec":
        """A spec from a checkpoint's ``meta["model"]``: :class:`~rnnlab.errors.CheckpointError` (one line,
        ``where: key ...``) for anything but a dict of the known keys with well-typed values."""
        if isinstance(d, ForecastSpec):
            return d
        if not isinstance(d, dict):
            raise CheckpointError(f"{where}: must be a dict of model settings, got {type(d).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in d:
            if key not in fields:
                raise CheckpointError(f"{where}: unknown key {key!r} (known: {', '.join(fields)})")
        for name, f in fields.items():
            if name not in d and f.default is dataclasses.MISSING:
                raise CheckpointError(f"{where}: key {name!r} is missing")
        values = {name: _check(where, name, d[name]) for name in fields if name in d}
        spec = cls(**values)
        size = 1 + 2 * len(spec.periods)
        for name in ("input_size", "future_size"):
            if getattr(spec, name) != size:
                raise CheckpointError(f"{where}: key {name!r} is {getattr(spec, name)}, but {len(spec.periods)} "
                                      f"periods give {size} features")
        return spec

    def replace(self, **changes: Any) -> "ForecastSpec":
        return dataclasses.replace(self, **changes)

    # -- deprecated: the dict the spec used to be (``Forecaster.spec["horizon"]``) ----------------------
    def __getitem__(self, key: str) -> Any:
        warnings.warn(f"spec[{key!r}] is deprecated: the forecaster's spec is a ForecastSpec; use spec.{key}",
                      DeprecationWarning, stacklevel=2)
        d = self.to_dict()
        if key not in d:
            raise KeyError(key)
        return d[key]

    def get(self, key: str, default: Any = None) -> Any:
        warnings.warn(f"spec.get({key!r}) is deprecated: the forecaster's spec is a ForecastSpec; use spec.{key}",
                      DeprecationWarning, stacklevel=2)
        return self.to_dict().get(key, default)


def as_spec(spec: "ForecastSpec | dict") -> ForecastSpec:
    """``spec`` itself, or the :class:`ForecastSpec` a dict in the checkpoint layout describes."""
    return spec if isinstance(spec, ForecastSpec) else ForecastSpec.from_dict(spec)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and v == v and abs(v) != float("inf")


_CHOICES = {"model": MODELS, "cell": CELLS, "norm": NORMS, "base": BASES, "phase": PHASES}
_POSITIVE = ("hidden_size", "num_layers", "window", "horizon", "season", "input_size", "future_size")


def _check(where: str, name: str, v: Any) -> Any:
    """The value of key ``name`` in its typed form, or one line naming the key."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{where}: key {name!r} must be {what}, got {v!r:.60}")

    if name in _CHOICES:
        if not isinstance(v, str) or v not in _CHOICES[name]:
            raise bad(f"one of {', '.join(_CHOICES[name])}")
        return v
    if name in _POSITIVE:
        if not _is_int(v) or v < 1:
            raise bad("an integer >= 1")
        return v
    if name == "seed":
        if not _is_int(v) or v < 0:
            raise bad("an integer >= 0")
        return v
    if name == "robust":
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if name == "periods":
        if not isinstance(v, (list, tuple)) or not all(_is_real(p) and p > 0 for p in v):
            raise bad("a list of positive numbers")
        return tuple(float(p) for p in v)
    if name == "quantiles":
        if not isinstance(v, (list, tuple)) or not v or not all(_is_real(q) and 0 < q < 1 for q in v):
            raise bad("a non-empty list of numbers strictly between 0 and 1")
        return tuple(float(q) for q in v)
    raise AssertionError(name)  # pragma: no cover  (every field is checked above)
