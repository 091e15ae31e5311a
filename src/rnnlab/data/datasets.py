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

from ..io.atomic import atomic_write

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


# -- named sets of files (tagging, forecasting, anomaly detection) ------------------------------
# A set is looked up like a corpus: each file by its path relative to a data folder (the layout of
# ../shared/data), verified by sha256. None of these is downloaded: the error says where to put them.
class FileSet(NamedTuple):
    name: str
    files: dict          # role (e.g. "train") -> DatasetInfo whose filename is relative to the data dir
    description: str


def _file(role: str, path: str, sha256: str, size: int) -> tuple[str, DatasetInfo]:
    return role, DatasetInfo(path, path, "", sha256, size, "")


FILE_SETS: dict[str, FileSet] = {
    s.name: s
    for s in (
        FileSet("ncbi-disease", dict((
            _file("train", "tagging/ncbi-disease/train.tsv",
                  "58379baf4614b8d757d93dd7a21b202849ca99f9b9d71b49185523ff5443300c", 1_137_445),
            _file("devel", "tagging/ncbi-disease/devel.tsv",
                  "b4e1e7efcc2a35047bf2f3d281648357470e674f555d4a26a0049ac37d59cc61", 200_352),
            _file("test", "tagging/ncbi-disease/test.tsv",
                  "8f088ce45dc4746592188f9e69de3d89d87f3bb8f0ed8c4a287d018123fa148d", 205_664),
        )), "NCBI-disease, IOB (Crichton et al. 2017 version); Dogan, Leaman & Lu 2014"),
        FileSet("conll2000", dict((
            _file("train", "tagging/conll2000/train.txt",
                  "91a468bf9858eacaed720a4cd8aa3503c89cc81c4bcf5ac3159110d0b626deea", 2_839_583),
            _file("test", "tagging/conll2000/test.txt",
                  "55f3557ae56e40c754a2c98a8926c963632d9b991f61713257fb22848ad4a246", 638_654),
        )), "CoNLL-2000 chunking (research use only)"),
        FileSet("m4-hourly", dict((
            _file("train", "m4/Hourly-train.csv",
                  "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f", 2_347_115),
            _file("test", "m4/Hourly-test.csv",
                  "71a57fccb15e534d973626ada4fb87febf789e9317715b7cc6dd3b5f90db6f42", 132_820),
        )), "M4 competition, hourly series (414 series, horizon 48)"),
        FileSet("nab-realknowncause", dict((
            _file("labels/combined_windows.json", "nab/labels/combined_windows.json",
                  "1e1fbc4601321aad8d0f8b3784c8134299379f68f6c1f7777565f8ffd57ab6b1", 15_359),
            _file("labels/combined_labels.json", "nab/labels/combined_labels.json",
                  "98724014c162fcfd4be605683517f194051a54e98756c53667bd33ddbc644d9b", 7_015),
            *(_file(f"realKnownCause/{n}.csv", f"nab/data/realKnownCause/{n}.csv", s, z) for n, s, z in (
                ("ambient_temperature_system_failure",
                 "230b68ccca20f59d562afd5d24ad52939c9b784386bed0054018358bf9120581", 233_321),
                ("cpu_utilization_asg_misconfiguration",
                 "58ba65dc0737cfbac11b51514476d50c438d44011232144bb8d93f392df58f9f", 539_274),
                ("ec2_request_latency_system_failure",
                 "98378580aa80157e057c61d59d81daddccc6c65a2c0c800e3f01f603b8215c3f", 123_428),
                ("machine_temperature_system_failure",
                 "92bf5b87fc7f9bba8ca0b7ec63ccaac8cb4a1371a258e8c29a10ae9c018d82a4", 732_223),
                ("nyc_taxi", "d8fa6f7f0734bf5c8be12c52a94e20a82664c397d9dec4449156bd453d32856d", 265_771),
                ("rogue_agent_key_hold", "47b110baa8e3636574c1033dda1cce780873647fab58223d159d4fee6f180e86", 55_527),
                ("rogue_agent_key_updown",
                 "9797cfef477c13306f7a33874ab4d6cf700f8f2c7e5825a2a5bc02004370909a", 138_333),
            )),
        )), "Numenta Anomaly Benchmark, realKnownCause group, with NAB's labels"),
    )
}


def resolve_files(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """``role -> verified path`` for every file of the named set (see :data:`FILE_SETS`).

    Each file is looked for in ``data_dir``, ``$RNNLAB_DATA`` and the user cache, under its
    path relative to the data folder (e.g. ``tagging/ncbi-disease/train.tsv``); the first copy
    found must match its sha256. A missing file is a :class:`DataError` saying where it belongs.
    """
    fileset = FILE_SETS.get(name)
    if fileset is None:
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(sorted(FILE_SETS))}")
    dirs = _search_dirs(data_dir)
    found = {}
    for role, info in fileset.files.items():
        for folder in dirs:
            candidate = folder / info.filename
            if candidate.is_file():
                _verify(info, candidate)
                found[role] = candidate
                break
        else:
            looked = ", ".join(str(d) for d in dirs)
            raise DataError(f"dataset '{name}': {info.filename} not found (looked in {looked}); pass "
                            f"--data-dir DIR or set {DATA_ENV}=DIR, where DIR/{info.filename} is the file "
                            f"(sha256 {info.sha256})")
    return found
