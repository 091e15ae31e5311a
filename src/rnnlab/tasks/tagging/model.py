"""The BiLSTM(-CRF) tagger (Lample et al. 2016; Huang et al. 2015), built from the engine's layers.

Per token t of a sentence (B rows, T positions, right-padded; ``lengths`` (B,))::

    w_t = E_word[lower(token)]                    unknown words: the <unk> row
    k_t = E_case[shape(token)]                    rnnlab.tasks.tagging.vocab.case_feature
    f_t = [E_f1[col1] ; E_f2[col2] ; ...]         optional feature columns (POS for conll2000)
    c_t = [h_fwd(last char) ; h_bwd(first char)]  a BiLSTM over the token's characters
    l_t = batch.lm[t]                             optional frozen char-LM features (lm_dim > 0;
                                                  rnnlab.tasks.tagging.lm): an input, no gradient
    x_t = Dropout([w_t ; k_t ; f_t ; c_t ; l_t])
    h   = RNNStack(lstm, bidirectional, lengths)(x)   (B, T, 2H), 0 on padding
    s   = Dropout(h) W + b                        emissions (B, T, K)
    loss = CRF NLL (mean per sentence)   or   masked softmax cross-entropy (mean per token)
    (training only, word_lm_classes > 0: + gamma x the word-LM loss of ``word_lm`` on h, Rei 2017,
     rnnlab.tasks.tagging.wordlm; the task adds it, forward(batch) and prediction never read it)

The character BiLSTM runs once per distinct spelling in the batch (a batch repeats "the",
",", "."...): U unique rows of character ids, each with its own length, through two
:class:`~rnnlab.layers.Recurrent` LSTMs (the second ``reverse=True``) fed
:meth:`~rnnlab.layers.Embedding.tokens` (the char table projected once). Its output is
gathered back to every token; backward sums the tokens' gradients per spelling
(``add_rows``) and enters them as the gradients of the two final states. The result equals
running the BiLSTM over every token (the torch parity test does exactly that).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...cells import LSTMCell
from ...layers import CRF, Dropout, Embedding, Linear, Recurrent, RNNStack, SoftmaxCrossEntropy
from ...layers.tokens import add_rows
from ...module import DEFAULT_DTYPE, Module
from .vectors import read_vectors  # noqa: F401  (its old import path)
from .wordlm import WordLMHead


class CharCache(NamedTuple):
    mask: np.ndarray      # (B, T) bool, real tokens
    inverse: np.ndarray   # (N,) unique-spelling index of each real token
    fwd: Any
    bwd: Any
    units: int            # U


class TaggerCache(NamedTuple):
    ids: list             # the embedding caches, in input order
    char: CharCache | None
    drop_in: Any
    rnn: Any              # StackCache
    drop_out: Any
    out: Any              # LinearCache
    widths: list          # feature widths of the concatenated input
    h: np.ndarray         # (B, T, 2H) the word BiLSTM's output before dropout (the word LM reads it)


class LossCache(NamedTuple):
    kind: str
    inner: Any


class TaggerModel(Module):
    """``forward(batch) -> (emissions (B, T, K), cache)``; ``backward(demissions, cache)``;
    ``loss(emissions, batch)`` / ``loss_backward(cache)``; ``decode(emissions, lengths, constraints)``.

    ``batch`` has ``words, chars, char_lengths, cases, features, lengths`` (a
    :class:`~rnnlab.tasks.tagging.vocab.Batch`).
    """

    def __init__(self, word_vocab: int, char_vocab: int, case_vocab: int, num_tags: int, *,
                 feature_vocabs: tuple = (), word_dim: int = 100, case_dim: int = 8, feature_dim: int = 16,
                 char_dim: int = 25, char_hidden: int = 25, use_chars: bool = True, hidden_size: int = 100,
                 num_layers: int = 1, dropout: float = 0.5, crf: bool = True, seed: int = 0,
                 lm_dim: int = 0, word_lm_classes: int = 0, word_lm_hidden: int = 50,
                 dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        self.spec = {"word_vocab": word_vocab, "char_vocab": char_vocab, "case_vocab": case_vocab,
                     "num_tags": num_tags, "feature_vocabs": list(feature_vocabs), "word_dim": word_dim,
                     "case_dim": case_dim, "feature_dim": feature_dim, "char_dim": char_dim,
                     "char_hidden": char_hidden, "use_chars": use_chars, "hidden_size": hidden_size,
                     "num_layers": num_layers, "dropout": dropout, "crf": crf, "seed": seed,
                     "lm_dim": lm_dim}
        if word_lm_classes:  # only then, so that older runs' specs stay as they were
            self.spec.update(word_lm_classes=word_lm_classes, word_lm_hidden=word_lm_hidden)
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(10 + len(feature_vocabs))]
        self.word = self.add_child("word", Embedding(word_vocab, word_dim, seed=rngs[0], std=word_dim ** -0.5,
                                                     dtype=dtype))
        self.case = self.add_child("case", Embedding(case_vocab, case_dim, seed=rngs[1], std=case_dim ** -0.5,
                                                     dtype=dtype))
        self.feats = [self.add_child(f"feat{k}", Embedding(v, feature_dim, seed=rngs[10 + k],
                                                           std=feature_dim ** -0.5, dtype=dtype))
                      for k, v in enumerate(feature_vocabs)]
        size = word_dim + case_dim + feature_dim * len(self.feats)
        self.use_chars = use_chars
        if use_chars:
            self.char = self.add_child("char", Embedding(char_vocab, char_dim, seed=rngs[2], std=char_dim ** -0.5,
                                                         dtype=dtype))
            self.char_fwd = self.add_child("char_fwd", Recurrent(LSTMCell(char_dim, char_hidden, seed=rngs[3],
                                                                          dtype=dtype)))
            self.char_bwd = self.add_child("char_bwd", Recurrent(LSTMCell(char_dim, char_hidden, seed=rngs[4],
                                                                          dtype=dtype), reverse=True))
            size += 2 * char_hidden
        self.lm_dim = lm_dim
        size += lm_dim
        self.input_size = size
        self.drop_in = self.add_child("drop_in", Dropout(dropout, seed=rngs[5]))
        self.rnn = self.add_child("rnn", RNNStack("lstm", size, hidden_size, num_layers, dropout=dropout,
                                                  bidirectional=True, seed=int(rngs[6].integers(2 ** 31)),
                                                  dtype=dtype))
        self.drop_out = self.add_child("drop_out", Dropout(dropout, seed=rngs[7]))
        self.out = self.add_child("out", Linear(self.rnn.output_size, num_tags, seed=rngs[8], dtype=dtype))
        self.use_crf = crf
        if crf:
            self.crf = self.add_child("crf", CRF(num_tags, seed=rngs[9], dtype=dtype))
        self.xent = SoftmaxCrossEntropy()
        self.word_lm = None
        if word_lm_classes:   # its own generator: the layers above draw exactly as without it
            self.word_lm = self.add_child("word_lm", WordLMHead(hidden_size, word_lm_classes, word_lm_hidden,
                                                                seed=np.random.default_rng([seed, 2017]),
                                                                dtype=dtype))

    # -- the character BiLSTM ------------------------------------------------------------------
    def _chars(self, batch: Any) -> tuple[np.ndarray, CharCache]:
        chars, char_lengths = np.asarray(batch.chars), np.asarray(batch.char_lengths)
        B, T = chars.shape[:2]
        mask = np.arange(T)[None, :] < np.asarray(batch.lengths)[:, None]
        rows, lens = chars[mask], char_lengths[mask]
        width = max(int(lens.max()), 1)
        rows = np.ascontiguousarray(rows[:, :width])
        uniq, first, inverse = unique_rows(rows)
        ulens = np.maximum(lens[first], 1)
        # only the final states are used: outputs=False skips gathering the (U, width, H) outputs
        (_, (hf, _)), cf = self.char_fwd.forward(self.char.tokens(uniq), None, ulens, outputs=False)
        (_, (hb, _)), cb = self.char_bwd.forward(self.char.tokens(uniq), None, ulens, outputs=False)
        rep = np.concatenate([hf, hb], axis=1)
        out = np.zeros((B, T, rep.shape[1]), dtype=rep.dtype)
        out[mask] = rep[inverse]
        return out, CharCache(mask, inverse, cf, cb, len(uniq))

    def _chars_backward(self, dout: np.ndarray, cache: CharCache) -> None:
        dtok = np.ascontiguousarray(dout[cache.mask])
        drep = np.zeros((cache.units, dtok.shape[1]), dtype=dtok.dtype)
        add_rows(cache.inverse, dtok, drep)
        Hc = drep.shape[1] // 2
        self.char_fwd.backward((None, (np.ascontiguousarray(drep[:, :Hc]), None)), cache.fwd)
        self.char_bwd.backward((None, (np.ascontiguousarray(drep[:, Hc:]), None)), cache.bwd)

    # -- the network ---------------------------------------------------------------------------
    def forward(self, batch: Any) -> tuple[np.ndarray, TaggerCache]:
        lengths = np.asarray(batch.lengths)
        parts, id_caches = [], []
        for emb, ids in ((self.word, batch.words), (self.case, batch.cases),
                         *((f, np.asarray(batch.features)[..., k]) for k, f in enumerate(self.feats))):
            y, c = emb.forward(ids)
            parts.append(y)
            id_caches.append(c)
        ccache = None
        if self.use_chars:
            rep, ccache = self._chars(batch)
            parts.append(rep)
        if self.lm_dim:
            lm = getattr(batch, "lm", None)
            if lm is None or np.shape(lm)[-1] != self.lm_dim:
                raise ValueError(f"this tagger reads {self.lm_dim} char-LM features per token; the batch has "
                                 f"{'none' if lm is None else np.shape(lm)[-1]}")
            parts.append(np.asarray(lm, dtype=parts[0].dtype))
        x = np.concatenate(parts, axis=-1)
        x, dcache = self.drop_in.forward(x)
        (h_rnn, _), rcache = self.rnn.forward(x, None, lengths)
        h, ocache_drop = self.drop_out.forward(h_rnn)
        emissions, ocache = self.out.forward(h)
        return emissions, TaggerCache(id_caches, ccache, dcache, rcache, ocache_drop, ocache,
                                      [p.shape[-1] for p in parts], h_rnn)

    def backward(self, demissions: np.ndarray, cache: TaggerCache, dh_rnn: np.ndarray | None = None) -> None:
        """``dh_rnn``: a gradient on the BiLSTM's output from elsewhere (the word LM's), added to
        the emissions' own."""
        dh = self.out.backward(demissions, cache.out)
        dh = self.drop_out.backward(dh, cache.drop_out)
        if dh_rnn is not None:
            dh = dh + dh_rnn
        dx, _ = self.rnn.backward((dh, None), cache.rnn)
        dx = self.drop_in.backward(dx, cache.drop_in)
        edges = np.cumsum([0] + cache.widths)
        embs = [self.word, self.case, *self.feats]
        for k, (emb, c) in enumerate(zip(embs, cache.ids)):
            emb.backward(np.ascontiguousarray(dx[..., edges[k]:edges[k + 1]]), c)
        if cache.char is not None:  # the char BiLSTM's slice follows the embeddings'; the LM's is an input
            k = len(embs)
            self._chars_backward(dx[..., edges[k]:edges[k + 1]], cache.char)
        return None

    # -- loss and decoding ---------------------------------------------------------------------
    def loss(self, emissions: np.ndarray, batch: Any) -> tuple[float, LossCache]:
        """CRF: mean negative log-likelihood per sentence; softmax: mean cross-entropy per token."""
        if self.use_crf:
            value, c = self.crf.forward(emissions, batch.tags, np.asarray(batch.lengths))
            return value, LossCache("crf", c)
        mask = np.arange(emissions.shape[1])[None, :] < np.asarray(batch.lengths)[:, None]
        value, c = self.xent.forward(emissions, np.asarray(batch.tags), mask)
        return value, LossCache("softmax", c)

    def loss_backward(self, cache: LossCache, dloss: float = 1.0) -> np.ndarray:
        if cache.kind == "crf":
            return self.crf.backward(dloss, cache.inner)
        return self.xent.backward(dloss, cache.inner)

    def decode(self, emissions: np.ndarray, lengths: np.ndarray, constraints: Any = None) -> list[list[int]]:
        """Best tag ids per row (Viterbi under ``constraints`` with the CRF, per-token argmax without)."""
        if self.use_crf:
            return self.crf.decode(emissions, np.asarray(lengths), constraints)
        best = emissions.argmax(axis=-1)
        return [best[b, :int(n)].tolist() for b, n in enumerate(lengths)]

    def marginals(self, emissions: np.ndarray, lengths: np.ndarray, constraints: Any = None) -> np.ndarray:
        """p(tag k at position t), (B, T, K), zero on padding: the CRF's posterior marginals over the
        paths ``constraints`` allow (forward-backward), or the per-token softmax without a CRF."""
        x = np.asarray(emissions, dtype=np.float64)
        if self.use_crf:
            return self.crf.marginals(x, np.asarray(lengths), constraints)
        p = np.exp(x - x.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        return p * (np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None])[:, :, None]


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(rows, axis=0, return_index=True, return_inverse=True)`` for (N, w) integer rows,
    the same three arrays (inverse flat), about 5x faster for a tagging batch's character rows:
    ids in [0, 65536) are written as big-endian uint16, so that one row is one ``void`` value
    whose byte order (memcmp) is the rows' lexicographic order, and a 1-D sort replaces the
    field-by-field one of ``axis=0``. Other ids take ``np.unique`` itself."""
    if rows.size == 0 or rows.min() < 0 or rows.max() >= 1 << 16:
        uniq, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        return uniq, first, inverse.reshape(-1)
    key = np.ascontiguousarray(rows, dtype=">u2").view(np.dtype((np.void, 2 * rows.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return rows[first], first, inverse.reshape(-1)


def random_batch(rng: np.random.Generator, lengths: list[int], vocab: int = 7, chars: int = 6, cases: int = 4,
                 features: tuple = (), tags: int = 3, max_chars: int = 4, lm_dim: int = 0,
                 word_classes: int = 0) -> Any:
    """A random :class:`~rnnlab.tasks.tagging.vocab.Batch` (for gradient checks and parity tests):
    right-padded, some spellings repeated; with ``word_classes``, random word-LM classes."""
    from .vocab import Batch

    B, T = len(lengths), max(lengths)
    lens = np.array(lengths)
    live = np.arange(T)[None, :] < lens[:, None]
    spell_lens = rng.integers(1, max_chars + 1, size=5)
    spellings = [rng.integers(1, chars, size=n) for n in spell_lens]  # 5 spellings: tokens repeat
    pick = rng.integers(0, 5, size=(B, T))
    char_ids = np.zeros((B, T, max_chars), np.int64)
    char_lengths = np.zeros((B, T), np.int64)
    for b, t in zip(*np.nonzero(live)):
        s = spellings[pick[b, t]]
        char_ids[b, t, :len(s)], char_lengths[b, t] = s, len(s)
    words = np.where(live, rng.integers(1, vocab, size=(B, T)), 0)
    return Batch(words, char_ids, char_lengths, np.where(live, rng.integers(1, cases, size=(B, T)), 0),
                 np.stack([np.where(live, rng.integers(1, v, size=(B, T)), 0) for v in features], axis=-1)
                 if features else np.zeros((B, T, 0), np.int64),
                 np.where(live, rng.integers(0, tags, size=(B, T)), 0), live, lens, np.arange(B),
                 (rng.standard_normal((B, T, lm_dim)) * live[..., None]) if lm_dim else None,
                 np.where(live, rng.integers(0, word_classes, size=(B, T)), 0) if word_classes else None)


def _gradcheck_cases(rng: np.random.Generator) -> list:
    """The whole tagger, float64, dropout off: CRF and softmax heads, chars on and off, a feature
    column, mixed lengths (a length-1 row), two stacked BiLSTM layers; and the training objective
    with the word LM (Rei 2017) on the top layer, its loss a third output."""
    from ...gradcheck import Case, randomize

    cases = [_word_lm_case(rng)]
    for label, kw, lengths in (
            ("CRF, chars, lengths 4,1,3", {}, [4, 1, 3]),
            ("softmax, chars, feature column, lengths 2,3", {"crf": False, "feature_vocabs": (4,)}, [2, 3]),
            ("CRF, no chars, 2 layers, B=1,T=1", {"use_chars": False, "num_layers": 2}, [1]),
            ("CRF, chars, char-LM features (lm_dim 3), lengths 3,2", {"lm_dim": 3}, [3, 2])):
        model = TaggerModel(7, 6, 4, 3, word_dim=3, case_dim=2, feature_dim=2, char_dim=2, char_hidden=2,
                            hidden_size=3, dropout=0.0, seed=1, **kw)
        model = randomize(model, rng, scale=1.0)
        batch = random_batch(rng, lengths, features=tuple(kw.get("feature_vocabs", ())), lm_dim=kw.get("lm_dim", 0))
        live = batch.mask[..., None]  # the emissions themselves are checked too (a larger signal)

        def run(model=model, batch=batch, live=live):
            emissions, cache = model.forward(batch)
            loss, lcache = model.loss(emissions, batch)
            return [np.asarray(loss), emissions * live], (cache, lcache)

        def grad(G, caches, model=model, live=live):
            cache, lcache = caches
            model.backward(model.loss_backward(lcache, float(G[0])) + G[1] * live, cache)
            return {}

        cases.append(Case(label, model, {}, run, grad))
    return cases


def _word_lm_case(rng: np.random.Generator) -> Any:
    from ...gradcheck import Case, randomize

    model = randomize(TaggerModel(7, 6, 4, 3, word_dim=3, case_dim=2, char_dim=2, char_hidden=2, hidden_size=3,
                                  num_layers=2, dropout=0.0, seed=1, word_lm_classes=4, word_lm_hidden=3),
                      rng, scale=1.0)
    batch = random_batch(rng, [4, 1, 3], word_classes=4)

    def run():
        emissions, cache = model.forward(batch)
        loss, lcache = model.loss(emissions, batch)
        lm, lmcache = model.word_lm.forward(cache.h, batch.lengths, batch.word_classes)
        return [np.asarray(loss), np.asarray(lm), emissions * batch.mask[..., None]], (cache, lcache, lmcache)

    def grad(G, caches):
        cache, lcache, lmcache = caches
        model.backward(model.loss_backward(lcache, float(G[0])) + G[2] * batch.mask[..., None], cache,
                       model.word_lm.backward(float(G[1]), lmcache))
        return {}

    return Case("CRF, chars, 2 layers, word-LM objective (4 classes), lengths 4,1,3", model, {}, run, grad)


def _register() -> None:
    from ...gradcheck import spec_for

    spec_for(TaggerModel)(_gradcheck_cases)


_register()
