"""Named datasets: a small registry, lookup, verification and download.

A dataset file is looked for, in order, in ``data_dir`` (the ``--data-dir``
option), in the folder named by the ``RNNLAB_DATA`` environment variable, and
in the user cache folder (``$XDG_CACHE_HOME/rnnlab`` or ``~/.cache/rnnlab``).
The first copy found must match the registered sha256 exactly: a wrong file is
an error rather than a silent fallback, so results are reproducible. If no
copy exists, the file is downloaded into the cache folder (short timeout,
written to a temporary file and renamed only after its sha256 is verified);
if that fails, the error says where to put the file by hand.

Registry note: the ``nietzsche`` sha256 is that of a *repaired* file. The
public copies of the Keras ``nietzsche.txt`` found for this project had their
8 non-ASCII characters UTF-8-encoded twice; the reference file was repaired
by decoding once as UTF-8 and re-encoding as Latin-1 (nothing else changed;
600,901 bytes, matching the published corpus length). A download whose bytes
differ from the repaired file is rejected by the sha256 check, and the error
explains how to supply the file instead.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path
from typing import NamedTuple

from rnnlab.errors import DataError

from .atomic import atomic_write

DATA_ENV = "RNNLAB_DATA"
DOWNLOAD_TIMEOUT_S = 20.0
_CHUNK = 1 << 20


class DatasetInfo(NamedTuple):
    name: str
    filename: str
    url: str
    sha256: str
    size: int
    description: str


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            "nietzsche",
            "nietzsche.txt",
            "https://s3.amazonaws.com/text-datasets/nietzsche.txt",
            "23cf69874ab69d3d256099ab530ea4be24d47d9675b673bcc67cbcd6298ec647",
            600_901,
            # sha256 of the repaired file: see the module docstring.
            "Nietzsche in English (Keras text-datasets); sha256 of the repaired "
            "UTF-8 file, see the registry comment",
        ),
        DatasetInfo(
            "tinyshakespeare",
            "tinyshakespeare.txt",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            1_115_394,
            "Tiny Shakespeare from karpathy/char-rnn (input.txt)",
        ),
    )
}


def cache_dir() -> Path:
    """The per-user cache folder (``$XDG_CACHE_HOME/rnnlab`` or ``~/.cache/rnnlab``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnlab"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _search_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    if os.environ.get(DATA_ENV):
        dirs.append(Path(os.environ[DATA_ENV]).expanduser())
    dirs.append(cache_dir())
    return dirs


def _verify(info: DatasetInfo, path: Path) -> None:
    got = file_sha256(path)
    if got != info.sha256:
        raise DataError(
            f"{path}: sha256 mismatch for dataset '{info.name}': expected {info.sha256}, "
            f"got {got} ({path.stat().st_size:,} bytes, expected {info.size:,}); "
            "replace or remove the file"
        )


def download(url: str, dest: Path, sha256: str, max_bytes: int, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch ``url`` into ``dest`` atomically; raises OSError/ValueError on failure.

    The body is hashed while streaming and the rename happens only if the
    sha256 matches, so ``dest`` is either absent or the verified file.
    ``max_bytes`` guards against an endless or wrong response.
    """
    digest = hashlib.sha256()
    total = 0
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(dest) as out:
        for block in iter(lambda: response.read(_CHUNK), b""):
            total += len(block)
            if total > max_bytes:
                raise ValueError(f"response larger than {max_bytes:,} bytes")
            digest.update(block)
            out.write(block)
        if digest.hexdigest() != sha256:
            raise ValueError(f"downloaded file has sha256 {digest.hexdigest()}, expected {sha256}")


def resolve_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of the verified file for dataset ``name`` (downloading it if needed)."""
    info = DATASETS.get(name)
    if info is None:
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(sorted(DATASETS))}")
    dirs = _search_dirs(data_dir)
    for folder in dirs:
        candidate = folder / info.filename
        if candidate.is_file():
            _verify(info, candidate)
            return candidate
    dest = cache_dir() / info.filename
    try:
        download(info.url, dest, info.sha256, max_bytes=2 * info.size)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        looked = ", ".join(str(d) for d in dirs)
        raise DataError(
            f"dataset '{name}': {info.filename} not found (looked in {looked}) and download from "
            f"{info.url} failed ({reason}); download it yourself and pass --data-dir DIR or set "
            f"{DATA_ENV}=DIR, where DIR contains {info.filename} (sha256 {info.sha256})"
        ) from None
    return dest
