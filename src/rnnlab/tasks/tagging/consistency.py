"""Label consistency after decoding (``--propagate``): a string the tagger tagged in one sentence is
tagged in its neighbours too.

A document repeats its entities ("adenomatous polyposis coli (APC) ... APC"), and a tagger that
reads one sentence at a time finds some occurrences and misses others. This pass rewrites the
predicted tags of a list of sentences (in their order; ``docs``, when given, bound the windows:
never across a ``-DOCSTART-``), with no model and no randomness:

* **propagation**: every exact occurrence (case-sensitive, token by token) of a string that the
  tagger tagged as an entity of type X in a sentence of the window (the sentence itself and
  ``window`` sentences on each side; ``window=None``: the whole document) becomes an entity of type
  X where its tokens are all untagged (O) and it is not part of a hyphenated word (no ``-`` token
  right before or after it: "PAH - deficient" is another word than "PAH"). A string tagged with
  several types takes the type it was tagged with most often; a tie is left alone. Strings without
  a letter are never propagated.
* **majority vote** (``vote``, on by default): a string is propagated only where the window holds
  at least as many tagged occurrences of it as untagged ones (an abbreviation is exempt: its
  definition is the evidence).
* **abbreviations** (Schwartz & Hearst 2003): a predicted entity followed by ``( SF )``, where
  SF is one token of 2-10 characters, starting with a letter or digit, holding a letter, whose
  letters and digits are found in the entity's text in order (the first one at the start of one
  of its words), defines SF as an abbreviation of that type: SF is then propagated like a tagged
  string (its occurrence in the parentheses included).

* **confidence gate** (``source``, ``target``; both 0: off, the pass above unchanged), which reads
  the model's posterior marginals (:class:`Confidence`, the CRF's forward-backward under the
  decoding's constraints): a predicted entity is a source (of a string, of an abbreviation) only if
  the marginal probability of its predicted tag is at least ``source`` at each of its tokens (an
  entity below it stays as predicted, but spreads nothing and is not an untagged occurrence in the
  vote either), and a new entity is placed only where the probability of some entity tag
  (1 - p(O)) is at least ``target`` at each of its tokens: the model half-believed it there.

Longer strings are placed first, then left to right; a new entity never overlaps a predicted one
or another new one, so no predicted entity is ever changed or cut. The rules are applied until
nothing changes (a string tagged by propagation is itself a source), so the result is a fixed
point: applying the pass to its own output changes nothing (ungated; the gate reads the model's
confidence in its own tags, which the pass's output no longer is). Sentences that gain nothing are
returned as they were, tag for tag; the others are rewritten in ``scheme`` through their chunks.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from ...errors import ConfigError
from .schemes import Chunk, chunks, chunks_to_tags


@dataclass(frozen=True)
class Propagation:
    """The pass's settings: ``window`` sentences on each side (None: the whole document; a
    negative number: off) and whether the abbreviation rule is on."""
    window: int | None = -1
    abbreviations: bool = True
    vote: bool = True       # propagate a string only where it was tagged at least as often as left untagged
    source: float = 0.0     # the confidence gate: a predicted entity is a source only if sure enough (0: all)
    target: float = 0.0     # ... and a new entity is placed only where the model half-believed it (0: anywhere)

    def __post_init__(self) -> None:   # every way a setting is made (a run's config, a flag, replace()) is checked
        for flag, p in (("--propagate-confidence", self.source), ("--propagate-support", self.target)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{flag} must be a number from 0 to 1, got {p}")

    @property
    def on(self) -> bool:
        return self.window is None or self.window >= 0

    @property
    def gated(self) -> bool:
        """Whether the pass reads the model's marginals (a threshold above 0)."""
        return self.on and (self.source > 0 or self.target > 0)

    def describe(self) -> str:
        if not self.on:
            return "off"
        reach = "the whole document" if self.window is None else f"{self.window} sentence(s) on each side"
        gate = f", confidence {self.source:g}, support {self.target:g}" if self.gated else ""
        return (f"{reach}{', abbreviations' if self.abbreviations else ''}"
                f"{', majority vote' if self.vote else ''}{gate}")


class Confidence(NamedTuple):
    """The model's belief in one sentence's tags, per token (from its posterior marginals)."""
    sure: Sequence[float]     # the marginal probability of the tag it predicted
    entity: Sequence[float]   # the probability of any tag but O (1 - p(O))


def confidence_of(tags: Sequence[str], marginals: Any, names: Sequence[str]) -> Confidence:
    """One sentence's :class:`Confidence` from its (length, tags) marginals, whose columns are the
    tags ``names`` (the model's tag vocabulary, O among them)."""
    index = {name: k for k, name in enumerate(names)}
    m = np.asarray(marginals, dtype=np.float64).reshape(len(tags), len(names))
    other = index.get("O")
    entity = 1.0 - m[:, other] if other is not None else np.ones(len(tags))
    return Confidence(m[np.arange(len(tags)), [index[t] for t in tags]].tolist(), entity.tolist())


OFF = Propagation()
AUTO_WINDOW = 10    # --propagate auto: the window tried on the validation split at the end of training
ABBREVIATION = ""   # the type slot of a source count that marks a string defined as an abbreviation


def parse_window(value: str | int | None, flag: str = "--propagate") -> int | None:
    """``off`` -> -1, ``doc`` -> None (the whole document), ``N`` -> N >= 0."""
    text = str(value).strip().lower() if value is not None else "off"
    if text in ("off", "", "none"):
        return -1
    if text in ("doc", "all"):
        return None
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0 or str(n) != text:
        raise ConfigError(f"{flag} takes off, doc, or a number of sentences N >= 0, got {value!r}")
    return n


def from_config(config: Mapping[str, Any], decided: Mapping[str, Any] | None = None,
                window: str | None = None, confidence: float | None = None,
                support: float | None = None) -> Propagation:
    """A run's setting from its saved config (``TagConfig`` fields; a run older than an option: that
    option off): ``--propagate auto`` is what the end of training decided (``decided``, saved in the
    checkpoint; off when undecided or not kept). ``window`` (off, N, doc) replaces the run's window,
    ``confidence`` and ``support`` its gate's thresholds."""
    value = str(config.get("propagate", "off")).strip().lower() if window is None else window
    if value == "auto":
        value = decided.get("window") if decided and decided.get("kept") else "off"
    reach = parse_window("doc" if value is None else value)
    if reach == -1:
        return OFF
    source = float(config.get("propagate_confidence", 0.0)) if confidence is None else float(confidence)
    target = float(config.get("propagate_support", 0.0)) if support is None else float(support)
    return Propagation(reach, bool(config.get("propagate_abbreviations", True)), bool(config.get("propagate_vote", True)),
                       source, target)


def _has_letter(words: Sequence[str]) -> bool:
    return any(ch.isalpha() for w in words for ch in w)


def is_abbreviation(short: str, long_words: Sequence[str]) -> bool:
    """Schwartz & Hearst's test: the short form's letters and digits appear in the long form in order,
    matched from the right, the first one at the start of a word of the long form."""
    if not 2 <= len(short) <= 10 or not short[0].isalnum() or not any(c.isalpha() for c in short):
        return False
    if len(long_words) < 1 or (len(long_words) == 1 and len(long_words[0]) <= len(short)):
        return False
    text = " ".join(long_words).lower()
    s, l = len(short) - 1, len(text) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while l >= 0 and (text[l] != c or (s == 0 and l > 0 and text[l - 1].isalnum())):
            l -= 1
        if l < 0:
            return False
        l -= 1
        s -= 1
    return True


def abbreviations_in(tokens: Sequence[str], found: Iterable[Chunk]) -> list[tuple[tuple[str, ...], str]]:
    """(short form, type) of every "entity ( SF )" in one sentence whose SF passes is_abbreviation."""
    out = []
    for c in found:
        e = c.end
        if (e + 2 < len(tokens) and tokens[e] == "(" and tokens[e + 2] == ")"
                and is_abbreviation(tokens[e + 1], tokens[c.start:c.end])):
            out.append(((tokens[e + 1],), c.type))
    return out


def _untagged(tokens: Sequence[str], found: Sequence[Chunk], longest: int, wanted: set, prefixes: set) -> Counter:
    """How often each string of ``wanted`` (of at most ``longest`` tokens; ``prefixes``: their
    :func:`_prefixes`) occurs with all its tokens outside every entity."""
    free = [True] * len(tokens)
    for c in found:
        for t in range(c.start, c.end):
            free[t] = False
    got: Counter = Counter()
    for p in range(len(tokens)):
        if not free[p] or (tokens[p],) not in prefixes:
            continue
        for q in range(p, min(len(tokens), p + longest)):
            if not free[q]:
                break
            words = tuple(tokens[p:q + 1])
            if words not in prefixes:   # no wanted string goes on this way
                break
            if words in wanted:
                got[words] += 1
    return got


def _prefixes(strings: Iterable[tuple[str, ...]]) -> set:
    """Every leading part (1 token and up) of every string: a scan stops where no string goes on."""
    return {w[:k] for w in strings for k in range(1, len(w) + 1)}


def _sources(tokens: Sequence[str], found: Sequence[Chunk], abbreviations: bool) -> Counter:
    got: Counter = Counter()
    for c in found:
        words = tuple(tokens[c.start:c.end])
        if _has_letter(words):
            got[(words, c.type)] += 1
    if abbreviations:
        for words, kind in abbreviations_in(tokens, found):
            got[(words, kind)] += 1
            got[(words, ABBREVIATION)] += 1   # defined as an abbreviation: exempt from the vote
    return got


def _windows(n: int, docs: Sequence[int] | None, window: int | None) -> list[tuple[int, int]]:
    """[lo, hi) of sentence i's window: ``window`` sentences each side, inside its document."""
    bounds = [(0, n)] * n
    start = 0
    for i in range(1, n + 1):
        if i == n or (docs is not None and docs[i] != docs[start]):
            for j in range(start, i):
                bounds[j] = (start, i) if window is None else (max(start, j - window), min(i, j + window + 1))
            start = i
    return bounds


def _new_chunks(tokens: Sequence[str], found: Sequence[Chunk], table: dict[tuple[str, ...], str],
                lengths: Sequence[int], compounds: bool = True, entity: Sequence[float] | None = None,
                least: float = 0.0) -> list[Chunk]:
    taken = [False] * len(tokens)
    for c in found:
        for t in range(c.start, c.end):
            taken[t] = True
    added = []
    firsts = {w[0] for w in table}
    for length in lengths:          # longest first, then left to right
        for p in range(len(tokens) - length + 1):
            if tokens[p] not in firsts:
                continue
            words = tuple(tokens[p:p + length])
            kind = table.get(words)
            if kind is None or any(taken[p:p + length]):
                continue
            if compounds and ((p > 0 and tokens[p - 1] == "-")
                              or (p + length < len(tokens) and tokens[p + length] == "-")):
                continue   # part of a hyphenated word ("PAH - deficient"): another word
            if entity is not None and min(entity[p:p + length]) < least:
                continue   # the model all but ruled an entity out here
            added.append(Chunk(kind, p, p + length))
            for t in range(p, p + length):
                taken[t] = True
    return added


def propagate(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], scheme: str,
              setting: Propagation, docs: Sequence[int] | None = None, rounds: int = 0,
              compounds: bool = True, confidence: Sequence[Confidence] | None = None) -> list[list[str]]:
    """The tags after the pass (see the module docstring); ``setting`` off returns the tags as they are.
    ``confidence``: each sentence's :class:`Confidence` (:func:`confidence_of`), which a gated
    setting needs and an ungated one ignores. ``rounds``: stop after this many rounds (0: at the
    fixed point; 1 is a single pass) and ``compounds=False`` (occurrences next to a hyphen are tagged
    too): for measurement only."""
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} sentences but {len(tags)} tag sequences")
    out = [list(t) for t in tags]
    if not setting.on or not tokens:
        return out
    found = [chunks(t) for t in out]
    trusted, entity = found, [None] * len(out)
    if setting.gated:
        if confidence is None or len(confidence) != len(tokens):
            raise ValueError("a confidence gate needs the model's confidence of every sentence")
        trusted = [[c for c in f if min(conf.sure[c.start:c.end]) >= setting.source] for f, conf in
                   zip(found, confidence)]
        entity = [conf.entity for conf in confidence]
    added: list[list[Chunk]] = [[] for _ in out]
    bounds = _windows(len(tokens), docs, setting.window)
    done = 0
    while True:
        sources = [_sources(tokens[i], trusted[i] + added[i], setting.abbreviations) for i in range(len(tokens))]
        free: list[Counter] = [Counter() for _ in tokens]
        if setting.vote:
            wanted = {w for src in sources for (w, _) in src}
            longest = max((len(w) for w in wanted), default=0)
            prefixes = _prefixes(wanted)
            free = [_untagged(tokens[i], found[i] + added[i], longest, wanted, prefixes) for i in range(len(tokens))]
        changed = False
        tagged_run, free_run, lo, hi, table = Counter(), Counter(), 0, 0, None
        for i, (a, b) in enumerate(bounds):   # windows only move right: running counts over them
            if a >= hi or a < lo:
                tagged_run, free_run, lo, hi, table = Counter(), Counter(), a, a, None
            if (a, b) != (lo, hi):
                while hi < b:
                    tagged_run.update(sources[hi])
                    free_run.update(free[hi])
                    hi += 1
                while lo < a:
                    _drop(tagged_run, sources[lo])
                    _drop(free_run, free[lo])
                    lo += 1
                table = None
            if table is None:
                table = _table(tagged_run, free_run)
                lengths = sorted({len(w) for w in table}, reverse=True)
            if not table:
                continue
            new = _new_chunks(tokens[i], found[i] + added[i], table, lengths, compounds, entity[i], setting.target)
            if new:
                added[i] += new
                changed = True
        done += 1
        if not changed or done == rounds:
            break
    for i, extra in enumerate(added):
        if extra:
            out[i] = chunks_to_tags(sorted(found[i] + extra, key=lambda c: c.start), len(tokens[i]), scheme)
    return out


def _drop(run: Counter, leaving: Counter) -> None:
    """``run.subtract(leaving)``, forgetting the strings whose count comes to 0: a window sliding
    over a long file keeps only what it holds, so :func:`_table` reads only that."""
    for key, n in leaving.items():
        left = run[key] - n
        if left:
            run[key] = left
        else:
            run.pop(key, None)


def _table(tagged: Counter, free: Counter) -> dict[tuple[str, ...], str]:
    """string -> the type it was tagged with most often (ties left out); with untagged counts
    (``free``, the vote), only strings tagged at least as often as they were left untagged, or
    defined as an abbreviation in the window."""
    best: dict[tuple[str, ...], tuple[int, str, bool]] = {}
    total: Counter = Counter()
    defined: set = set()
    for (words, kind), n in tagged.items():
        if n <= 0:
            continue
        if kind == ABBREVIATION:
            defined.add(words)
            continue
        total[words] += n
        old = best.get(words)
        if old is None or n > old[0]:
            best[words] = (n, kind, False)
        elif n == old[0]:
            best[words] = (n, old[1], True)
    return {w: kind for w, (n, kind, tie) in best.items() if not tie and (total[w] >= free[w] or w in defined)}
