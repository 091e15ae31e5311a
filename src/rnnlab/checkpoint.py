"""Checkpoint files: named arrays plus JSON metadata in one atomic ``.npz``.

Format (version 1): a zip archive readable by ``np.load`` in which every
array ``name`` is the member ``name.npy``, and the member
``__rnnlab_meta__.npy`` is a uint8 array holding UTF-8 JSON::

    {"format": "rnnlab-checkpoint", "version": 1, "meta": <caller's meta>}

The tag and version let :func:`load_checkpoint` tell an rnnlab checkpoint
from any other ``.npz``. Nothing is pickled, in either direction.

Saving is crash-safe: the archive is written to a hidden temporary file in
the same folder, fsynced and renamed over ``path`` (see
:mod:`rnnlab.data.atomic`), so ``path`` always holds either the previous
checkpoint or the complete new one. Arrays with NaN/inf are refused before
anything is written: a diverged model must not overwrite a good checkpoint.

Metadata is plain JSON: tuples come back as lists and NumPy scalars (e.g. a
float32 loss) are stored as Python numbers; ``inf``/``nan`` floats are kept
(Python's JSON dialect), since "best loss so far = inf" is legitimate.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rnnlab.data.atomic import atomic_write
from rnnlab.errors import CheckpointError

CHECKPOINT_FORMAT = "rnnlab-checkpoint"
CHECKPOINT_VERSION = 1
META_KEY = "__rnnlab_meta__"
_SUFFIX = ".npy"
# Errors the zip/npy readers raise on damaged input.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError, UnicodeDecodeError)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"object of type {type(value).__name__} is not JSON serialisable")


def _check_arrays(path: Path, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Validate names, dtypes and finiteness before anything touches the disk."""
    checked = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name == META_KEY:
            raise CheckpointError(f"{path}: invalid array name {name!r}")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise CheckpointError(f"{path}: array '{name}' has dtype {array.dtype}; only plain numeric arrays are saved")
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            n_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise CheckpointError(
                f"{path}: refusing to save: array '{name}' contains {n_bad} NaN/inf value(s)"
            )
        checked[name] = array
    return checked


def _encode_meta(path: Path, meta: Mapping[str, Any]) -> np.ndarray:
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"{path}: checkpoint metadata must be a dict, got {type(meta).__name__}")
    document = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "meta": dict(meta)}
    try:
        text = json.dumps(document, ensure_ascii=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata is not JSON-serialisable: {exc}") from None
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _write_member(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    # force_zip64: the member size is unknown when the stream is opened.
    with archive.open(name + _SUFFIX, "w", force_zip64=True) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def save_checkpoint(path: str | os.PathLike, arrays: Mapping[str, Any], meta: Mapping[str, Any],
                    *, compress: bool = False) -> Path:
    """Atomically write ``arrays`` and ``meta`` to ``path``; returns the path.

    Raises :class:`CheckpointError` (leaving any existing file untouched) for
    NaN/inf values, object arrays, bad names, non-JSON metadata or I/O errors.
    """
    path = Path(path)
    checked = _check_arrays(path, arrays)
    meta_array = _encode_meta(path, meta)
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    try:
        with atomic_write(path) as handle:
            with zipfile.ZipFile(handle, "w", compression=compression, allowZip64=True) as archive:
                _write_member(archive, META_KEY, meta_array)
                for name, array in checked.items():
                    _write_member(archive, name, array)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot write checkpoint: {exc}") from None
    return path


def _open_archive(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        pass
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc}") from None
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    if head.startswith(b"PK"):
        raise CheckpointError(f"{path}: checkpoint is truncated or corrupt (not a complete zip archive)")
    raise CheckpointError(f"{path}: not an rnnlab checkpoint (not an .npz/zip file)")


def _read_array(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    # ZipFile.read checks the member's CRC, so flipped bytes are caught here.
    return np.lib.format.read_array(io.BytesIO(archive.read(member)), allow_pickle=False)


def _read_meta(path: Path, archive: zipfile.ZipFile) -> dict:
    if META_KEY + _SUFFIX not in archive.namelist():
        raise CheckpointError(f"{path}: not an rnnlab checkpoint (no {META_KEY} entry; a plain .npz?)")
    raw = _read_array(archive, META_KEY + _SUFFIX)
    try:
        document = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata is corrupt (bad JSON: {exc})") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rnnlab checkpoint (missing the '{CHECKPOINT_FORMAT}' tag)")
    version = document.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION or version < 1:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format version {version!r} "
            f"(this rnnlab reads version {CHECKPOINT_VERSION})"
        )
    if not isinstance(document.get("meta"), dict):
        raise CheckpointError(f"{path}: checkpoint metadata is corrupt (no 'meta' object)")
    return document["meta"]


def _load(path: str | os.PathLike, with_arrays: bool) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(path)
    archive = _open_archive(path)
    try:
        with archive:
            meta = _read_meta(path, archive)
            arrays = {}
            for member in archive.namelist() if with_arrays else ():
                if member == META_KEY + _SUFFIX:
                    continue
                if not member.endswith(_SUFFIX):
                    raise CheckpointError(f"{path}: checkpoint is corrupt (unexpected entry {member!r})")
                arrays[member[: -len(_SUFFIX)]] = _read_array(archive, member)
    except CheckpointError:
        raise
    except _READ_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise CheckpointError(f"{path}: checkpoint is truncated or corrupt ({detail})") from None
    return arrays, meta


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read ``(arrays, meta)`` written by :func:`save_checkpoint`.

    Raises :class:`CheckpointError` naming ``path`` for a missing, truncated,
    corrupt or foreign file, or one from a newer format version.
    """
    return _load(path, with_arrays=True)


def read_checkpoint_meta(path: str | os.PathLike) -> dict:
    """Only the metadata (cheap: the arrays are not read). Same errors as loading."""
    return _load(path, with_arrays=False)[1]
