"""Reading text corpora: user files and folders, and the built-in default.

Decisions (kept here because they change what a model sees):

* Files are decoded as strict UTF-8, byte for byte: no newline translation,
  only a leading byte-order mark is dropped (it is an encoding marker, not
  text).
* A folder is read recursively in a deterministic order: regular files sorted
  by their path relative to the folder (POSIX spelling); names starting with
  "." (files *and* folders) are skipped, as are files that look binary, so a
  folder of notes with a stray image still works. The texts are joined with a
  single ``"\\n"`` between consecutive files, so one file's last line never
  runs into the next file's first line.
* A single file given explicitly that looks binary is an error, and so is
  invalid UTF-8 anywhere in user data (silently dropping data is worse).
  UTF-16 text (with a byte-order mark, or ASCII-heavy text without one) is
  named as such, with the ``iconv`` command that converts it, not called
  binary; in a folder it is skipped with that advice.
* The default corpus is the top-level ``.py`` files of the running
  interpreter's standard library (sorted by name, joined like a folder). It
  needs no download; files that are not valid UTF-8 are skipped and listed
  in :attr:`CorpusText.skipped`, deterministically.
"""
from __future__ import annotations

import hashlib
import os
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rnnlab.errors import DataError

from .datasets import DATASETS, resolve_dataset

# Control bytes that never occur in ordinary text (tab, newlines, form feed,
# backspace and escape are allowed).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\b\x1b") + b"\x7f"
_BINARY_SAMPLE = 8192
_BINARY_CONTROL_FRACTION = 0.3


class CorpusText(NamedTuple):
    """The text of a corpus and what went into it."""

    text: str
    files: tuple[str, ...]    # files used, relative to the source path
    skipped: tuple[str, ...]  # "relpath: reason" for files left out

    def sha256(self) -> str:
        """Hex sha256 of the UTF-8 encoding of ``text`` (a content fingerprint)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def looks_binary(data: bytes) -> str | None:
    """Return why ``data`` looks like a binary file, or None if it looks like text."""
    if b"\x00" in data:
        return "contains NUL bytes"
    sample = data[:_BINARY_SAMPLE]
    n_control = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if sample and n_control > _BINARY_CONTROL_FRACTION * len(sample):
        return f"{n_control} of its first {len(sample)} bytes are control characters"
    return None


def detect_utf16(data: bytes) -> str | None:
    """``"UTF-16LE"``/``"UTF-16BE"`` (with ``" with BOM"``) if ``data`` looks like UTF-16 text, else None.

    A byte-order mark decides; without one, text that is mostly ASCII (or
    Latin-1) in UTF-16 has a zero byte in every other position: on the odd
    offsets for little-endian, the even ones for big-endian. The sample must
    also decode as that encoding.
    """
    for bom, name in ((b"\xff\xfe", "UTF-16LE"), (b"\xfe\xff", "UTF-16BE")):
        if data.startswith(bom) and not data.startswith(b"\xff\xfe\x00\x00"):  # not UTF-32LE
            return name + " with BOM"
    sample = data[:_BINARY_SAMPLE - _BINARY_SAMPLE % 2]
    if len(sample) < 4 or len(data) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, other, name in ((odd, even, "UTF-16LE"), (even, odd, "UTF-16BE")):
        if zeros.count(0) >= 0.6 * len(zeros) and other.count(0) <= 0.05 * len(other):
            try:
                sample[:-2].decode(name.lower().replace("utf-16", "utf-16-"))  # [:-2]: a pair may be cut
            except UnicodeDecodeError:
                continue
            return name
    return None


def utf16_problem(path: Path | str, encoding: str) -> str:
    """The one-line message for a UTF-16 file: what it is and the command that converts it."""
    source = "UTF-16" if encoding.endswith("with BOM") else encoding  # iconv reads the BOM itself
    return (f"{path}: looks like UTF-16 text ({encoding}), expected UTF-8; convert it first: "
            f"iconv -f {source} -t UTF-8 '{path}' > '{Path(path).with_suffix('')}.utf8{Path(path).suffix}'")


def decode_utf8(data: bytes, name: str) -> str:
    """Decode strictly, pointing at the first bad byte (offset, line, column)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf16 = detect_utf16(data)
        if utf16:
            raise DataError(utf16_problem(name, utf16)) from None
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise DataError(
            f"{name}: not valid UTF-8: byte 0x{data[start]:02x} at byte offset {start} "
            f"(line {line}, column {column}); convert the file to UTF-8 first"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _list_folder(folder: Path) -> list[Path]:
    """Non-hidden regular files below ``folder``, sorted by relative path."""
    found = []
    for root, dirs, names in os.walk(folder):
        # Pruning in place stops os.walk from descending into hidden folders.
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / n for n in names if not n.startswith("."))
    found = [p for p in found if p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _read_file(path: Path) -> CorpusText:
    data = _read_bytes(path)
    if not data:
        raise DataError(f"{path}: file is empty")
    utf16 = detect_utf16(data)
    if utf16:
        raise DataError(utf16_problem(path, utf16))
    reason = looks_binary(data)
    if reason:
        raise DataError(f"{path}: looks like a binary file ({reason}), expected UTF-8 text")
    return CorpusText(decode_utf8(data, str(path)), (path.name,), ())


def _read_folder(folder: Path) -> CorpusText:
    files = _list_folder(folder)
    if not files:
        raise DataError(f"{folder}: folder contains no (non-hidden) files")
    texts, used, skipped = [], [], []
    for path in files:
        rel = path.relative_to(folder).as_posix()
        data = _read_bytes(path)
        utf16 = detect_utf16(data) if data else None
        if utf16:
            skipped.append(f"{rel}: looks like UTF-16 text ({utf16}; convert it to UTF-8: iconv -f "
                           f"{'UTF-16' if utf16.endswith('BOM') else utf16} -t UTF-8)")
            continue
        reason = "empty" if not data else looks_binary(data)
        if reason:
            skipped.append(f"{rel}: {reason}")
            continue
        texts.append(decode_utf8(data, str(path)))
        used.append(rel)
    if not texts:
        raise DataError(f"{folder}: folder contains no text files ({len(files)} skipped as empty or binary)")
    return CorpusText("\n".join(texts), tuple(used), tuple(skipped))


def _read_default(folder: Path) -> CorpusText:
    texts, used, skipped = [], [], []
    for path in default_corpus_files(folder):
        try:
            texts.append(decode_utf8(_read_bytes(path), path.name))
        except DataError as exc:
            skipped.append(str(exc))
            continue
        used.append(path.name)
    if not texts:
        raise DataError(f"{folder}: no readable .py files for the default corpus")
    return CorpusText("\n".join(texts), tuple(used), tuple(skipped))


def stdlib_dir() -> Path:
    """The running interpreter's standard-library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def default_corpus_files(folder: Path | None = None) -> list[Path]:
    """The ``.py`` files directly in the stdlib folder, sorted by name."""
    folder = stdlib_dir() if folder is None else folder
    return sorted((p for p in folder.glob("*.py") if p.is_file()), key=lambda p: p.name)


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus comes from; :meth:`read` produces its text.

    ``kind`` is ``"default"`` (``path`` is the stdlib folder), ``"dataset"``
    (``path`` is the verified dataset file) or ``"path"`` (a user file or
    folder). ``name`` is for messages and logs.
    """

    kind: str
    name: str
    path: Path

    def files(self) -> list[Path]:
        if self.kind == "default":
            return default_corpus_files(self.path)
        if self.path.is_dir():
            return _list_folder(self.path)
        return [self.path]

    def read(self) -> CorpusText:
        if self.kind == "default":
            return _read_default(self.path)
        if not self.path.exists():
            raise DataError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            return _read_folder(self.path)
        return _read_file(self.path)

    def signature(self) -> list[list]:
        """Cheap change detector: ``[relative path, size, mtime_ns]`` per file."""
        if not self.path.exists():
            raise DataError(f"{self.path}: no such file or folder")
        rows = []
        for path in self.files():
            st = path.stat()
            rel = path.name if path == self.path else path.relative_to(self.path).as_posix()
            rows.append([rel, st.st_size, st.st_mtime_ns])
        return rows


def default_corpus_source() -> CorpusSource:
    return CorpusSource("default", f"python {platform.python_version()} stdlib", stdlib_dir())


def default_corpus() -> str:
    """The default training text: this interpreter's top-level stdlib modules (~4.7 MB)."""
    return default_corpus_source().read().text


def default_corpus_fingerprint() -> str:
    """Stable identifier of the default corpus: Python version + sha256 of its text."""
    return f"python-{platform.python_version()}-stdlib-{default_corpus_source().read().sha256()}"


def load_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 file, or a folder of text files (see the module docstring)."""
    return CorpusSource("path", str(path), Path(path).expanduser()).read().text


def resolve_corpus(spec: str | os.PathLike | None, data_dir: str | os.PathLike | None = None) -> CorpusSource:
    """Turn a user's corpus choice into a :class:`CorpusSource`.

    ``None`` means the default corpus; a registered dataset name (see
    :data:`rnnlab.data.datasets.DATASETS`) is resolved, verified and if need
    be downloaded; anything else is a file or folder path. A name wins over a
    same-named file in the current folder; write ``./nietzsche`` for the file.
    """
    if spec is None:
        return default_corpus_source()
    if isinstance(spec, str) and spec in DATASETS:
        return CorpusSource("dataset", spec, resolve_dataset(spec, data_dir))
    path = Path(spec).expanduser()
    if not path.exists():
        known = ", ".join(sorted(DATASETS))
        raise DataError(f"{spec}: no such file or folder (and not a known dataset name: {known})")
    return CorpusSource("path", str(spec), path)
