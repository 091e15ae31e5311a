"""Vocabulary: deterministic ids, encode/decode, JSON, unknown characters."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data import vocab as vocab_mod
from rnnlab.data.vocab import Vocab, id_dtype
from rnnlab.errors import DataError

TEXT = "hello, w\u00f6rld!\n\u4e2d\u6587 \U0001f600\ttabs\x00nul"


def test_from_text_sorted_unique_and_order_independent():
    vocab = Vocab.from_text("cabbage")
    assert vocab.chars == ("a", "b", "c", "e", "g")
    assert Vocab.from_text("gabbace") == vocab
    assert Vocab.from_text(TEXT).chars == tuple(sorted(set(TEXT)))


def test_round_trip_including_astral_and_control_chars():
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.uint8 and ids.shape == (len(TEXT),)
    assert vocab.decode(ids) == TEXT
    assert vocab.decode(ids.astype(np.int64).reshape(1, -1)) == TEXT  # any int dtype/shape
    assert [vocab.chars[i] for i in ids] == list(TEXT)


def test_ids_follow_code_point_order():
    vocab = Vocab.from_text("zyx")
    assert vocab.encode("xyz").tolist() == [0, 1, 2]
    assert vocab.index("z") == 2
    assert "y" in vocab and "q" not in vocab and "\U0010ffff" not in vocab


@pytest.mark.parametrize("size, dtype", [(1, np.uint8), (256, np.uint8), (257, np.uint16),
                                         (65536, np.uint16), (65537, np.uint32)])
def test_id_dtype(size, dtype):
    assert id_dtype(size) == np.dtype(dtype)


def test_large_vocab_uses_wider_ids():
    chars = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 300))
    vocab = Vocab.from_text(chars)
    ids = vocab.encode(chars[::-1])
    assert ids.dtype == np.uint16 and ids[0] == 299
    assert vocab.decode(ids) == chars[::-1]


def test_json_round_trip():
    vocab = Vocab.from_text(TEXT + '"\\\u2028')
    text = vocab.to_json()
    assert text.isascii()
    again = Vocab.from_json(text)
    assert again == vocab and again.chars == vocab.chars
    assert Vocab.from_dict(vocab.to_dict()) == vocab


@pytest.mark.parametrize("bad", ["not json", "[]", '{"format": "other", "version": 1, "chars": ["a"]}',
                                 '{"format": "rnnlab-vocab", "version": 99, "chars": ["a"]}',
                                 '{"format": "rnnlab-vocab", "version": 1, "chars": ["ab"]}',
                                 '{"format": "rnnlab-vocab", "version": 1, "chars": ["a", "a"]}',
                                 '{"format": "rnnlab-vocab", "version": 1, "chars": []}'])
def test_from_json_rejects_bad_input(bad):
    with pytest.raises(DataError):
        Vocab.from_json(bad)


def test_unknown_characters_are_named():
    vocab = Vocab.from_text("abc ")
    with pytest.raises(DataError) as info:
        vocab.encode("a cab\u00e9 \U0001f600!")
    message = str(info.value)
    assert "3 distinct character(s) not in the vocabulary of 4 symbols" in message
    assert "'!'" in message and "'\u00e9'" in message and "'\U0001f600'" in message
    assert "first at character offset 5" in message


def test_unknown_characters_list_is_truncated():
    vocab = Vocab.from_text("a")
    with pytest.raises(DataError, match=r"'b', 'c', 'd', 'e', 'f' and 3 more"):
        vocab.encode("abcdefghi")


def test_encoding_in_chunks_matches_and_finds_late_unknowns(monkeypatch):
    monkeypatch.setattr(vocab_mod, "_CHUNK_CHARS", 7)
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("ab\u00e9\U0001f600\n"), 1000))
    vocab = Vocab.from_text(text)
    expected = np.array([vocab.chars.index(c) for c in text])
    np.testing.assert_array_equal(vocab.encode(text), expected)
    with pytest.raises(DataError, match="first at character offset 1000"):
        vocab.encode(text + "Z")


def test_decode_rejects_out_of_range_and_non_integer_ids():
    vocab = Vocab.from_text("ab")
    assert vocab.decode([]) == ""
    with pytest.raises(DataError, match="id 2 is outside the vocabulary of 2"):
        vocab.decode([0, 2])
    with pytest.raises(DataError, match="id -1"):
        vocab.decode(np.array([-1]))
    with pytest.raises(DataError, match="dtype float"):
        vocab.decode(np.array([0.0]))


def test_empty_text_has_no_vocabulary():
    with pytest.raises(DataError, match="empty text"):
        Vocab.from_text("")
    assert Vocab.from_text("a").encode("").shape == (0,)
