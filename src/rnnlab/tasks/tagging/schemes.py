"""Tag schemes: BIO (IOB2), BIOES (IOBES) and IOB1; validation, chunks and conversion.

A tag is ``O`` or ``P-TYPE`` with a one-letter prefix P and a non-empty TYPE:

* **BIO** (IOB2): every chunk starts with ``B-X``, continues with ``I-X``.
* **BIOES**: ``S-X`` is a one-token chunk; longer chunks are ``B-X I-X* E-X``.
* **IOB1** (input only, e.g. the original CoNLL-2003 files): chunks start with ``I-X``;
  ``B-X`` marks a chunk that directly follows another chunk of the same type.

:func:`chunks` reads any of them with conlleval's rules for where a chunk starts and ends,
extended to ``E-`` and ``S-`` exactly as seqeval's default (conlleval-compatible) mode does.
So an ill-formed sequence is read as conlleval reads it: ``O I-X`` starts a chunk at ``I-X``,
``B-X I-Y`` is two chunks. :func:`convert` rewrites a sequence through its chunks, so a
well-formed sequence converts losslessly and an ill-formed one is repaired the same way the
metrics read it.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

PREFIXES = {"BIO": "BI", "BIOES": "BIES", "IOB1": "BI"}
_ALIASES = {"IOB2": "BIO", "IOBES": "BIOES"}


class Chunk(NamedTuple):
    type: str
    start: int  # first token
    end: int    # one past the last token


def normalize_scheme(scheme: str) -> str:
    """'BIO', 'BIOES' or 'IOB1' for any accepted spelling (IOB2 = BIO, IOBES = BIOES)."""
    name = str(scheme).upper()
    name = _ALIASES.get(name, name)
    if name not in PREFIXES:
        raise ValueError(f"unknown tag scheme {scheme!r}; use BIO (IOB2), BIOES (IOBES) or IOB1")
    return name


def split_tag(tag: str) -> tuple[str, str]:
    """('O', '') for O, else (prefix, type): 'B-gene-protein' -> ('B', 'gene-protein')."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    return (prefix, kind) if sep else (tag, "")


def is_valid_tag(tag: str, scheme: str) -> bool:
    """Whether ``tag`` is O or PREFIX-TYPE with a prefix of ``scheme`` and a non-empty type."""
    if tag == "O":
        return True
    prefix, kind = split_tag(tag)
    return len(prefix) == 1 and prefix in PREFIXES[normalize_scheme(scheme)] and bool(kind) and kind.strip() == kind


def expected_tags(scheme: str) -> str:
    """How the tags of a scheme look, for error messages."""
    return "O or " + ", ".join(f"{p}-TYPE" for p in PREFIXES[normalize_scheme(scheme)])


def validate_tags(tags: Sequence[str], scheme: str) -> None:
    """Raise ValueError naming the first tag (and its position) that is not a tag of ``scheme``."""
    for i, tag in enumerate(tags):
        if not is_valid_tag(tag, scheme):
            raise ValueError(f"tag {tag!r} at position {i} is not a {normalize_scheme(scheme)} tag "
                             f"(expected {expected_tags(scheme)})")


# -- conlleval's chunk boundaries (as in seqeval's default mode) ------------------------------------
def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (prev_tag in ("E", "S")
            or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag not in ("O", ".") and prev_type != kind))


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (tag in ("B", "S")
            or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != kind))


def chunks(tags: Sequence[str]) -> list[Chunk]:
    """The chunks of one sentence, read with conlleval's rules (any scheme, ill-formed included)."""
    found: list[Chunk] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, label in enumerate(list(tags) + ["O"]):
        tag = label[:1]
        kind = label[1:].split("-", 1)[-1] or "_"
        if _end_of_chunk(prev_tag, tag, prev_type, kind):
            found.append(Chunk(prev_type, begin, i))
        if _start_of_chunk(prev_tag, tag, prev_type, kind):
            begin = i
        prev_tag, prev_type = tag, kind
    return found


def chunks_to_tags(found: Sequence[Chunk], length: int, scheme: str = "BIO") -> list[str]:
    """Tags of ``length`` tokens holding the (non-overlapping) chunks, written in ``scheme``."""
    scheme = normalize_scheme(scheme)
    tags = ["O"] * length
    previous: Chunk | None = None
    for c in sorted(found, key=lambda c: c.start):
        if c.start < 0 or c.end > length or c.end <= c.start:
            raise ValueError(f"chunk {c} does not fit {length} tokens")
        span = c.end - c.start
        if scheme == "BIOES" and span == 1:
            tags[c.start] = f"S-{c.type}"
        else:
            first = "B"
            if scheme == "IOB1":
                adjacent = previous is not None and previous.end == c.start and previous.type == c.type
                first = "B" if adjacent else "I"
            tags[c.start] = f"{first}-{c.type}"
            for t in range(c.start + 1, c.end):
                tags[t] = f"I-{c.type}"
            if scheme == "BIOES":
                tags[c.end - 1] = f"E-{c.type}"
        previous = c
    return tags


def convert(tags: Sequence[str], target: str, source: str | None = None) -> list[str]:
    """Rewrite one sentence's tags in ``target`` (BIO, BIOES or IOB1).

    ``source`` is only validated (ValueError for a tag outside it); the chunks are read with
    conlleval's rules, which read IOB1, BIO and BIOES alike.
    """
    if source is not None:
        validate_tags(tags, source)
    return chunks_to_tags(chunks(tags), len(tags), target)


def bio_to_bioes(tags: Sequence[str]) -> list[str]:
    return convert(tags, "BIOES")


def bioes_to_bio(tags: Sequence[str]) -> list[str]:
    return convert(tags, "BIO")


def iob1_to_bio(tags: Sequence[str]) -> list[str]:
    return convert(tags, "BIO")


def detect_scheme(sentences: Sequence[Sequence[str]]) -> str:
    """The scheme a file's tags are written in: BIOES when any E- or S- tag occurs; IOB1 when
    chunks start with I- (after O or another type) and every B- directly follows a chunk of its
    own type (IOB1's only use of B-); BIO otherwise (BIO is also the answer for tags holding no
    chunk at all)."""
    starts_with_i = b_after_other = False
    for tags in sentences:
        prev_type = ""
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix in ("E", "S"):
                return "BIOES"
            if prefix == "I" and kind != prev_type:
                starts_with_i = True
            if prefix == "B" and kind != prev_type:
                b_after_other = True
            prev_type = kind
    return "IOB1" if starts_with_i and not b_after_other else "BIO"


def chunk_starts_on_i(tags: Sequence[str]) -> list[int]:
    """Positions where an I- (or E-) tag starts a chunk: after O, at the sentence start or after
    another type. BIO and BIOES forbid it; conlleval (and :func:`chunks`) read it as a chunk start."""
    found, prev_type = [], ""
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix in ("I", "E") and kind != prev_type:
            found.append(i)
        prev_type = kind if prefix not in ("E", "S", "O") else ""
    return found


def ill_formed(tags: Sequence[str], scheme: str) -> list[int]:
    """Positions whose tag may not follow the previous one (or start / end the sentence) in
    ``scheme``, by the same rules the CRF's decode-time constraints use; [] when well formed."""
    from ...layers.crf import tag_constraints  # the one definition of the rules

    names = sorted(set(tags))
    if not names:
        return []
    index = {n: i for i, n in enumerate(names)}
    c = tag_constraints(names, scheme)
    ids = [index[t] for t in tags]
    bad = [0] if not c.start[ids[0]] else []
    bad += [t for t in range(1, len(ids)) if not c.transitions[ids[t - 1], ids[t]]]
    if not c.end[ids[-1]] and len(ids) - 1 not in bad:
        bad.append(len(ids) - 1)
    return bad
