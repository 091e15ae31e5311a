"""Encoded corpora: integer ids plus vocabulary, cached on disk and memory-mapped.

Encoding a large corpus is the slow step, so :meth:`EncodedCorpus.from_source`
keeps the ids as a ``.npy`` file next to a small JSON description in a cache
folder (default ``~/.cache/rnnlab/encoded``) and memory-maps it
(``np.load(mmap_mode="r")``): later runs, and splits and batches, read only
the pages they touch.

The cache entry for a source is named after the source's identity (kind,
absolute path, Python version for the default corpus, and a fixed vocabulary
if one was given). It is valid while the files' ``[path, size, mtime_ns]``
signature is unchanged; if the signature changed, the text is re-read and its
sha256 compared, so touching a file costs a hash but not a re-encode. The
``.npy`` name contains the content hash and the JSON is written last, so a
crash mid-write can never pair a description with the wrong ids.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io.atomic import atomic_write
from .batching import DEFAULT_FRACTIONS, Splits, split_ids
from .corpus import CorpusSource, resolve_corpus
from .datasets import cache_dir as user_cache_dir
from .vocab import Vocab

CACHE_FORMAT = "rnnlab-encoded"
CACHE_VERSION = 1


class EncodedCorpus:
    """A corpus as a 1-D id array (often a read-only memmap) and its :class:`Vocab`."""

    def __init__(self, ids: np.ndarray, vocab: Vocab, name: str = "<text>",
                 sha256: str | None = None, skipped: Sequence[str] = ()) -> None:
        self.ids = ids
        self.vocab = vocab
        self.name = name
        self.sha256 = sha256  # of the UTF-8 text; identifies the content
        self.skipped = tuple(skipped)  # files left out of the source, with reasons

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"EncodedCorpus({self.name!r}, {len(self):,} ids, vocab size {len(self.vocab)})"

    def split(self, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Splits:
        return split_ids(self.ids, fractions)

    @classmethod
    def from_text(cls, text: str, vocab: Vocab | None = None, name: str = "<text>") -> "EncodedCorpus":
        """Encode in memory (no cache); the vocabulary is built from ``text`` unless given."""
        vocab = Vocab.from_text(text) if vocab is None else vocab
        sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return cls(vocab.encode(text), vocab, name, sha)

    @classmethod
    def from_source(cls, spec: str | os.PathLike | CorpusSource | None = None, *,
                    data_dir: str | os.PathLike | None = None,
                    cache_dir: str | os.PathLike | None = None,
                    vocab: Vocab | None = None, use_cache: bool = True) -> "EncodedCorpus":
        """Encode a corpus spec (see :func:`resolve_corpus`), using the on-disk cache."""
        source = spec if isinstance(spec, CorpusSource) else resolve_corpus(spec, data_dir)
        if not use_cache:
            text = source.read()
            corpus = cls.from_text(text.text, vocab, source.name)
            corpus.skipped = text.skipped
            return corpus
        folder = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "encoded"
        return _Cache(folder, source, vocab).load()


class _Cache:
    """One cache entry: ``<key>.json`` describing ``<key>-<sha>.npy``."""

    def __init__(self, folder: Path, source: CorpusSource, vocab: Vocab | None) -> None:
        self.folder = folder
        self.source = source
        self.vocab = vocab
        identity = {
            "kind": source.kind,
            "path": str(source.path.resolve()),
            "python": platform.python_version() if source.kind == "default" else None,
            "vocab": vocab.to_dict() if vocab is not None else None,
        }
        blob = json.dumps(identity, sort_keys=True, ensure_ascii=True).encode()
        self.key = hashlib.sha256(blob).hexdigest()[:24]
        self.meta_path = folder / f"{self.key}.json"

    def load(self) -> EncodedCorpus:
        # Stat before reading: if a file changes while we read it, the stored
        # signature is the older one and the next run re-checks the content.
        signature = self.source.signature()
        meta = self._read_meta()
        if meta is not None and meta["signature"] == signature:
            hit = self._open(meta)
            if hit is not None:
                return hit
        text = self.source.read()
        sha = text.sha256()
        if meta is not None and meta["sha256"] == sha:
            hit = self._open(meta)
            if hit is not None:
                with contextlib.suppress(OSError):  # a read-only cache still works
                    self._write_meta({**meta, "signature": signature})
                return hit
        corpus = EncodedCorpus.from_text(text.text, self.vocab, self.source.name)
        corpus.skipped = text.skipped
        try:
            self._store(corpus, signature, meta)
        except OSError as exc:
            warnings.warn(f"could not write the encoded-corpus cache in {self.folder}: {exc}", stacklevel=3)
            return corpus
        meta = self._read_meta()
        return (self._open(meta) if meta is not None else None) or corpus

    def _read_meta(self) -> dict | None:
        """The JSON description, or None if missing, unreadable or from another version."""
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT \
                or meta.get("version") != CACHE_VERSION:
            return None
        needed = ("signature", "sha256", "ids_file", "length", "dtype", "vocab")
        return meta if all(k in meta for k in needed) else None

    def _open(self, meta: dict) -> EncodedCorpus | None:
        """Memory-map the cached ids; None if anything does not match the description."""
        try:
            vocab = Vocab.from_dict(meta["vocab"])
            ids = np.load(self.folder / Path(meta["ids_file"]).name, mmap_mode="r", allow_pickle=False)
        except Exception:  # any damage just means "rebuild"
            return None
        if ids.ndim != 1 or len(ids) != meta["length"] or ids.dtype != np.dtype(meta["dtype"]):
            return None
        return EncodedCorpus(ids, vocab, self.source.name, meta["sha256"], meta.get("skipped", ()))

    def _store(self, corpus: EncodedCorpus, signature: list, old: dict | None) -> None:
        ids_file = f"{self.key}-{corpus.sha256[:16]}.npy"
        with atomic_write(self.folder / ids_file) as handle:
            np.save(handle, corpus.ids, allow_pickle=False)
        self._write_meta({
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "source": self.source.name,
            "signature": signature,
            "sha256": corpus.sha256,
            "ids_file": ids_file,
            "length": len(corpus.ids),
            "dtype": corpus.ids.dtype.str,
            "vocab": corpus.vocab.to_dict(),
            "skipped": list(corpus.skipped),
        })
        if old is not None and old["ids_file"] != ids_file:
            with contextlib.suppress(OSError):
                (self.folder / Path(old["ids_file"]).name).unlink()

    def _write_meta(self, meta: dict) -> None:
        with atomic_write(self.meta_path) as handle:
            handle.write(json.dumps(meta, ensure_ascii=True, indent=1).encode("utf-8"))
