"""A detector network's spec: what a detector checkpoint's ``meta["model"]`` holds, as a typed, frozen record.

:class:`DetectorSpec` names the kind of network (``detector``: ``pred``, ``encdec`` or ``vae``), its
sizes (``input_size``, ``hidden_size``, ``window``, ``horizon``, ``latent_size``) and its ``seed``;
:func:`rnnlab.tasks.anomaly.models.make_model` builds the network from it. :meth:`DetectorSpec.to_dict`
gives exactly the dict checkpoints have always held, so old run folders read the same;
:meth:`DetectorSpec.from_dict` reads such a dict back (``horizon`` and ``latent_size`` may be absent, as
``make_model`` always allowed: 1 and 8) and refuses an unknown key, a missing one or an ill-typed value
with one line naming the key.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any

from ...errors import CheckpointError

_OPTIONAL = {"horizon": 1, "latent_size": 8}


@dataclass(frozen=True)
class DetectorSpec:
    detector: str
    input_size: int
    hidden_size: int
    window: int
    seed: int
    horizon: int = 1          # pred: values forecast from each window
    latent_size: int = 8      # vae: size of z

    def to_dict(self) -> dict[str, Any]:
        """The dict saved as ``meta["model"]``, in the order the detector has always written it."""
        return {"detector": self.detector, "input_size": self.input_size, "hidden_size": self.hidden_size,
                "window": self.window, "horizon": self.horizon, "latent_size": self.latent_size, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: Any, where: str = "detector spec") -> "DetectorSpec":
        """A spec from a dict of its fields (a checkpoint's ``meta["model"]``), or the spec itself:
        :class:`~rnnlab.errors.CheckpointError` (one line, ``where: key ...``) for an unknown or missing
        key or an ill-typed value."""
        if isinstance(d, DetectorSpec):
            return d
        if not isinstance(d, dict):
            raise CheckpointError(f"{where}: must be a dict of model settings, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in d if key not in names]
        if unknown:
            raise CheckpointError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        missing = [name for name in names if name not in d and name not in _OPTIONAL]
        if missing:
            raise CheckpointError(f"{where}: missing key(s) {', '.join(missing)}")
        if not isinstance(d["detector"], str):
            raise CheckpointError(f"{where}: detector must be a string, got {d['detector']!r}")
        values = {name: d.get(name, _OPTIONAL.get(name)) for name in names}
        for name in names[1:]:
            if isinstance(values[name], bool) or not isinstance(values[name], numbers.Integral):
                raise CheckpointError(f"{where}: {name} must be a whole number, got {values[name]!r}")
            values[name] = int(values[name])
        return cls(**values)
