"""Cross-sentence context for the tagger (``rnnlab tag train --context N``).

With N > 0 the word BiLSTM (and the character BiLSTM, the embeddings, any char-LM features) reads
each sentence together with up to N neighbouring sentences on each side, taken from the same
list of sentences in its order (a file's, or a split's: never from another split) and never
across a document break (``Sentence.doc``; a ``-DOCSTART-`` line in a CoNLL file starts a new
document). Each batch row is then ``[left context ; the sentence ; right context]`` and carries
``Batch.span`` (B, 2): where the sentence starts in the row and how long it is. The model
computes emissions for every position of the row; :func:`gather` keeps the sentence's own
positions, and the CRF loss, its gradient and Viterbi decoding see only those
(:func:`target_view`); :func:`scatter` returns the loss's gradient to the row, zeros on the
context positions. So context tokens get no emissions in the loss, no tags and no decoding;
they reach the sentence only through the BiLSTM's states. The engine's layers are unchanged.

A row longer than ``max_len`` tokens loses context, never its sentence: the context tokens
farthest from the sentence go first, the budget ``max_len - len(sentence)`` split evenly between
the two sides (a side with less context leaves its share to the other). N = 0 is the plain
tagger: no extension, no span, the same batches bit for bit.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from .vocab import Batch, Encoded, make_batches

DEFAULT_MAX_LEN = 256  # tokens of a row with its context (CoNLL-2000's longest sentence: 78, NCBI-disease's 123)


def segments(docs: Sequence[int]) -> np.ndarray:
    """A run number per sentence: it changes wherever the document number changes, so that
    sentences of two files (each numbering its documents from 0) never share one."""
    docs = np.asarray(docs, dtype=np.int64)
    if docs.size == 0:
        return docs
    return np.concatenate([[0], np.cumsum(docs[1:] != docs[:-1])])


def neighbours(docs: Sequence[int], n: int) -> list[tuple[list[int], list[int]]]:
    """(left, right) sentence indices within ``n`` of each sentence and in its run of equal
    ``docs``, nearest last on the left and first on the right (reading order)."""
    seg = segments(docs)
    N = len(seg)
    return [([j for j in range(max(0, i - n), i) if seg[j] == seg[i]],
             [j for j in range(i + 1, min(N, i + n + 1)) if seg[j] == seg[i]]) for i in range(N)]


def _concat(parts: Sequence[Encoded]) -> Encoded:
    """The sentences' arrays end to end (characters padded to the widest); tags all 0."""
    T = sum(len(p.words) for p in parts)
    C = max(p.chars.shape[1] for p in parts)
    chars = np.zeros((T, C), np.int64)
    t = 0
    for p in parts:
        chars[t:t + len(p.words), :p.chars.shape[1]] = p.chars
        t += len(p.words)
    cat = np.concatenate
    return Encoded(cat([p.words for p in parts]), chars, cat([p.char_lengths for p in parts]),
                   cat([p.cases for p in parts]), cat([p.features for p in parts]), np.zeros(T, np.int64),
                   cat([p.lm for p in parts]) if parts[0].lm is not None else None)


def _slice(e: Encoded, start: int, stop: int) -> Encoded:
    return Encoded(*(None if a is None else a[start:stop] for a in e))


def extend(encoded: Sequence[Encoded], docs: Sequence[int], n: int,
           max_len: int = DEFAULT_MAX_LEN) -> tuple[list[Encoded], np.ndarray | None]:
    """Rows with their context and the sentences' spans (N, 2) = (offset, length) in them;
    ``n == 0``: the sentences themselves and None."""
    if n <= 0:
        return list(encoded), None
    if len(docs) != len(encoded):
        raise ValueError(f"{len(docs)} document numbers for {len(encoded)} sentences")
    rows, spans = [], np.zeros((len(encoded), 2), np.int64)
    for i, (left, right) in enumerate(neighbours(docs, n)):
        own = encoded[i]
        L = len(own.words)
        budget = max(0, max_len - L)
        lt = sum(len(encoded[j].words) for j in left)
        rt = sum(len(encoded[j].words) for j in right)
        a = min(lt, max(budget - rt, budget // 2))
        b = min(rt, budget - a)
        parts = []
        if a:
            ctx = _concat([encoded[j] for j in left])
            parts.append(_slice(ctx, lt - a, lt))
        parts.append(own)
        if b:
            parts.append(_slice(_concat([encoded[j] for j in right]), 0, b))
        row = _concat(parts) if len(parts) > 1 else own
        if len(parts) > 1:   # the sentence's own tags at its span (only the target view reads them)
            row.tags[a:a + L] = own.tags
        rows.append(row)
        spans[i] = a, L
    return rows, spans


def context_batches(rows: Sequence[Encoded], spans: np.ndarray | None, batch_size: int, **kw: Any) -> list[Batch]:
    """:func:`~rnnlab.tasks.tagging.vocab.make_batches` over the rows, each batch given its rows' spans."""
    batches = make_batches(rows, batch_size, **kw)
    if spans is not None:
        for b in batches:
            b.span = spans[b.index]
    return batches


def _positions(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    span = np.asarray(batch.span)
    lengths = span[:, 1]
    t = np.arange(int(lengths.max()))
    live = t[None, :] < lengths[:, None]
    pos = np.where(live, span[:, :1] + t[None, :], 0)
    return np.arange(len(span))[:, None], pos, live


def gather(a: np.ndarray, batch: Batch) -> np.ndarray:
    """(B, T_row, ...) -> (B, T_sentence, ...): each row's sentence positions, 0 on padding."""
    rows, pos, live = _positions(batch)
    out = a[rows, pos]
    out[~live] = 0
    return out


def scatter(d: np.ndarray, batch: Batch, width: int) -> np.ndarray:
    """The adjoint of :func:`gather`: (B, T_sentence, ...) into zeros of (B, ``width``, ...)."""
    rows, pos, live = _positions(batch)
    out = np.zeros((d.shape[0], width, *d.shape[2:]), dtype=d.dtype)
    out[np.broadcast_to(rows, pos.shape)[live], pos[live]] = d[live]
    return out


def target_view(batch: Batch) -> Batch:
    """The batch of the sentences alone (what the loss, the metrics and decoding read); a batch
    without ``span`` is its own target."""
    if batch.span is None:
        return batch
    lengths = np.asarray(batch.span)[:, 1].copy()
    g = lambda a: None if a is None else gather(a, batch)  # noqa: E731
    return replace(batch, words=g(batch.words), chars=g(batch.chars), char_lengths=g(batch.char_lengths),
                   cases=g(batch.cases), features=g(batch.features), tags=g(batch.tags), mask=g(batch.mask),
                   lengths=lengths, lm=g(batch.lm), word_classes=g(batch.word_classes), span=None)


def sentence_emissions(model: Any, batch: Batch) -> tuple[np.ndarray, Any, Batch]:
    """``model.forward(batch)`` and the emissions of the sentences' own positions, with their
    target batch: (emissions (B, T_sentence, K), the model's cache, target)."""
    emissions, cache = model.forward(batch)
    if batch.span is None:
        return emissions, cache, batch
    return gather(emissions, batch), cache, target_view(batch)


def emissions_backward(demissions: np.ndarray, batch: Batch) -> np.ndarray:
    """The gradient on the sentences' emissions as one on the whole rows' (zeros at context)."""
    if batch.span is None:
        return demissions
    return scatter(demissions, batch, batch.words.shape[1])


def with_spans(batch: Batch, spans: Sequence[tuple[int, int]]) -> Batch:
    """``batch`` whose rows hold their sentence at ``spans`` (offset, length) (tests, gradient checks)."""
    return replace(batch, span=np.asarray(spans, dtype=np.int64))


def _gradcheck_cases(rng: np.random.Generator) -> list:
    """The tagger's whole training objective with context rows (sentences at an offset, context on
    one side, both, or none; float64, dropout off): the CRF loss and the sentences' emissions."""
    from ...gradcheck import Case, randomize
    from .model import TaggerModel, random_batch

    cases = []
    for label, kw, lengths, spans in (
            ("CRF, chars, context rows 6,3,5 with sentences at (1,3) (0,2) (2,3)", {}, [6, 3, 5],
             [(1, 3), (0, 2), (2, 3)]),
            ("softmax, feature column, context rows 4,4 with sentences at (3,1) (0,4)",
             {"crf": False, "feature_vocabs": (4,)}, [4, 4], [(3, 1), (0, 4)])):
        model = randomize(TaggerModel(7, 6, 4, 3, word_dim=3, case_dim=2, feature_dim=2, char_dim=2, char_hidden=2,
                                      hidden_size=3, dropout=0.0, seed=1, **kw), rng, scale=1.0)
        batch = with_spans(random_batch(rng, lengths, features=tuple(kw.get("feature_vocabs", ()))), spans)

        def run(model=model, batch=batch):
            emissions, cache, target = sentence_emissions(model, batch)
            loss, lcache = model.loss(emissions, target)
            return [np.asarray(loss), emissions * target.mask[..., None]], (cache, lcache, target)

        def grad(G, caches, model=model, batch=batch):
            cache, lcache, target = caches
            d = model.loss_backward(lcache, float(G[0])) + G[1] * target.mask[..., None]
            model.backward(emissions_backward(d, batch), cache)
            return {}

        cases.append(Case(label, model, {}, run, grad))
    return cases


def _register() -> None:
    """Adds these cases to the tagger's own spec (model.py registers it; this module imports model.py first)."""
    from ...gradcheck import SPECS, spec_for
    from .model import TaggerModel

    base = SPECS[TaggerModel]
    if getattr(base, "with_context", False):
        return
    combined = lambda rng: base(rng) + _gradcheck_cases(rng)  # noqa: E731
    combined.with_context = True   # type: ignore[attr-defined]
    spec_for(TaggerModel)(combined)


_register()
