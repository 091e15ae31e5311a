"""A simple, documented tokenizer and sentence splitter for tagging plain text.

Tokens (the regular expression :data:`TOKEN`, tried left to right at each position)::

    numbers      digits with inner decimal points or thousands commas:  3.5  1,000  2.0.1
    words        runs of letters and digits (Unicode \\w without the underscore): APC2  Wnt
    everything else, one character per token: punctuation, hyphens, apostrophes, brackets,
                 symbols:  tumour - suppressor,  O ' Brien,  ( APC )

Hyphens and apostrophes are split off as tokens of their own, as in the NCBI-disease corpus
(``tumour - suppressor``); whitespace only separates. Every token keeps its character offsets
``[start, end)`` in the input, so predictions map back onto the text.

Sentences end after ``.``, ``!`` or ``?`` (and any closing quotes or brackets right after it)
when whitespace follows and the next token starts with an upper-case letter, a digit or an
opening quote/bracket, unless the token before the full stop is a known abbreviation
(:data:`ABBREVIATIONS`, e.g. "e.g", "Dr", "Fig") or a single letter (an initial, "J. Smith").
A blank line always ends a sentence.
"""
from __future__ import annotations

import re
from typing import NamedTuple

TOKEN = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+|\S", re.UNICODE)
ABBREVIATIONS = frozenset("""e.g i.e etc vs al fig figs dr mr mrs ms prof st no nos vol ref refs approx ca cf
jan feb mar apr jun jul aug sep sept oct nov dec inc ltd co corp jr sr u.s""".split())
_ENDS = {".", "!", "?"}
_CLOSERS = {'"', "'", ")", "]", "}", "\u201d", "\u2019"}
_OPENERS = {'"', "'", "(", "[", "\u201c", "\u2018"}


class Token(NamedTuple):
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Every token of ``text`` with its character offsets."""
    return [Token(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


def _abbreviation(tokens: list[Token], i: int, text: str) -> bool:
    """Is the full stop at tokens[i] part of an abbreviation or an initial?"""
    if i == 0 or tokens[i].text != ".":
        return False
    prev = tokens[i - 1]
    if prev.end != tokens[i].start:
        return False
    word = prev.text.lower()
    # "e.g." and "i.e." arrive as e . g . : join the letters separated by single dots
    j = i - 1
    while j >= 2 and tokens[j - 1].text == "." and len(tokens[j - 2].text) == 1 and tokens[j - 2].end == tokens[j - 1].start:
        word = tokens[j - 2].text.lower() + "." + word
        j -= 2
    return word in ABBREVIATIONS or (len(prev.text) == 1 and prev.text.isalpha() and prev.text.isupper())


def split_sentences(text: str) -> list[list[Token]]:
    """The tokens of ``text``, grouped into sentences (see the module docstring)."""
    tokens = tokenize(text)
    sentences: list[list[Token]] = []
    current: list[Token] = []
    for i, tok in enumerate(tokens):
        if current and "\n\n" in text[current[-1].end:tok.start].replace("\r", "").replace(" ", "").replace("\t", ""):
            sentences.append(current)
            current = []
        current.append(tok)
        if tok.text in _ENDS or (tok.text in _CLOSERS and len(current) > 1 and current[-2].text in _ENDS):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is not None and nxt.text in _CLOSERS and nxt.start == tok.end:
                continue  # the closing quote or bracket belongs to this sentence
            end_at = i if tok.text in _ENDS else i - 1
            if _abbreviation(tokens, end_at, text):
                continue
            if nxt is None or (nxt.start > tok.end and (nxt.text[0].isupper() or nxt.text[0].isdigit()
                                                        or nxt.text in _OPENERS)):
                sentences.append(current)
                current = []
    if current:
        sentences.append(current)
    return sentences
