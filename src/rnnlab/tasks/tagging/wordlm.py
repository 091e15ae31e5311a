"""The language-modelling objective of Rei (2017), "Semi-supervised multitask learning for sequence
labeling": an auxiliary loss on the word BiLSTM, used only in training.

The forward half of the (top) word BiLSTM layer predicts the next word, the backward half the
previous one, each through its own small tanh layer and a softmax over ``classes`` word classes
(the most frequent training words, class 0 for every other word)::

    h = [h_fwd ; h_bwd]               the BiLSTM's output (B, T, 2H), before the output dropout
    m_fwd[t] = tanh(h_fwd[t] W_f + a_f)      p(word t+1) = softmax(m_fwd[t] V_f + c_f)   t < n-1
    m_bwd[t] = tanh(h_bwd[t] W_b + a_b)      p(word t-1) = softmax(m_bwd[t] V_b + c_b)   t >= 1
    L = -(1/B) sum_b [ sum_{t<n_b-1} log p(y[b,t+1]) + sum_{t>=1} log p(y[b,t-1]) ]

summed over the predicted words of a sentence and averaged over the B sentences, as the CRF's
loss is averaged per sentence (Rei's implementation sums both over the batch: the same ratio).
No word predicts across the sentence's ends. The tagger adds ``gamma * L`` to its loss
(``--word-lm-weight``); the emissions and so prediction never read this layer.

Only the N real positions are computed: the rows are gathered from (B, T, H) into (N, H), so
padding costs nothing; backward scatters their gradients back (zeros elsewhere).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...layers import Linear, SoftmaxCrossEntropy
from ...module import DEFAULT_DTYPE, Module


class SideCache(NamedTuple):
    rows: tuple           # (b, t) index arrays of the predicting positions
    hidden: Any           # LinearCache of the tanh layer's input
    m: np.ndarray         # (N, m) tanh outputs
    out: Any              # LinearCache of the softmax layer
    xent: Any             # CrossEntropyCache
    count: int            # N


class WordLMCache(NamedTuple):
    shape: tuple          # (B, T, 2H) of h
    dtype: Any
    batch: int            # B
    sides: list           # SideCache or None, forward then backward


class WordLMHead(Module):
    """``forward(h (B, T, 2H), lengths (B,), classes (B, T)) -> (loss, cache)``;
    ``backward(dloss, cache) -> dh (B, T, 2H)`` (zero on padding and on positions that predict
    nothing). ``classes`` holds each word's class id in ``[0, classes)``."""

    def __init__(self, hidden_size: int, classes: int, lm_hidden: int = 50, *, seed: Any = 0,
                 dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.hidden_size, self.classes = hidden_size, classes
        self.fwd_hidden = self.add_child("fwd_hidden", Linear(hidden_size, lm_hidden, seed=rng, dtype=dtype))
        self.fwd_out = self.add_child("fwd_out", Linear(lm_hidden, classes, seed=rng, dtype=dtype))
        self.bwd_hidden = self.add_child("bwd_hidden", Linear(hidden_size, lm_hidden, seed=rng, dtype=dtype))
        self.bwd_out = self.add_child("bwd_out", Linear(lm_hidden, classes, seed=rng, dtype=dtype))
        self.xent = SoftmaxCrossEntropy()

    def _side(self, h: np.ndarray, rows: tuple, targets: np.ndarray, hidden: Linear,
              out: Linear) -> tuple[float, SideCache | None]:
        if len(rows[0]) == 0:
            return 0.0, None
        x = np.ascontiguousarray(h[rows])
        a, hcache = hidden.forward(x)
        m = np.tanh(a)
        z, ocache = out.forward(m)
        mean, xcache = self.xent.forward(z, targets)
        n = len(rows[0])
        return mean * n, SideCache(rows, hcache, m, ocache, xcache, n)

    def forward(self, h: np.ndarray, lengths: np.ndarray, classes: np.ndarray) -> tuple[float, WordLMCache]:
        B, T, width = h.shape
        H = self.hidden_size
        if width != 2 * H:
            raise ValueError(f"the word LM reads a BiLSTM output of 2 x {H}, got width {width}")
        lengths, classes = np.asarray(lengths), np.asarray(classes)
        t = np.arange(T)[None, :]
        fwd = np.nonzero(t < lengths[:, None] - 1)          # position t predicts word t+1
        bwd = np.nonzero((t >= 1) & (t < lengths[:, None]))  # position t predicts word t-1
        lf, cf = self._side(h[..., :H], fwd, classes[fwd[0], fwd[1] + 1], self.fwd_hidden, self.fwd_out)
        lb, cb = self._side(h[..., H:], bwd, classes[bwd[0], bwd[1] - 1], self.bwd_hidden, self.bwd_out)
        return float((lf + lb) / B), WordLMCache(h.shape, h.dtype, B, [cf, cb])

    def backward(self, dloss: float, cache: WordLMCache) -> np.ndarray:
        dh = np.zeros(cache.shape, dtype=cache.dtype)
        H = self.hidden_size
        for side, hidden, out, cols in ((cache.sides[0], self.fwd_hidden, self.fwd_out, slice(0, H)),
                                        (cache.sides[1], self.bwd_hidden, self.bwd_out, slice(H, 2 * H))):
            if side is None:
                continue
            dz = self.xent.backward(dloss * side.count / cache.batch, side.xent)
            dm = out.backward(dz, side.out)
            dx = hidden.backward(dm * (1.0 - side.m * side.m), side.hidden)
            dh[side.rows[0], side.rows[1], cols] = dx
        return dh


def word_classes(word_ids: list, vocab_size: int, keep: int) -> np.ndarray:
    """``(vocab_size,)`` int64: the word-LM class of every word id, 1..keep for the ``keep`` most
    frequent ids of ``word_ids`` (a list of id arrays, the training sentences; ties by id), 0 for
    the rest (rarer words, the padding and unknown ids 0 and 1)."""
    ids = np.concatenate([np.asarray(w, dtype=np.int64) for w in word_ids]) if word_ids else np.zeros(0, np.int64)
    counts = np.bincount(ids, minlength=vocab_size)
    counts[:2] = 0
    order = np.lexsort((np.arange(vocab_size), -counts))   # most frequent first, ties by id
    top = [i for i in order[:keep] if counts[i] > 0]
    out = np.zeros(vocab_size, dtype=np.int64)
    out[top] = np.arange(1, len(top) + 1)
    return out


def _gradcheck_cases(rng: np.random.Generator) -> list:
    """float64: mixed lengths (a length-1 row predicts nothing), B=1 with T=2, and every row of
    length 1 (no word to predict: loss 0, gradient 0)."""
    from ...gradcheck import Case, randomize

    cases = []
    for label, lengths, T, H, V in (("lengths 4,1,3", [4, 1, 3], 4, 3, 5), ("B=1,T=2", [2], 2, 2, 4),
                                    ("lengths 1,1 (nothing to predict)", [1, 1], 1, 2, 3)):
        head = randomize(WordLMHead(H, V, 3, seed=1), rng, scale=1.0)
        lens = np.array(lengths)
        classes = rng.integers(0, V, size=(len(lengths), T))
        inputs = {"h": rng.standard_normal((len(lengths), T, 2 * H))}

        def run(head=head, inputs=inputs, lens=lens, classes=classes):
            loss, cache = head.forward(inputs["h"], lens, classes)
            return [np.asarray(loss, dtype=np.float64)], cache

        def grad(G, cache, head=head):
            return {"h": head.backward(float(G[0]), cache)}

        cases.append(Case(label, head, inputs, run, grad))
    return cases


def _register() -> None:
    from ...gradcheck import spec_for

    spec_for(WordLMHead)(_gradcheck_cases)


_register()
