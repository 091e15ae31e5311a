"""Train/val/test splits and batches for truncated backpropagation through time.

Layout used by both the training batcher and the evaluation iterator: the
``N`` ids are cut into ``B`` contiguous *streams* of ``S = (N - 1) // B``
input positions each; stream ``b`` reads inputs ``ids[b*S + t]`` and targets
``ids[b*S + t + 1]``. A batch is the next ``T`` positions of every stream, so
row ``b`` of batch ``k + 1`` continues exactly where row ``b`` of batch ``k``
stopped and a hidden state carried from one batch to the next is meaningful.

Training (:class:`StreamBatcher`) uses ``S // T`` full batches per epoch and
drops the last ``S % T`` positions of each stream; every epoch repeats the
same windows, starting at ``Batch.index == 0``, where the streams jump back
to their beginning -- reset the hidden state there.

Evaluation (:func:`eval_batches`) scores *every* position of the streams: the
last chunk may be shorter than ``T``. Only the final ``(N - 1) % B`` ids
(fewer than ``B``) are not scored.
"""
from __future__ import annotations

import math
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from rnnlab.errors import ConfigError, DataError

DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)
SPLIT_NAMES = ("train", "val", "test")


class Splits(NamedTuple):
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


class Batch(NamedTuple):
    x: np.ndarray  # (B, T) int64 input ids
    y: np.ndarray  # (B, T) int64 targets: the character after each input
    epoch: int
    index: int     # batch number within the epoch; 0 means the streams restarted


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ConfigError(f"split fractions must be numbers, got {fractions!r}") from None
    if len(values) != 3:
        raise ConfigError(f"split fractions must be three numbers (train, val, test), got {len(values)}")
    if any(not math.isfinite(f) or f < 0 for f in values):
        raise ConfigError(f"split fractions must be finite and >= 0, got {values}")
    if sum(values) > 1 + 1e-9:
        raise ConfigError(f"split fractions must sum to at most 1, got {values} (sum {sum(values):g})")
    if values[0] <= 0:
        raise ConfigError("the train fraction must be positive")
    return values


def _floor_tolerant(x: float) -> int:
    """floor(x), but a value within rounding error of an integer counts as it
    (0.6 + 0.3 = 0.8999..., and 0.8999... * 10 should give 9, not 8)."""
    nearest = round(x)
    return int(nearest) if abs(x - nearest) <= 1e-9 * max(1.0, abs(x)) else math.floor(x)


def split_ids(ids: np.ndarray, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Splits:
    """Contiguous train/val/test slices (views, no copy) in that order.

    A fraction of 0 gives an empty split (e.g. no test set); a positive
    fraction must give at least 2 ids (one input and its target).
    """
    values = _check_fractions(fractions)
    n = len(ids)
    # Cumulative boundaries, so the three slices tile the front of the data.
    bounds, total = [0], 0.0
    for f in values:
        total += f
        bounds.append(min(n, _floor_tolerant(total * n)))
    parts = [ids[bounds[i]:bounds[i + 1]] for i in range(3)]
    for name, f, part in zip(SPLIT_NAMES, values, parts):
        if f > 0 and len(part) < 2:
            raise DataError(
                f"the {name} split gets {len(part)} of {n:,} characters (fraction {f:g}); "
                "it needs at least 2 -- use more data or a larger fraction"
            )
    return Splits(*parts)


def _check_sizes(batch_size: int, seq_len: int) -> None:
    for label, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{label} must be a positive integer, got {value!r}")


def _gather(ids: np.ndarray, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``ids[s : s + length + 1]`` for each start, split into inputs and targets."""
    chunk = np.asarray(ids)[starts[:, None] + np.arange(length + 1)].astype(np.int64)
    return np.ascontiguousarray(chunk[:, :-1]), np.ascontiguousarray(chunk[:, 1:])


class StreamBatcher:
    """Endless, resumable training batches over ``B`` parallel streams (see module doc)."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, name: str = "training data") -> None:
        _check_sizes(batch_size, seq_len)
        need = batch_size * seq_len + 1
        if len(ids) < need:
            raise DataError(
                f"{name} has {len(ids):,} characters, fewer than the {need:,} needed for one batch "
                f"(batch_size {batch_size} x seq_len {seq_len} + 1); use a smaller batch size or "
                "sequence length, or more data"
            )
        self.ids = ids
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        self.stream_len = (len(ids) - 1) // self.batch_size
        self.batches_per_epoch = self.stream_len // self.seq_len
        self._starts = np.arange(self.batch_size, dtype=np.int64) * self.stream_len
        self.epoch = 0
        self.index = 0  # index of the *next* batch within the epoch

    def next_batch(self) -> Batch:
        x, y = _gather(self.ids, self._starts + self.index * self.seq_len, self.seq_len)
        batch = Batch(x, y, self.epoch, self.index)
        self.index += 1
        if self.index == self.batches_per_epoch:
            self.index, self.epoch = 0, self.epoch + 1
        return batch

    def __iter__(self) -> Iterator[Batch]:
        """Batches forever, wrapping into the next epoch."""
        while True:
            yield self.next_batch()

    def epoch_batches(self) -> Iterator[Batch]:
        """The remaining batches of the current epoch."""
        epoch = self.epoch
        while self.epoch == epoch:
            yield self.next_batch()

    def state_dict(self) -> dict[str, int]:
        """Position plus layout, all plain ints (JSON-able) for checkpoints."""
        return {
            "epoch": self.epoch,
            "index": self.index,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "num_ids": len(self.ids),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position; the layout must be identical."""
        try:
            saved = {k: state[k] for k in ("epoch", "index", "batch_size", "seq_len", "num_ids")}
        except (KeyError, TypeError):
            raise DataError(f"invalid batcher state {state!r}") from None
        current = self.state_dict()
        for key in ("batch_size", "seq_len", "num_ids"):
            if saved[key] != current[key]:
                raise DataError(
                    f"cannot resume: the batcher state was saved with {key}={saved[key]}, "
                    f"but the current run has {key}={current[key]}"
                )
        epoch, index = saved["epoch"], saved["index"]
        if not (isinstance(epoch, int) and isinstance(index, int)) or epoch < 0 \
                or not 0 <= index < self.batches_per_epoch:
            raise DataError(f"invalid batcher position epoch={epoch!r}, index={index!r}")
        self.epoch, self.index = epoch, index


def eval_batches(ids: np.ndarray, batch_size: int, seq_len: int, name: str = "evaluation data") -> Iterator[Batch]:
    """One pass over ``ids`` for evaluation; the last chunk may be shorter than ``seq_len``.

    Carry the hidden state from one batch to the next; the targets of all
    batches together are ``B * ((N - 1) // B)`` characters.
    """
    _check_sizes(batch_size, seq_len)
    stream_len = (len(ids) - 1) // batch_size
    if stream_len < 1:
        raise DataError(
            f"{name} has {len(ids):,} characters, too few to evaluate with batch_size "
            f"{batch_size} (needs at least {batch_size + 1})"
        )
    # Validation above runs at call time; the batches come from a separate
    # generator so a too-small split fails before the first batch is asked for.
    return _eval_iter(ids, batch_size, seq_len, stream_len)


def _eval_iter(ids: np.ndarray, batch_size: int, seq_len: int, stream_len: int) -> Iterator[Batch]:
    starts = np.arange(batch_size, dtype=np.int64) * stream_len
    for index, pos in enumerate(range(0, stream_len, seq_len)):
        x, y = _gather(ids, starts + pos, min(seq_len, stream_len - pos))
        yield Batch(x, y, 0, index)
