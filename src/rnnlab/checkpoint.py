"""Checkpoint files: named arrays plus JSON metadata in one atomic ``.npz``.

Format (version 1): a zip archive readable by ``np.load`` in which every
array ``name`` is the member ``name.npy``, and the member
``__rnnlab_meta__.npy`` is a uint8 array holding UTF-8 JSON::

    {"format": "rnnlab-checkpoint", "version": 1, "meta": <caller's meta>}

The tag and version let :func:`load_checkpoint` tell an rnnlab checkpoint
from any other ``.npz``. Nothing is pickled, in either direction.

Saving is crash-safe: the archive is written to a hidden temporary file in
the same folder, fsynced and renamed over ``path`` (see
:mod:`rnnlab.io.atomic`), so ``path`` always holds either the previous
checkpoint or the complete new one. Arrays with NaN/inf are refused before
anything is written: a diverged model must not overwrite a good checkpoint;
so are arrays that are not real numbers (complex, strings, structured).

Loading trusts nothing in the file: before any array is allocated, the
archive's declared sizes are checked against limits (``MAX_TOTAL_BYTES``,
``MAX_META_BYTES``, ``MAX_EXPANSION`` for compressed entries) and each
``.npy`` header's shape against the bytes its entry holds; the metadata's
nesting is bounded (``MAX_META_DEPTH``); arrays with NaN/inf or a dtype that is
not float, integer or boolean are refused, as on saving. Every problem is a :class:`CheckpointError` naming the file, the
entry and what to use instead.

Metadata is plain JSON: tuples come back as lists and NumPy scalars (e.g. a
float32 loss) are stored as Python numbers; ``inf``/``nan`` floats are kept
(Python's JSON dialect), since "best loss so far = inf" is legitimate.
"""
from __future__ import annotations

import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rnnlab.io.atomic import atomic_write
from rnnlab.errors import CheckpointError

CHECKPOINT_FORMAT = "rnnlab-checkpoint"
CHECKPOINT_VERSION = 1
META_KEY = "__rnnlab_meta__"
_SUFFIX = ".npy"
# Errors the zip/npy readers raise on damaged input.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError, UnicodeDecodeError,
                NotImplementedError, RuntimeError, struct.error, TypeError, OverflowError, SyntaxError)

# Limits checked before anything is allocated, so that a damaged or hostile file is refused with a
# message instead of exhausting memory (module attributes: raise them here for a larger model).
MAX_TOTAL_BYTES = 16 << 30        # all arrays of one checkpoint together, as declared by the archive
MAX_META_BYTES = 64 << 20         # the JSON metadata (a full Unicode vocabulary is ~11 MB)
MAX_META_DEPTH = 64               # nesting of the metadata's JSON
MAX_MEMBERS = 100_000             # entries in the archive
MAX_EXPANSION = 50                # a compressed entry may expand at most this much...
EXPANSION_FREE_BYTES = 64 << 20   # ...once it is larger than this (small ones: any ratio)
_CHUNK_BYTES = 16 << 20
# The dtype kinds a checkpoint holds: floats (weights, optimizer state), integers (counters, ids) and
# booleans (masks). Complex, string, structured and datetime arrays are nothing rnnlab writes: loading one
# would drop its imaginary part with a ComplexWarning, or fail later with a traceback.
_REAL_KINDS = "fiub"


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
        if array.dtype.kind not in _REAL_KINDS:
            raise CheckpointError(f"{path}: array '{name}' has dtype {array.dtype}, not real numbers; "
                                  "only float, integer and boolean arrays are saved")
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


def _advice(path: Path) -> str:
    """What to do about a damaged checkpoint: the run's other one, or an earlier run."""
    if path.name == "best.npz":
        return "use the run's last.npz (--checkpoint last) or an earlier run"
    if path.name == "last.npz":
        return "use the run's best.npz (--checkpoint best) or an earlier run"
    return "use another checkpoint (a run's best.npz or last.npz) or an earlier run"


def damaged_error(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{path}: {problem}; {_advice(path)}")


def _size(n: int) -> str:
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


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
    except _READ_ERRORS + (RecursionError,) as exc:  # a central directory that makes no sense
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise damaged_error(path, f"checkpoint is truncated or corrupt ({detail})") from None
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    if head.startswith(b"PK"):
        raise damaged_error(path, "checkpoint is truncated or corrupt (not a complete zip archive)")
    raise CheckpointError(f"{path}: not an rnnlab checkpoint (not an .npz/zip file)")


def _check_members(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse, before reading anything, archives whose declared sizes are not a checkpoint's."""
    if len(infos) > MAX_MEMBERS:
        raise damaged_error(path, f"checkpoint has {len(infos):,} entries (more than {MAX_MEMBERS:,}); not a model")
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise damaged_error(path, f"checkpoint declares {_size(total)} of arrays, more than the limit of "
                             f"{_size(MAX_TOTAL_BYTES)} (rnnlab.checkpoint.MAX_TOTAL_BYTES)")
    on_disk = path.stat().st_size
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED and info.file_size > on_disk:
            raise damaged_error(path, f"entry {info.filename!r} declares {_size(info.file_size)}, more than the "
                                 f"whole file ({_size(on_disk)}): truncated or corrupt")
        if info.file_size > EXPANSION_FREE_BYTES and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
            raise damaged_error(path, f"entry {info.filename!r} expands from {_size(info.compress_size)} to "
                                 f"{_size(info.file_size)} (more than {MAX_EXPANSION}-fold): "
                                 "not a checkpoint rnnlab wrote (a zip bomb?)")
    packed = sum(info.compress_size for info in infos)
    if total > EXPANSION_FREE_BYTES and total > MAX_EXPANSION * max(packed, 1):
        raise damaged_error(path, f"checkpoint's entries expand from {_size(packed)} to {_size(total)} (more than "
                                  f"{MAX_EXPANSION}-fold): not a checkpoint rnnlab wrote (a zip bomb?)")


def _read_header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    raise ValueError(f"unsupported .npy format version {version}")


def _read_array(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    """One member, its header checked against the bytes it holds before anything is allocated.

    ``ZipFile`` checks the member's CRC as the last bytes are read, so flipped
    bytes are caught here too; a member never yields more than its declared
    ``file_size`` (already checked against the limits).
    """
    with archive.open(info) as handle:
        shape, fortran, dtype = _read_header(handle)
        if dtype.hasobject:
            raise damaged_error(path, f"array '{name}' has dtype {dtype} (Python objects); rnnlab never saves those")
        if name != META_KEY and dtype.kind not in _REAL_KINDS:
            raise damaged_error(path, f"array '{name}' has dtype {dtype}, not real numbers (rnnlab saves only float, "
                                 "integer and boolean arrays: the file was damaged or edited)")
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise damaged_error(path, f"array '{name}' has an invalid shape {shape}")
        count = math.prod(shape)
        if dtype.itemsize == 0 and count:
            raise damaged_error(path, f"array '{name}' has a zero-size dtype {dtype}")
        nbytes = count * dtype.itemsize
        held = info.file_size - handle.tell()
        if nbytes != held:
            raise damaged_error(path, f"array '{name}' declares shape {shape} of {dtype} ({_size(nbytes)}) "
                                 f"but its entry holds {_size(max(held, 0))}")
        flat = np.empty(count, dtype=dtype)
        buffer = memoryview(flat.view(np.uint8)) if nbytes else memoryview(b"")
        done = 0
        while done < nbytes:
            got = handle.readinto(buffer[done:done + _CHUNK_BYTES])
            if not got:
                raise EOFError(f"array '{name}' ends early")
            done += got
        if handle.read(1):
            raise ValueError(f"array '{name}' has trailing bytes")
    if fortran:
        return flat.reshape(shape[::-1]).transpose()
    return flat.reshape(shape)


def _meta_depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            depth = max(depth, level)
            if depth > MAX_META_DEPTH:
                return depth
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return depth


def _read_meta(path: Path, archive: zipfile.ZipFile) -> dict:
    try:
        info = archive.getinfo(META_KEY + _SUFFIX)
    except KeyError:
        raise CheckpointError(f"{path}: not an rnnlab checkpoint (no {META_KEY} entry; a plain .npz?)") from None
    if info.file_size > MAX_META_BYTES:
        raise damaged_error(path, f"checkpoint metadata declares {_size(info.file_size)}, more than the limit of "
                             f"{_size(MAX_META_BYTES)}")
    raw = _read_array(path, archive, info, META_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise damaged_error(path, f"checkpoint metadata is corrupt (an array of {raw.dtype}, shape {raw.shape})")
    try:
        document = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise damaged_error(path, f"checkpoint metadata is corrupt (bad JSON: {exc})") from None
    except RecursionError:
        raise damaged_error(path, "checkpoint metadata is corrupt (JSON nested too deeply)") from None
    if _meta_depth(document) > MAX_META_DEPTH:
        raise damaged_error(path, f"checkpoint metadata is corrupt (JSON nested more than {MAX_META_DEPTH} levels deep)")
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rnnlab checkpoint (missing the '{CHECKPOINT_FORMAT}' tag)")
    version = document.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION or version < 1:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format version {version!r} "
            f"(this rnnlab reads version {CHECKPOINT_VERSION})"
        )
    if not isinstance(document.get("meta"), dict):
        raise damaged_error(path, "checkpoint metadata is corrupt (no 'meta' object)")
    return document["meta"]


def _check_finite(path: Path, name: str, array: np.ndarray) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        n_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise damaged_error(path, f"array '{name}' contains {n_bad:,} NaN/inf value(s) (rnnlab never saves those: "
                             "the file was damaged or edited)")


def _load(path: str | os.PathLike, with_arrays: bool) -> tuple[dict[str, np.ndarray], dict]:
    path = Path(path)
    archive = _open_archive(path)
    try:
        with archive:
            infos = archive.infolist()
            _check_members(path, infos if with_arrays else [i for i in infos if i.filename == META_KEY + _SUFFIX])
            meta = _read_meta(path, archive)
            arrays = {}
            for info in infos if with_arrays else ():
                member = info.filename
                if member == META_KEY + _SUFFIX:
                    continue
                if not member.endswith(_SUFFIX):
                    raise damaged_error(path, f"checkpoint is corrupt (unexpected entry {member!r})")
                name = member[: -len(_SUFFIX)]
                arrays[name] = _read_array(path, archive, info, name)
                _check_finite(path, name, arrays[name])
    except CheckpointError:
        raise
    except MemoryError:
        raise CheckpointError(f"{path}: not enough memory to load this checkpoint") from None
    except RecursionError:
        raise damaged_error(path, "checkpoint is corrupt (an entry's header is nested too deeply)") from None
    except _READ_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise damaged_error(path, f"checkpoint is truncated or corrupt ({detail})") from None
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
