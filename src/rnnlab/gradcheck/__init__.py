"""Public gradient checking: ``rnnlab.gradcheck.check(...)`` and ``rnnlab gradcheck``.

>>> from rnnlab import gradcheck
>>> rows = gradcheck.check("LSTMCell")          # or a class, or None for all
>>> print(gradcheck.format_table(rows))

To check a layer of your own, build a :class:`Case` (see ``specs.sequence_case``
for recurrent layers) and call :func:`check_case`, or register a spec with
``@specs.spec_for(MyModule)``.
"""
from __future__ import annotations

import numpy as np

from ..module import Module
from .core import EPS, TOLERANCE, Case, Row, check_case, format_table, input_case
from .specs import SPECS, randomize, sequence_case, spec_for
from . import specs_crf  # noqa: F401,E402  (registers the CRF spec)
from . import specs_lengths  # noqa: F401,E402  (adds the variable-length cases)
from . import specs_anomaly  # noqa: F401,E402  (the anomaly detectors' layers)
from . import specs_forecast  # noqa: F401,E402  (the forecasters' encoder-decoder and pinball loss)


def module_classes() -> list[type]:
    """Every concrete Module subclass defined in the rnnlab package, in a stable order.

    Classes defined elsewhere (a test's toy module, a user's own layer) are
    not rnnlab's to vouch for; register a spec for them with ``spec_for``.
    """
    seen: dict[str, type] = {}
    stack = list(Module.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] == "rnnlab" and not cls.__dict__.get("abstract", False):
            seen[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [seen[k] for k in sorted(seen)]


def resolve(name: str | type) -> type:
    if isinstance(name, type):
        return name
    matches = [cls for cls in SPECS if cls.__name__.lower() in (name.lower(), name.lower() + "cell")]
    if not matches:
        known = ", ".join(sorted(cls.__name__ for cls in SPECS))
        raise ValueError(f"no gradcheck spec for {name!r}; known modules: {known}")
    return matches[0]


def discover() -> None:
    """Import every rnnlab module, so that task-level models (which register their specs beside
    their code, e.g. ``rnnlab.models.seqmodel``) are known too."""
    import importlib
    import pkgutil
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])  # the rnnlab package folder (no upward import)
    for info in pkgutil.walk_packages([root], "rnnlab."):
        if not info.name.endswith("__main__"):
            try:
                importlib.import_module(info.name)
            except ImportError:  # a module needing an optional extra that is not installed
                continue


def check(name: str | type | None = None, *, seed: int = 0) -> list[Row]:
    """Run the spec of one module (by class or name), or of all modules when ``name`` is None."""
    discover()
    classes = [resolve(name)] if name is not None else sorted(SPECS, key=lambda c: c.__name__)
    rows: list[Row] = []
    for cls in classes:
        rng = np.random.default_rng(seed)
        for case in SPECS[cls](rng):
            rows.extend(check_case(cls.__name__, case, seed=seed))
    return rows


__all__ = ["EPS", "SPECS", "TOLERANCE", "Case", "Row", "check", "check_case", "discover", "format_table",
           "module_classes", "randomize", "resolve", "sequence_case", "spec_for"]
