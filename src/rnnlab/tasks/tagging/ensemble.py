"""A seed ensemble of taggers at prediction time: ``tag eval RUN1,RUN2,...`` and ``tag predict RUN1,RUN2,...``.

Each member (a run on the same data and tag set, e.g. trained with another ``--seed``) scores
every sentence with its own vocabularies, character model and char-LM features; the members'
emission scores are averaged position by position and, for CRF members, so are their
transition, start and end scores; constrained Viterbi then decodes the average. For CRFs this
is the tag sequence with the highest geometric mean of the members' sequence probabilities
(each member's log-partition is a constant of the sentence, so it does not move the argmax).
Softmax members: averaged scores, the best tag per token. One run is simply that run.
The first member's ``--propagate`` (label consistency, :mod:`.consistency`) then rewrites the tags;
its confidence gate reads the posterior marginals of the averaged scores (the mean CRF's).
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import ConfigError
from ...module import no_grad
from .consistency import Confidence, Propagation, confidence_of, from_config, propagate
from .data import Sentence
from .context import sentence_emissions
from .task import LoadedRun, constraints_for, load_run, predict_tags, sentence_batches


def load_members(spec: str, propagate: str | None = None, confidence: float | None = None,
                 support: float | None = None) -> list[LoadedRun]:
    """The runs named by ``RUN[,RUN...]``, checked to predict the same tags in the same way;
    ``propagate`` (off, N, doc: ``--propagate`` of ``tag eval`` and ``tag predict``) replaces the
    runs' own window, ``confidence`` and ``support`` (``--propagate-confidence``, ``--propagate-support``)
    the thresholds of its confidence gate (the first member's setting applies to an ensemble)."""
    names = [str(spec)] if Path(spec).exists() else [part.strip() for part in str(spec).split(",") if part.strip()]
    if not names:
        raise ConfigError("name at least one tagger run")
    members = [load_run(name) for name in names]
    if propagate is not None or confidence is not None or support is not None:
        members = [replace(m, propagation=_replaced(m, propagate, confidence, support)) for m in members]
    first = members[0]
    for name, m in zip(names[1:], members[1:]):
        if (m.vocabs.tags.itos != first.vocabs.tags.itos or m.scheme != first.scheme
                or m.model.use_crf != first.model.use_crf):
            raise ConfigError(f"ensemble: {name} does not predict the tags of {names[0]} (tag set, --scheme and "
                              "--crf must be the same: train the members on the same data with other seeds)")
    return members


def _replaced(member: LoadedRun, window: str | None, confidence: float | None, support: float | None) -> Propagation:
    if window is None:   # the run's own window (auto: as decided), other thresholds
        own = member.propagation
        return replace(own, source=own.source if confidence is None else float(confidence),
                       target=own.target if support is None else float(support)) if own.on else own
    return from_config(member.config, window=window, confidence=confidence, support=support)


def member_emissions(member: LoadedRun, sentences: Sequence[Sentence], batch_size: int = 128) -> list[np.ndarray]:
    """One member's (length, tags) emission scores of every sentence (eval mode, no gradient)."""
    model = member.model
    out: list[np.ndarray] = [np.zeros((0, 0))] * len(sentences)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for batch in sentence_batches(sentences, member.vocabs, member.max_word_len, member.lm, member.context,
                                          member.context_max_len, batch_size):
                emissions, _, target = sentence_emissions(model, batch)   # --context: the sentences' own rows
                for b, (row, n) in enumerate(zip(batch.index, target.lengths)):
                    out[row] = np.array(emissions[b, :int(n)], dtype=np.float64)
    finally:
        model.train(was_training)
    return out


def predict_ensemble(members: Sequence[LoadedRun], sentences: Sequence[Sentence],
                     batch_size: int = 128, propagation: Propagation | None = None) -> list[list[str]]:
    """Tag strings per sentence from the members' averaged scores (see the module docstring), then
    ``propagation`` (default: the first member's ``--propagate``) over the sentences in their order;
    a gated pass reads the model's marginals, computed only then."""
    first = members[0]
    setting = first.propagation if propagation is None else propagation
    tags, confidence = tag_with_confidence(members, sentences, batch_size, setting.gated)
    if not setting.on:
        return tags
    return propagate([s.tokens for s in sentences], tags, first.scheme, setting, [s.doc for s in sentences],
                     confidence=confidence)


def tag_with_confidence(members: Sequence[LoadedRun], sentences: Sequence[Sentence], batch_size: int = 128,
                        confidence: bool = True) -> tuple[list[list[str]], list[Confidence] | None]:
    """The members' tags of every sentence and, with ``confidence``, the model's :class:`Confidence`
    in them (from the posterior marginals of the same scores the tags were decoded from)."""
    first = members[0]
    marginals: list | None = [] if confidence else None
    if len(members) == 1:
        tags = predict_tags(first.model, first.vocabs, sentences, first.scheme, batch_size,
                            first.max_word_len, lm=first.lm, context=first.context,
                            context_max_len=first.context_max_len, marginals=marginals)[0]
    else:
        tags = _averaged(members, sentences, batch_size, marginals)
    if marginals is None:
        return tags, None
    names = first.vocabs.tags.itos
    return tags, [confidence_of(t, m, names) for t, m in zip(tags, marginals)]


def _averaged(members: Sequence[LoadedRun], sentences: Sequence[Sentence], batch_size: int,
              marginals: list | None = None) -> list[list[str]]:
    first = members[0]
    total = member_emissions(first, sentences, batch_size)
    for m in members[1:]:
        for i, em in enumerate(member_emissions(m, sentences, batch_size)):
            total[i] = total[i] + em
    mean = [em / len(members) for em in total]
    crf = None
    if first.model.use_crf:   # the first member's CRF layer, holding the members' mean scores
        crf = copy.deepcopy(first.model.crf)
        for key in ("transitions", "start", "end"):
            crf.params[key] = np.mean([np.asarray(m.model.crf.params[key], np.float64) for m in members], axis=0)
    constraints = constraints_for(first.model, first.vocabs, first.scheme)
    K = len(first.vocabs.tags)
    predicted: list[list[str]] = [[] for _ in sentences]
    if marginals is not None:
        marginals[:] = [np.zeros((0, K))] * len(sentences)
    order = [i for i in sorted(range(len(sentences)), key=lambda i: len(mean[i])) if len(mean[i])]
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        lengths = np.array([len(mean[i]) for i in rows])
        padded = np.zeros((len(rows), int(lengths.max()), K))
        for b, i in enumerate(rows):
            padded[b, :lengths[b]] = mean[i]
        if crf is not None:
            paths = crf.decode(padded, lengths, constraints)
        else:
            paths = [p[:n].tolist() for p, n in zip(padded.argmax(-1), lengths)]
        for i, path in zip(rows, paths):
            predicted[i] = first.vocabs.tags.decode(path)
        if marginals is not None:   # the averaged model's: its CRF over the mean scores, or their softmax
            p = crf.marginals(padded, lengths, constraints) if crf is not None else first.model.marginals(padded, lengths)
            for b, i in enumerate(rows):
                marginals[i] = p[b, :lengths[b]]
    return predicted
