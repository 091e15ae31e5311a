"""Splits, the resumable TBPTT batcher and the evaluation iterator."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab.data.batching import StreamBatcher, eval_batches, split_ids
from rnnlab.errors import ConfigError, DataError, RnnlabError


def positions(n: int) -> np.ndarray:
    """ids equal to their own position, so every value says where it came from."""
    return np.arange(n, dtype=np.int64)


# -- splits ---------------------------------------------------------------------
def test_default_split_is_contiguous():
    ids = positions(1000)
    train, val, test = split_ids(ids)
    assert (len(train), len(val), len(test)) == (900, 50, 50)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), ids)


def test_split_fractions_with_float_rounding():
    # 0.3 + 0.3 + 0.3 = 0.8999999999999999 in floating point; still 3 + 3 + 3 of 10.
    assert [len(p) for p in split_ids(positions(10), (0.3, 0.3, 0.3))] == [3, 3, 3]
    assert [len(p) for p in split_ids(positions(100), (0.7, 0.2, 0.1))] == [70, 20, 10]
    assert [len(p) for p in split_ids(positions(7), (0.5, 0.5, 0))] == [3, 4, 0]


def test_split_with_remainder_and_zero_fraction():
    train, val, test = split_ids(positions(100), (0.5, 0.25, 0))
    assert (len(train), len(val), len(test)) == (50, 25, 0)
    assert val[0] == 50


@pytest.mark.parametrize("fractions, pattern", [
    ((0.9, 0.1, 0.1), "sum to at most 1"),
    ((0.9, -0.05, 0.05), ">= 0"),
    ((0.9, 0.1), "three numbers"),
    ((0.0, 0.5, 0.5), "train fraction must be positive"),
    ((float("nan"), 0.0, 0.0), "finite"),
    (("a", 0.1, 0.1), "must be numbers"),
])
def test_bad_fractions(fractions, pattern):
    with pytest.raises(ConfigError, match=pattern):
        split_ids(positions(1000), fractions)


def test_split_too_small():
    with pytest.raises(DataError, match="the val split gets 1 of 30 characters"):
        split_ids(positions(30), (0.9, 0.05, 0.05))


# -- training batches -----------------------------------------------------------
def test_batches_are_next_character_pairs():
    ids = positions(1001)
    batcher = StreamBatcher(ids, batch_size=4, seq_len=10)
    assert batcher.stream_len == 250 and batcher.batches_per_epoch == 25
    batch = batcher.next_batch()
    assert batch.x.shape == batch.y.shape == (4, 10)
    assert batch.x.dtype == batch.y.dtype == np.int64
    np.testing.assert_array_equal(batch.y, batch.x + 1)
    np.testing.assert_array_equal(batch.x[:, 0], [0, 250, 500, 750])
    assert (batch.epoch, batch.index) == (0, 0)


def test_streams_continue_across_batches():
    batcher = StreamBatcher(positions(1001), batch_size=4, seq_len=10)
    previous = batcher.next_batch()
    for _ in range(batcher.batches_per_epoch - 1):
        batch = batcher.next_batch()
        # row b of batch k+1 starts right after where row b of batch k ended
        np.testing.assert_array_equal(batch.x[:, 0], previous.x[:, -1] + 1)
        np.testing.assert_array_equal(batch.x[:, 0], previous.y[:, -1])
        previous = batch


def test_epochs_wrap_deterministically():
    vocab_ids = np.random.default_rng(1).integers(0, 50, size=503).astype(np.uint8)
    batcher = StreamBatcher(vocab_ids, batch_size=3, seq_len=7)
    first_epoch = list(batcher.epoch_batches())
    assert len(first_epoch) == batcher.batches_per_epoch == (502 // 3) // 7
    assert batcher.epoch == 1 and batcher.index == 0
    second_epoch = list(batcher.epoch_batches())
    assert [b.epoch for b in second_epoch] == [1] * len(second_epoch)
    for a, b in zip(first_epoch, second_epoch):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
    assert first_epoch[0].x.dtype == np.int64  # widened from uint8


def test_endless_iteration_crosses_epochs():
    batcher = StreamBatcher(positions(2 * 5 + 1), batch_size=2, seq_len=5)
    it = iter(batcher)
    got = [next(it) for _ in range(3)]
    assert [(b.epoch, b.index) for b in got] == [(0, 0), (1, 0), (2, 0)]


def test_resume_continues_identically():
    ids = np.random.default_rng(0).integers(0, 65, size=5000).astype(np.uint8)
    original = StreamBatcher(ids, batch_size=8, seq_len=16)
    for _ in range(50):  # crosses an epoch boundary (39 batches per epoch)
        original.next_batch()
    state = json.loads(json.dumps(original.state_dict()))
    resumed = StreamBatcher(ids, batch_size=8, seq_len=16)
    resumed.load_state_dict(state)
    for _ in range(45):
        a, b = original.next_batch(), resumed.next_batch()
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        assert (a.epoch, a.index) == (b.epoch, b.index)


def test_resume_with_other_layout_is_refused():
    state = StreamBatcher(positions(1000), batch_size=4, seq_len=10).state_dict()
    with pytest.raises(DataError, match="batch_size=4.*batch_size=5"):
        StreamBatcher(positions(1000), batch_size=5, seq_len=10).load_state_dict(state)
    with pytest.raises(DataError, match="num_ids"):
        StreamBatcher(positions(999), batch_size=4, seq_len=10).load_state_dict(state)
    with pytest.raises(DataError, match="invalid batcher position"):
        StreamBatcher(positions(1000), batch_size=4, seq_len=10).load_state_dict({**state, "index": 10**6})
    with pytest.raises(DataError, match="invalid batcher state"):
        StreamBatcher(positions(1000), batch_size=4, seq_len=10).load_state_dict({"epoch": 0})


def test_too_small_for_one_batch():
    StreamBatcher(positions(4 * 10 + 1), batch_size=4, seq_len=10)  # exactly enough
    with pytest.raises(DataError, match=r"has 40 characters, fewer than the 41 needed for one batch"):
        StreamBatcher(positions(40), batch_size=4, seq_len=10, name="the val split")


@pytest.mark.parametrize("batch_size, seq_len", [(0, 5), (2, -1), (2.5, 5), (True, 5)])
def test_bad_sizes(batch_size, seq_len):
    with pytest.raises(ConfigError):
        StreamBatcher(positions(1000), batch_size, seq_len)


def test_memmap_input(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, positions(301).astype(np.uint16))
    ids = np.load(path, mmap_mode="r")
    batch = StreamBatcher(ids, batch_size=3, seq_len=10).next_batch()
    assert type(batch.x) is np.ndarray
    np.testing.assert_array_equal(batch.x[:, 0], [0, 100, 200])


# -- evaluation -----------------------------------------------------------------
def test_eval_covers_every_target_once():
    n, batch_size, seq_len = 1003, 4, 30  # stream_len 250: 8 full chunks + one of 10
    batches = list(eval_batches(positions(n), batch_size, seq_len))
    assert [b.x.shape[1] for b in batches] == [30] * 8 + [10]
    targets = np.sort(np.concatenate([b.y.ravel() for b in batches]))
    np.testing.assert_array_equal(targets, np.arange(1, 1001))  # the final 2 ids are dropped
    for b in batches:
        np.testing.assert_array_equal(b.y, b.x + 1)
    for prev, nxt in zip(batches, batches[1:]):  # state can be carried across chunks
        np.testing.assert_array_equal(nxt.x[:, 0], prev.y[:, -1])


def test_eval_too_small_fails_immediately():
    with pytest.raises(DataError, match="too few to evaluate"):
        eval_batches(positions(4), batch_size=4, seq_len=10)
    assert len(list(eval_batches(positions(5), batch_size=4, seq_len=10))) == 1


def test_error_types_are_user_facing():
    assert issubclass(ConfigError, RnnlabError) and issubclass(DataError, RnnlabError)
