"""Pretrained word vectors for the tagger's word embeddings (``--vectors FILE``)."""
from __future__ import annotations

from typing import Any

import numpy as np


def read_vectors(path: str, words: Any, lower: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """Pretrained vectors from a word2vec/GloVe/fastText text file for the words of a vocabulary.

    Formats: one ``word v1 ... vD`` per line, separated by spaces (GloVe), optionally after a
    first line of two integers ``count D`` (word2vec's and fastText's ``.vec`` header, skipped).
    Binary word2vec files are refused (convert them to text first). With ``lower`` (the tagger's
    default: its vocabulary is lower-cased), a word is looked up lower-cased; where a file holds
    several cased forms of one word (``The``, ``the``), the lower-case entry wins, else the first.
    Vocabulary words absent from the file keep their random initialisation; words of the file
    absent from the vocabulary are ignored.

    Returns ``(rows, vectors, dim)``: the vocabulary indices found in the file and their
    vectors. Lines whose width differs from the first vector's raise
    :class:`~rnnlab.errors.DataError` naming the line.
    """
    from ...errors import DataError

    found: dict[int, tuple[bool, np.ndarray]] = {}   # index -> (exact lower-case entry?, vector)
    dim = 0
    try:
        with open(path, "rb") as raw:
            head = raw.read(4096)
        handle = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"{path}: cannot read the vectors file ({e.strerror}); check the path") from None
    if b"\x00" in head:
        raise DataError(f"{path}: looks like a binary word2vec file; --vectors reads the text format "
                        f"(convert it, e.g. gensim's KeyedVectors.save_word2vec_format(..., binary=False))")
    with handle:
        for lineno, line in enumerate(handle, 1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) < 2:
                continue
            if not dim:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(f"{path}:{lineno}: {len(parts) - 1} numbers where the first vector has {dim}; "
                                f"the file must be word2vec/GloVe text, one 'word v1 ... vD' per line")
            word = parts[0].lower() if lower else parts[0]
            i = words.stoi.get(word)
            exact = parts[0] == word
            if i is not None and (i not in found or (exact and not found[i][0])):
                try:
                    vector = np.array(parts[1:], dtype=np.float64)
                except ValueError:
                    raise DataError(f"{path}:{lineno}: a value is not a number") from None
                if not np.all(np.isfinite(vector)):
                    raise DataError(f"{path}:{lineno}: a value is not finite (nan or inf)")
                found[i] = (exact, vector)
    if not dim:
        raise DataError(f"{path}: no vectors found; expected word2vec/GloVe text, one 'word v1 ... vD' per line")
    rows = np.array(sorted(found), dtype=np.int64)
    vectors = np.array([found[i][1] for i in rows]).reshape(len(rows), dim)
    return rows, vectors, dim
