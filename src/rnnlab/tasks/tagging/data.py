"""CoNLL-style tagged text: reading files, and the named datasets ncbi-disease and conll2000.

A CoNLL file holds one token per line, columns separated by tabs (when the line has a tab)
or by spaces: the token first, the tag last, optional feature columns (e.g. a POS tag) in
between. A blank line ends a sentence; a ``-DOCSTART-`` line starts a new document (each
sentence records its document's number, ``Sentence.doc``: ``--context`` never reads across
one) and is otherwise skipped; the file is UTF-8
(a byte-order mark is allowed). Input that cannot be read raises
:class:`rnnlab.errors.DataError` with one line naming the file, the line and what to do.

Named datasets (files found and verified by :func:`rnnlab.data.resolve_files`)::

    ncbi-disease   train / dev (the file devel.tsv) / test, BIO, one type (Disease)
    conll2000      train / test, BIO (IOB2), 11 chunk types; no official dev set, so dev is
                   carved from train deterministically: every 10th training sentence
                   (positions 9, 19, 29, ... counted from 0) is dev, the other nine in ten train

Vocabularies, features and batches are in :mod:`rnnlab.tasks.tagging.vocab`.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from ...data.datasets import resolve_files
from ...errors import DataError, InputWarning
from .schemes import chunk_starts_on_i, chunks, convert, expected_tags, is_valid_tag, normalize_scheme

DEV_EVERY = 10  # conll2000: every 10th training sentence is dev


@dataclass(frozen=True)
class Sentence:
    """One sentence: its tokens, the feature columns of each token, and its tags."""
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    features: tuple[tuple[str, ...], ...] = ()  # per token, the columns between token and tag
    source: str = ""                            # "file:line" of the first token, for messages
    doc: int = 0                                # document number in its file (a -DOCSTART- line starts the next)

    def __len__(self) -> int:
        return len(self.tokens)


def _columns(line: str) -> list[str]:
    if "\t" in line:
        return [c.strip(" ") for c in line.strip(" \t").split("\t")]
    return re.split(r" +", line.strip(" "))


# A sentence this long is a file without blank lines between sentences (CoNLL-2000's longest has 78
# tokens, NCBI-disease's 123): read as one, it would be trained on as one sequence.
LONG_SENTENCE = 1000


def read_conll(path: str | os.PathLike, scheme: str | None = "BIO") -> list[Sentence]:
    """Sentences of one CoNLL file; tags are checked against ``scheme``: ``"auto"`` accepts the
    tags of any scheme (O, B-, I-, E-, S- with a type) and refuses the rest (``Q-Thing``,
    ``B-``, ``Disease``) naming file, line and tag; None accepts any string."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror}); check the path") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: byte 0x{raw[e.start]:02x} is not UTF-8; convert the file to UTF-8 "
                        f"(e.g. iconv -f latin1 -t utf-8)") from None
    auto = scheme == "auto"
    scheme = "BIOES" if auto else normalize_scheme(scheme) if scheme is not None else None
    sentences: list[Sentence] = []
    rows: list[list[str]] = []
    first = width = width_line = doc = 0

    def flush() -> None:
        if rows:
            feats = tuple(tuple(r[1:-1]) for r in rows) if width > 2 else ()
            sentences.append(Sentence(tuple(r[0] for r in rows), tuple(r[-1] for r in rows), feats,
                                      f"{path}:{first}", doc))
            rows.clear()

    for lineno, line in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip(" \t"):
            flush()
            continue
        if line.startswith("-DOCSTART-"):
            flush()
            doc += bool(sentences)   # the first document of a file that opens with -DOCSTART- is 0
            continue
        cols = _columns(line)
        if len(cols) < 2:
            raise DataError(f"{path}:{lineno}: one column only; each token line needs 'token [features...] tag', "
                            f"separated by tabs or spaces")
        if not width:
            width, width_line = len(cols), lineno
        elif len(cols) != width:
            raise DataError(f"{path}:{lineno}: {len(cols)} columns where line {width_line} has {width}; every "
                            f"token line needs the same columns (token, features, tag): fix this line")
        if "" in cols:
            raise DataError(f"{path}:{lineno}: an empty column; separate columns by one tab or by spaces")
        if auto and not is_valid_tag(cols[-1], scheme):
            raise DataError(f"{path}:{lineno}: tag {cols[-1]!r} is not a tag of BIO, BIOES or IOB1 (expected "
                            f"{expected_tags('BIOES')}); fix the tag in the file")
        if scheme is not None and not is_valid_tag(cols[-1], scheme):
            raise DataError(f"{path}:{lineno}: tag {cols[-1]!r} is not a {scheme} tag (expected "
                            f"{expected_tags(scheme)}); fix the tag or read the file with its own scheme")
        if not rows:
            first = lineno
        rows.append(cols)
    flush()
    if not sentences:
        raise DataError(f"{path}: no sentences (the file is empty or holds only blank and -DOCSTART- lines); "
                        f"write one 'token [features...] tag' line per token, a blank line between sentences")
    longest = max(sentences, key=lambda s: len(s.tokens))
    if len(longest.tokens) > LONG_SENTENCE:
        warnings.warn(f"{longest.source}: a sentence of {len(longest.tokens)} tokens (no blank line for "
                      f"{len(longest.tokens)} lines); are the blank lines between sentences missing?", InputWarning,
                      stacklevel=2)
    return sentences


def write_conll(path: str | os.PathLike, sentences: Sequence[Sentence],
                predicted: Sequence[Sequence[str]] | None = None) -> None:
    """Write sentences as a tab-separated CoNLL file; with ``predicted``, a column of predicted
    tags is appended after the gold tag (the layout conlleval reads)."""
    lines = []
    for i, s in enumerate(sentences):
        for t in range(len(s)):
            cols = [s.tokens[t], *(s.features[t] if s.features else ()), s.tags[t]]
            if predicted is not None:
                cols.append(predicted[i][t])
            lines.append("\t".join(cols))
        lines.append("")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def repair_note(sentences: Sequence[Sentence], scheme: str, label: str) -> str:
    """A one-line note counting the chunks that start on an I- or E- tag (after O, at a sentence
    start or after another type) in sentences written in ``scheme`` (BIO or BIOES forbid it;
    they are read as chunk starts, conlleval's rule), naming the first; "" when there are none
    or the file is IOB1, where chunks start on I- by design."""
    if scheme == "IOB1":
        return ""
    count, first = 0, ""
    for s in sentences:
        bad = chunk_starts_on_i(s.tags)
        if bad and not first:
            where, _, line = s.source.rpartition(":")
            first = f"{where}:{int(line) + bad[0] if line.isdigit() else line} ({s.tags[bad[0]]!r})"
        count += len(bad)
    if not count:
        return ""
    return (f"note ({label}): {count} chunk{'s' if count > 1 else ''} start on an I-/E- tag after O or another type, "
            f"which {scheme} forbids; read as chunk starts (conlleval's rule), first at {first}")


def convert_sentences(sentences: Sequence[Sentence], scheme: str) -> list[Sentence]:
    """The same sentences with their tags rewritten in ``scheme`` (see schemes.convert)."""
    return [replace(s, tags=tuple(convert(s.tags, scheme))) for s in sentences]


def carve_dev(sentences: Sequence[Sentence], every: int = DEV_EVERY) -> tuple[list[Sentence], list[Sentence]]:
    """(train, dev): every ``every``-th sentence (positions every-1, 2*every-1, ...) goes to dev."""
    dev = [s for i, s in enumerate(sentences) if i % every == every - 1]
    train = [s for i, s in enumerate(sentences) if i % every != every - 1]
    return train, dev


@dataclass(frozen=True)
class SplitStats:
    sentences: int
    tokens: int
    mentions: int  # entities / chunks, read as conlleval reads them


def stats(sentences: Sequence[Sentence]) -> SplitStats:
    return SplitStats(len(sentences), sum(len(s) for s in sentences),
                      sum(len(chunks(s.tags)) for s in sentences))


@dataclass
class TaggedCorpus:
    """The splits of a named dataset. ``corpus["devel"]`` is ``corpus.dev``."""
    name: str
    scheme: str
    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]
    files: dict[str, Path] = field(default_factory=dict)
    note: str = ""
    repairs: list[str] = field(default_factory=list)  # repair_note lines, one per file that needed one

    def __getitem__(self, split: str) -> list[Sentence]:
        split = {"devel": "dev", "valid": "dev", "validation": "dev"}.get(split, split)
        if split not in ("train", "dev", "test"):
            raise KeyError(split)
        return getattr(self, split)

    def splits(self) -> dict[str, list[Sentence]]:
        return {"train": self.train, "dev": self.dev, "test": self.test}

    def stats(self) -> dict[str, SplitStats]:
        return {k: stats(v) for k, v in self.splits().items()}


DATASETS = {"ncbi-disease": "BIO", "conll2000": "BIO"}  # name -> the scheme of its files


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, scheme: str | None = None,
                 dev_every: int = DEV_EVERY) -> TaggedCorpus:
    """Read a named dataset; with ``scheme`` (e.g. "BIOES") its tags are converted to it."""
    if name not in DATASETS:
        raise DataError(f"unknown tagging dataset '{name}'; known: {', '.join(sorted(DATASETS))}")
    files = resolve_files(name, data_dir)
    own = DATASETS[name]
    parts = {role: read_conll(path, own) for role, path in files.items()}
    if "devel" in parts:
        train, dev, note = parts["train"], parts["devel"], "dev = devel file"
    else:
        train, dev = carve_dev(parts["train"], dev_every)
        note = f"dev = every {dev_every}th training sentence (positions {dev_every - 1}, {2 * dev_every - 1}, ...)"
    repairs = [n for role, part in parts.items() if (n := repair_note(part, own, f"{role} file {files[role]}"))]
    corpus = TaggedCorpus(name, own, train, dev, parts["test"], files, note, repairs)
    if scheme is not None and normalize_scheme(scheme) != own:
        target = normalize_scheme(scheme)
        corpus = TaggedCorpus(name, target, convert_sentences(train, target), convert_sentences(dev, target),
                              convert_sentences(corpus.test, target), files, note, repairs)
    return corpus
