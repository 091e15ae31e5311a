"""Thresholds that carry to new data: the file ``detect nab --out`` writes and ``--thresholds`` reads.

Labelling is expensive, so a user tunes a detector's threshold on labelled streams (``rnnlab
detect nab --out DIR`` writes the thresholds NAB's optimiser chose to ``DIR/thresholds.json``)
and deploys it on new ones (``rnnlab detect run --thresholds FILE``), or scores a corpus at
fixed thresholds (``rnnlab detect nab --thresholds FILE``) to see how they carry over.

The file is JSON, in one of two forms::

    {"format": "rnnlab-detect-thresholds/1",
     "detectors": {"pred": {"standard": 0.53, "reward_low_FP_rate": 0.61, "reward_low_FN_rate": 0.41}},
     "chosen_on": {...}, "settings": {...}}          # what detect nab --out writes

    {"standard": 0.5, "reward_low_FP_rate": 0.6}     # a user's own: any detector

A threshold is a score in (0, 1.1]: a row is an alarm when its score is at least the threshold
(NAB's rule; 1.1, NAB's value for "never", fires on no row). With several seeds, the file holds
the median over the seeds of each seed's optimised threshold. ``chosen_on`` (the corpus, groups,
files and seeds) are for the record; ``settings`` (the detector settings the thresholds were chosen
with) is read by :func:`read_settings`: a command refuses to apply the thresholds with other settings
(a threshold is a score on the scale those settings make).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

from ...errors import ConfigError
from ...io.atomic import atomic_write
from .nab import PROFILES

FORMAT = "rnnlab-detect-thresholds/1"
FILE = "thresholds.json"


def _value(path: Path, where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= 1.1:
        raise ConfigError(f"--thresholds {path}: {where} is {value!r}; a threshold is a number in (0, 1.1]")
    return float(value)


def _profiles(path: Path, where: str, table) -> dict[str, float]:
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"--thresholds {path}: {where} must map profiles ({', '.join(PROFILES)}) to thresholds")
    unknown = [p for p in table if p not in PROFILES]
    if unknown:
        raise ConfigError(f"--thresholds {path}: unknown profile {unknown[0]!r} in {where}; the profiles are "
                          f"{', '.join(PROFILES)}")
    return {p: _value(path, f"{where}{p}", v) for p, v in table.items()}


def read_thresholds(path: str | Path) -> dict[str | None, dict[str, float]]:
    """``{detector: {profile: threshold}}``; the key ``None`` holds a user's thresholds for any
    detector. Every problem is one :class:`ConfigError` line naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--thresholds {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"--thresholds {path}: not a JSON file ({type(e).__name__}: {e})"[:300]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"--thresholds {path}: expected a JSON object (see docs/anomaly.md)")
    if "detectors" in data:
        dets = data["detectors"]
        if not isinstance(dets, dict) or not dets:
            raise ConfigError(f"--thresholds {path}: \"detectors\" must map detector names to profiles")
        return {name: _profiles(path, f"detectors.{name}.", table) for name, table in dets.items()}
    return {None: _profiles(path, "", {k: v for k, v in data.items() if k not in ("format", "chosen_on",
                                                                                    "settings")})}


def read_settings(path: str | Path) -> dict | None:
    """The detector settings a ``detect nab --out`` file records, or None (a user's own file, or none
    recorded). Call after :func:`read_thresholds`, which reports an unreadable file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    settings = data.get("settings") if isinstance(data, dict) else None
    return settings if isinstance(settings, dict) else None


def thresholds_for(table: Mapping[str | None, Mapping[str, float]], detector: str, path: str | Path,
                   profiles=PROFILES) -> dict[str, float]:
    """The thresholds of ``detector`` for ``profiles`` from a :func:`read_thresholds` table."""
    found = table.get(detector, table.get(None))
    if found is None:
        raise ConfigError(f"--thresholds {path} holds thresholds for {', '.join(str(k) for k in table)}, not for "
                          f"--detector {detector}; give that detector, or a file made for it")
    missing = [p for p in profiles if p not in found]
    if missing:
        raise ConfigError(f"--thresholds {path}: no {missing[0]} threshold for {detector}; add it, or choose "
                          f"another profile")
    return {p: float(found[p]) for p in profiles}


def write_thresholds(path: str | Path, detectors: Mapping[str, Mapping[str, float]], chosen_on: dict,
                     settings: dict) -> Path:
    """Write the file (atomically) that :func:`read_thresholds` reads."""
    body = {"format": FORMAT, "detectors": {k: dict(v) for k, v in detectors.items()}, "chosen_on": chosen_on,
            "settings": settings}
    with atomic_write(Path(path)) as fh:
        fh.write((json.dumps(body, indent=1) + "\n").encode())
    return Path(path)
