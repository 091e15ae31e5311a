"""Reading a corpus laid out as the Numenta Anomaly Benchmark (NAB) lays it out.

A NAB folder holds::

    data/<group>/<name>.csv          columns ``timestamp,value``, one row per record
    labels/combined_windows.json     {"<group>/<name>.csv": [[start, end], ...], ...}
    config/profiles.json             (optional) the cost matrices of the scoring profiles

Windows are given by timestamps, as NAB gives them, and NAB requires both ends of every window
to be timestamps that occur in the file (``nab/labeler.py``, ``CorpusLabel.getWindows``); windows
of a file are in time order and do not overlap (``CorpusLabel.validateLabels``). Here they are
mapped once to inclusive row ranges ``(first, last)``.

The label file of a NAB checkout names all 58 NAB files, while a copy may hold only some groups
(``../shared/data/nab`` holds ``realKnownCause``): label entries of a group that has no folder
under ``data/`` are skipped; an entry naming a missing file in a group that is present, a data file
without an entry, or anything unreadable is a :class:`~rnnlab.errors.DataError` naming the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.errors import DataError
from rnnlab.timeseries.stamped import NabFile, parse_timestamps, read_column, read_series  # noqa: F401

WINDOWS_FILE = "labels/combined_windows.json"
PROFILES_FILE = "config/profiles.json"


@dataclass(frozen=True)
class Profile:
    """One NAB application profile: the weights A_TP, A_FP, A_FN (and A_TN, which NAB never uses)."""

    name: str
    tp: float
    fp: float
    fn: float
    tn: float = 1.0


#: NAB's ``config/profiles.json``.
PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
}


@dataclass
class NabCorpus:
    """The files of a NAB folder (``key -> NabFile``, keys like ``realKnownCause/nyc_taxi.csv``)."""

    files: dict[str, NabFile]
    root: Path | None = None

    def __iter__(self):
        return iter(self.files.values())

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: str) -> NabFile:
        return self.files[key]

    @property
    def n_windows(self) -> int:
        return sum(len(f.windows) for f in self.files.values())


def window_rows(nab_file: NabFile, limits: list, where: str) -> list[tuple[int, int]]:
    """Map ``[[start, end], ...]`` timestamp strings to inclusive row ranges.

    As in NAB each end must be a timestamp of the file, and maps to the first row carrying it
    (``timestamps.index(...)`` in NAB's sweeper); windows must be in order and must not overlap.
    """
    first_row: dict = {}
    for i, t in enumerate(nab_file.timestamps.tolist()):
        first_row.setdefault(t, i)
    out: list[tuple[int, int]] = []
    for limit in limits:
        if not (isinstance(limit, (list, tuple)) and len(limit) == 2
                and all(isinstance(t, str) for t in limit)):
            raise DataError(f"{where}: window {limit!r} of {nab_file.key} is not [start, end]")
        ends = parse_timestamps(list(limit), f"{where} ({nab_file.key})", first_line=0)
        rows = []
        for t, s in zip(ends.tolist(), limit):
            if t not in first_row:
                raise DataError(f"{where}: window end {s!r} of {nab_file.key} is not a timestamp of "
                                "the file (NAB requires exact matches)")
            rows.append(first_row[t])
        first, last = rows
        if last < first:
            raise DataError(f"{where}: window {limit!r} of {nab_file.key} ends before it starts")
        if out and first <= out[-1][1]:
            raise DataError(f"{where}: windows of {nab_file.key} overlap or are out of order at {limit!r}")
        out.append((first, last))
    return out


def _read_json(path: Path, what: str) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:  # missing, a folder, unreadable: the reason alone, not Python's repr of it
        raise DataError(f"{path}: cannot read {what} ({e.strerror or e}); check the path") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: cannot read {what} (byte 0x{e.object[e.start]:02x} at offset {e.start} is not "
                        "UTF-8; a JSON file is UTF-8 text)") from None
    except ValueError as e:
        raise DataError(f"{path}: cannot read {what} (not JSON: {e})") from None


def load_windows(path: str | Path) -> dict[str, list]:
    """The raw label file: ``{key: [[start, end], ...]}``."""
    path = Path(path)
    raw = _read_json(path, "the label file")
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise DataError(f"{path}: expected {{\"<group>/<file>.csv\": [[start, end], ...]}}")
    return raw


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """NAB's ``config/profiles.json``: ``{name: {"CostMatrix": {"tpWeight": ..., ...}}}``."""
    path = Path(path)
    raw = _read_json(path, "the profiles")
    try:
        return {name: Profile(name, tp=float(p["CostMatrix"]["tpWeight"]),
                              fp=float(p["CostMatrix"]["fpWeight"]),
                              fn=float(p["CostMatrix"]["fnWeight"]),
                              tn=float(p["CostMatrix"].get("tnWeight", 1.0)))
                for name, p in raw.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: cannot read the profiles ({type(e).__name__}: {e})") from None


def load_corpus(root: str | Path, groups: list[str] | tuple[str, ...] | str | None = None,
                labels: str | Path | None = None) -> NabCorpus:
    """Read a NAB folder (``root/data/<group>/*.csv`` and ``root/labels/combined_windows.json``,
    or ``labels``), keeping only ``groups`` (names of the folders under ``data/``) when given."""
    root = Path(root)
    data_dir = root / "data"
    if not data_dir.is_dir():
        raise DataError(f"{root}: not a NAB folder (no data/ folder in it)")
    present = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    if isinstance(groups, str):
        groups = [groups]
    if groups is not None:
        missing = [g for g in groups if g not in present]
        if missing:
            raise DataError(f"{data_dir}: no group {', '.join(missing)} (found: {', '.join(present) or 'none'})")
        present = [g for g in present if g in groups]
    label_path = Path(labels) if labels is not None else root / WINDOWS_FILE
    raw = load_windows(label_path)
    files: dict[str, NabFile] = {}
    for group in present:
        for csv_path in sorted((data_dir / group).glob("*.csv")):
            key = f"{group}/{csv_path.name}"
            if key not in raw:
                raise DataError(f"{label_path}: no entry for {key} (data file {csv_path})")
            files[key] = read_series(csv_path, key)
    for key, limits in raw.items():
        if key.count("/") != 1:
            raise DataError(f"{label_path}: key {key!r} is not '<group>/<file>.csv'")
        group = key.split("/", 1)[0]
        if group not in present:
            continue  # a group this copy of NAB does not hold (or was not asked for)
        if key not in files:
            raise DataError(f"{label_path}: names {key}, which is not in {data_dir / group}")
        files[key].windows = window_rows(files[key], limits, str(label_path))
    return NabCorpus(files, root)


def load_results(results_dir: str | Path, detector: str, corpus: NabCorpus,
                 column: str = "anomaly_score") -> dict[str, np.ndarray]:
    """A detector's published outputs in NAB's results layout,
    ``results_dir/<detector>/<group>/<detector>_<name>.csv``: ``key -> column`` for every file of
    ``corpus``; the file must have as many rows as the series."""
    out = {}
    for key, nab_file in corpus.files.items():
        group, name = key.split("/", 1)
        path = Path(results_dir) / detector / group / f"{detector}_{name}"
        out[key] = read_column(path, column)
        if len(out[key]) != len(nab_file):
            raise DataError(f"{path}: {len(out[key])} rows, but {key} has {len(nab_file)}")
    return out
