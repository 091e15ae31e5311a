"""EncodedCorpus: in-memory encoding, the on-disk cache and large inputs."""
from __future__ import annotations

import os

import numpy as np
import pytest

from rnnlab.data import encoded as encoded_mod
from rnnlab.data.encoded import EncodedCorpus
from rnnlab.data.vocab import Vocab
from rnnlab.errors import DataError


def write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_from_text():
    corpus = EncodedCorpus.from_text("abracadabra")
    assert len(corpus) == 11 and corpus.vocab.chars == ("a", "b", "c", "d", "r")
    assert corpus.vocab.decode(corpus.ids) == "abracadabra"
    train, val, test = corpus.split((0.6, 0.2, 0.2))
    assert corpus.vocab.decode(train) + corpus.vocab.decode(val) + corpus.vocab.decode(test) == "abracadabra"


def test_from_source_caches_and_memory_maps(tmp_path, monkeypatch):
    src = write(tmp_path / "corpus.txt", "the quick brown fox \u00e9\n" * 50)
    cache = tmp_path / "cache"
    first = EncodedCorpus.from_source(str(src), cache_dir=cache)
    assert isinstance(first.ids, np.memmap)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".npy"]

    # A second load must not encode again.
    def fail(*args, **kwargs):
        raise AssertionError("re-encoded although the cache is valid")

    monkeypatch.setattr(Vocab, "encode", fail)
    second = EncodedCorpus.from_source(str(src), cache_dir=cache)
    assert isinstance(second.ids, np.memmap)
    np.testing.assert_array_equal(first.ids, second.ids)
    assert second.vocab == first.vocab and second.sha256 == first.sha256

    # Touching the file (new mtime, same content) re-hashes but does not re-encode.
    os.utime(src, ns=(1, 1))
    third = EncodedCorpus.from_source(str(src), cache_dir=cache)
    np.testing.assert_array_equal(third.ids, first.ids)


def test_changed_file_is_re_encoded(tmp_path):
    src = write(tmp_path / "corpus.txt", "aaaa bbbb\n" * 10)
    cache = tmp_path / "cache"
    old = EncodedCorpus.from_source(src, cache_dir=cache)
    write(src, "xyz " * 30)
    new = EncodedCorpus.from_source(src, cache_dir=cache)
    assert new.vocab.chars == (" ", "x", "y", "z")
    assert new.vocab.decode(new.ids) == "xyz " * 30
    assert new.sha256 != old.sha256
    assert len(list(cache.glob("*.npy"))) == 1  # the stale ids file was removed


def test_damaged_cache_is_rebuilt(tmp_path):
    src = write(tmp_path / "corpus.txt", "some text to encode\n" * 20)
    cache = tmp_path / "cache"
    good = EncodedCorpus.from_source(src, cache_dir=cache)
    expected = np.array(good.ids)
    del good
    for npy in cache.glob("*.npy"):
        npy.write_bytes(b"garbage")
    again = EncodedCorpus.from_source(src, cache_dir=cache)
    np.testing.assert_array_equal(again.ids, expected)
    for meta in cache.glob("*.json"):
        meta.write_text("{not json")
    np.testing.assert_array_equal(EncodedCorpus.from_source(src, cache_dir=cache).ids, expected)


def test_no_cache_and_fixed_vocab(tmp_path):
    src = write(tmp_path / "corpus.txt", "abcabc")
    corpus = EncodedCorpus.from_source(src, use_cache=False, vocab=Vocab("abcd"))
    assert not isinstance(corpus.ids, np.memmap)
    assert corpus.ids.tolist() == [0, 1, 2, 0, 1, 2]
    with pytest.raises(DataError, match="not in the vocabulary.*'c'"):
        EncodedCorpus.from_source(src, cache_dir=tmp_path / "cache", vocab=Vocab("ab"))


def test_folder_source(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    write(folder / "1.txt", "one")
    write(folder / "2.txt", "two")
    corpus = EncodedCorpus.from_source(folder, cache_dir=tmp_path / "cache")
    assert corpus.vocab.decode(corpus.ids) == "one\ntwo"


def test_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        EncodedCorpus.from_source(tmp_path / "absent.txt", cache_dir=tmp_path / "cache")


def test_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    src = write(tmp_path / "corpus.txt", "hello world")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only cache")

    monkeypatch.setattr(encoded_mod._Cache, "_store", refuse)
    with pytest.warns(UserWarning, match="could not write"):
        corpus = EncodedCorpus.from_source(src, cache_dir=tmp_path / "cache")
    assert corpus.vocab.decode(corpus.ids) == "hello world"


def test_large_generated_text(tmp_path):
    """~20 MB through the whole path: read, vocab, chunked encode, cache, memmap."""
    rng = np.random.default_rng(0)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz      ,.;\n\u00e9\u00fc\u4e2d\U0001f600"))
    block = "".join(rng.choice(alphabet, 1 << 20))
    text = block * 20
    src = write(tmp_path / "big.txt", text)
    assert src.stat().st_size > 20_000_000
    corpus = EncodedCorpus.from_source(src, cache_dir=tmp_path / "cache")
    assert len(corpus) == len(text) and corpus.ids.dtype == np.uint8
    assert isinstance(corpus.ids, np.memmap)
    assert corpus.vocab.chars == tuple(sorted(set(block)))
    for start in (0, 4_194_303, len(text) - 100):  # includes a chunk boundary
        assert corpus.vocab.decode(corpus.ids[start:start + 100]) == text[start:start + 100]
    train, val, test = corpus.split()
    assert len(train) + len(val) + len(test) == len(text)
