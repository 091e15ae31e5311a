"""Pretrained word vectors (--vectors): the text formats, case, refusals."""
import numpy as np
import pytest

from rnnlab.errors import DataError
from rnnlab.tasks.tagging.vectors import read_vectors
from rnnlab.tasks.tagging.vocab import Vocab


def test_read_vectors(tmp_path):
    words = Vocab(["the", "cat", "dog"])
    path = tmp_path / "v.txt"
    path.write_text("3 2\nThe 0.5 1\ncat 2 3\nzebra 1 1\n", encoding="utf-8")
    rows, vectors, dim = read_vectors(str(path), words)
    assert dim == 2 and rows.tolist() == [words.index("the"), words.index("cat")]
    np.testing.assert_array_equal(vectors, [[0.5, 1], [2, 3]])
    path.write_text("the 1 2\ncat 1 2 3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"v.txt:2: 3 numbers"):
        read_vectors(str(path), words)
    with pytest.raises(DataError, match="cannot read"):
        read_vectors(str(tmp_path / "missing.txt"), words)


def test_read_vectors_formats_case_and_refusals(tmp_path):
    """GloVe (no header) and word2vec/fastText text (a 'count dim' header) read alike; the
    lower-case entry wins over other cased forms of a word; binary files and non-finite values
    are refused in one line."""
    words = Vocab(["the", "cat"])
    glove = tmp_path / "glove.txt"
    glove.write_text("The 9 9\nthe 1 2\nTHE 7 7\ncat 3 4\n", encoding="utf-8")
    w2v = tmp_path / "w2v.vec"
    w2v.write_text("4 2\nThe 9 9\nthe 1 2\nTHE 7 7\ncat 3 4\n", encoding="utf-8")
    for path in (glove, w2v):
        rows, vectors, dim = read_vectors(str(path), words)
        assert dim == 2 and rows.tolist() == [words.index("the"), words.index("cat")]
        np.testing.assert_array_equal(vectors, [[1, 2], [3, 4]])
    cased = Vocab(["The", "cat"])   # a cased vocabulary (lower=False) takes the exact form
    rows, vectors, _ = read_vectors(str(glove), cased, lower=False)
    np.testing.assert_array_equal(vectors[rows.tolist().index(cased.index("The"))], [9, 9])
    only_cased = tmp_path / "cased.txt"
    only_cased.write_text("The 9 9\nTHE 7 7\n", encoding="utf-8")   # no lower-case entry: the first wins
    np.testing.assert_array_equal(read_vectors(str(only_cased), words)[1], [[9, 9]])
    binary = tmp_path / "vectors.bin"
    binary.write_bytes(b"2 2\nthe \x00\x00\x80?\x00\x00\x00@cat \x00\x00@@\x00\x00\x80@")
    with pytest.raises(DataError, match="binary word2vec"):
        read_vectors(str(binary), words)
    bad = tmp_path / "nan.txt"
    bad.write_text("the 1 nan\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"nan.txt:1: a value is not finite"):
        read_vectors(str(bad), words)
