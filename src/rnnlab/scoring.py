"""Scoring a text with a language model: every character, not only those that fill the streams.

:func:`score_ids` cuts the ids into ``batch_size`` streams scored in
parallel, each from a zero state, in chunks of ``seq_len`` with the state
carried between chunks: the trainer's validation layout (``eval_batches``),
so a run's own batch size gives its logged numbers on the part the streams
cover. Streams of equal length cover ``B * ((N - 1) // B)`` of the ``N - 1``
characters that have a predecessor; the few left over (fewer than ``B``)
are the continuation of the last stream, so they are scored by carrying on
with that stream's final state, one short extra pass with batch size 1.
Every character but the first (which has no context) is scored:
200,000 characters give 199,999 predictions, whatever the batch size.

The result keeps the streams' own number too (``stream_nats_per_char`` over
``stream_chars``): that is the figure the trainer's validation reports.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .data.batching import eval_batches
from .errors import DataError
from .layers.losses import SoftmaxCrossEntropy
from .module import no_grad
from .states import flatten, unflatten

LN2 = math.log(2.0)


def _last_stream(states: Any) -> Any:
    """The carried state of the last stream only (batch axis kept, size 1)."""
    leaves = [leaf[-1:] for _, leaf in flatten(states)]
    return unflatten(states, leaves)


def stream_layout(n_ids: int, batch_size: int, seq_len: int, shrink: bool = True) -> tuple[int, int, int]:
    """``(streams, characters per stream, remainder)`` for ``n_ids`` ids.

    With ``shrink`` there are fewer streams when needed for each to hold at
    least ``seq_len`` characters (a tiny text is one stream); without it, as
    in the trainer, each needs one.
    """
    if n_ids < 2:
        raise DataError(f"need at least 2 characters to score (one to predict from), got {n_ids}")
    if batch_size < 1 or seq_len < 1:
        raise DataError(f"batch size and sequence length must be at least 1, got {batch_size} and {seq_len}")
    streams = max(1, min(batch_size, (n_ids - 1) // (seq_len if shrink else 1)))
    per_stream = (n_ids - 1) // streams
    return streams, per_stream, (n_ids - 1) - streams * per_stream


def score_ids(model: Any, ids: np.ndarray, batch_size: int = 1, seq_len: int = 100, *,
              shrink: bool = True) -> dict[str, float]:
    """Cross-entropy of each character of ``ids`` given the ones before it (see the module docstring).

    Returns ``bits_per_char``, ``perplexity``, ``nats_per_char`` over all
    ``chars`` (= ``len(ids) - 1``), the ``batch_size`` used, how many of the
    characters were the ``remainder`` scored after the streams, and the
    streams' own ``stream_nats_per_char`` over ``stream_chars``.
    """
    streams, per_stream, remainder = stream_layout(len(ids), batch_size, seq_len, shrink)
    ce = SoftmaxCrossEntropy()
    was_training = model.training
    model.eval()
    total, count, states = 0.0, 0, None
    try:
        with no_grad():
            # the same batches and the same sum as the trainer's evaluate(), so the streams' part is its number
            for batch in eval_batches(ids, streams, seq_len):
                (logits, states), _ = model.forward(batch.x, states)
                loss, _ = ce.forward(logits, batch.y)
                total += loss * batch.y.size
                count += batch.y.size
            stream_total, stream_count = total, count
            if remainder:
                states = _last_stream(states)
                start = streams * per_stream  # the last stream's next input
                for pos in range(start, start + remainder, seq_len):
                    end = min(pos + seq_len, start + remainder)
                    x = np.asarray(ids[pos:end], dtype=np.int64)[None, :]
                    y = np.asarray(ids[pos + 1:end + 1], dtype=np.int64)[None, :]
                    (logits, states), _ = model.forward(x, states)
                    loss, _ = ce.forward(logits, y)
                    total += loss * y.size
                    count += y.size
    finally:
        model.train(was_training)
    assert count == len(ids) - 1, (count, len(ids))
    nats = total / count
    perplexity = math.exp(nats) if nats < 700 else math.inf  # exp overflows a float past ~709
    return {"bits_per_char": nats / LN2, "perplexity": perplexity, "nats_per_char": nats,
            "chars": count, "batch_size": streams, "remainder": remainder,
            "stream_chars": stream_count, "stream_nats_per_char": stream_total / max(stream_count, 1)}
