"""Sequence tagging as a task of the one training loop (:func:`rnnlab.train.run_task`).

* data: a named dataset (``ncbi-disease``, ``conll2000``) or CoNLL files (train, dev,
  optional test), tags rewritten in ``scheme`` (BIO or BIOES); vocabularies from the training
  split only (:mod:`rnnlab.tasks.tagging.vocab`).
* batches: shuffled epochs of length-bucketed batches (``make_batches(shuffle=True)``, the
  permutation seeded by ``[seed, epoch]``); the position is ``(epoch, index)``, so a run
  resumes bit for bit. Lample et al.'s singleton trick: a training word seen once is replaced
  by the unknown word with probability ``word_unk`` (drawn from ``[seed, epoch, index]``), so
  the model learns what to do with words it has never seen.
* validation: entity F1 (conlleval semantics, :mod:`rnnlab.tasks.tagging.metrics`) of the
  Viterbi paths, constrained to well-formed tag sequences; best = highest F1.
* checkpoint: the weights, the model's sizes and the vocabularies (JSON), so a run folder
  alone is enough to tag new text (:func:`load_run`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ...checkpoint import load_checkpoint
from ...errors import CheckpointError, ConfigError
from .schemes import tag_constraints
from ...module import no_grad
from ...train.task import EvalInterrupted, Selection, StepOutput, Task
from .config import TagConfig
from .consistency import OFF, Propagation, from_config
from .context import DEFAULT_MAX_LEN, context_batches, emissions_backward, extend, sentence_emissions
from .data import Sentence, TaggedCorpus, convert_sentences, load_dataset, read_conll, repair_note
from .metrics import EntityReport, evaluate
from .model import TaggerModel, read_vectors
from .schemes import convert, detect_scheme
from .vocab import Vocabs, encode
from .wordlm import word_classes

KIND = "rnnlab.tagger"


def load_corpus(cfg: TagConfig) -> TaggedCorpus:
    """The splits named by the config, tags in ``cfg.scheme``."""
    if cfg.dataset:
        return load_dataset(cfg.dataset, cfg.data_dir or None, scheme=cfg.scheme)
    parts, repairs = {}, []
    for role, path in (("train", cfg.train_file), ("dev", cfg.dev_file), ("test", cfg.test_file)):
        if not path:
            parts[role] = []
            continue
        sentences = read_conll(path, "auto")  # a tag outside every scheme (Q-Thing) is refused by line
        note = repair_note(sentences, detect_scheme([s.tags for s in sentences]), f"{role} file {path}")
        if note:
            repairs.append(note)
        parts[role] = convert_sentences(sentences, cfg.scheme)
    return TaggedCorpus("files", cfg.scheme, parts["train"], parts["dev"], parts["test"],
                        {k: Path(v) for k, v in (("train", cfg.train_file), ("dev", cfg.dev_file),
                                                 ("test", cfg.test_file)) if v}, repairs=repairs)


def lm_features(cfg_lm: str) -> Any:
    """The frozen char-LM features named by ``--lm FWD_RUN,BWD_RUN`` (None without)."""
    if not cfg_lm:
        return None
    from .lm import LMFeatures

    fwd, bwd = (part.strip() for part in cfg_lm.split(","))
    return LMFeatures(fwd, bwd)


def model_spec(cfg: TagConfig, vocabs: Vocabs, lm: Any = None) -> dict[str, Any]:
    return {"word_vocab": len(vocabs.words), "char_vocab": len(vocabs.chars), "case_vocab": len(vocabs.cases),
            "num_tags": len(vocabs.tags), "feature_vocabs": [len(f) for f in vocabs.features],
            "word_dim": cfg.word_dim, "case_dim": cfg.case_dim, "feature_dim": cfg.feature_dim,
            "char_dim": cfg.char_dim, "char_hidden": cfg.char_hidden, "use_chars": cfg.chars,
            "hidden_size": cfg.hidden_size, "num_layers": cfg.num_layers, "dropout": cfg.dropout,
            "crf": cfg.crf, "seed": cfg.seed, "lm_dim": lm.dim if lm is not None else 0,
            **({"word_lm_classes": min(cfg.word_lm_vocab, len(vocabs.words) - 2) + 1,
                "word_lm_hidden": cfg.word_lm_hidden} if cfg.word_lm_gamma() > 0 else {})}


def constraints_for(model: TaggerModel, vocabs: Vocabs, scheme: str) -> Any:
    return tag_constraints(vocabs.tags.itos, scheme) if model.use_crf else None


def predict_tags(model: TaggerModel, vocabs: Vocabs, sentences: Sequence[Sentence], scheme: str,
                 batch_size: int = 128, max_word_len: int | None = 30,
                 should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], None] | None = None,
                 with_loss: bool = False, lm: Any = None, context: int = 0,
                 context_max_len: int = DEFAULT_MAX_LEN,
                 marginals: list | None = None) -> tuple[list[list[str]], float]:
    """Tag strings per sentence (and the mean loss per batch item when ``with_loss``); eval mode, no_grad.
    ``lm``: the run's char-LM features (:func:`lm_features`) when it was trained with them; ``context``:
    its ``--context`` (neighbours from this list's order and the sentences' documents, context.py).
    ``marginals``: a list, filled with each sentence's (length, tags) posterior marginals (float64,
    :meth:`TaggerModel.marginals` under the decoding's constraints); None: not computed."""
    constraints = constraints_for(model, vocabs, scheme)
    batches = sentence_batches(sentences, vocabs, max_word_len, lm, context, context_max_len, batch_size)
    predicted: list[list[str]] = [[] for _ in sentences]
    was_training, total, count = model.training, 0.0, 0
    if marginals is not None:
        marginals[:] = [np.zeros((0, len(vocabs.tags)))] * len(sentences)
    model.eval()
    try:
        with no_grad():
            for k, batch in enumerate(batches):
                if should_stop():
                    raise EvalInterrupted
                emissions, _, target = sentence_emissions(model, batch)
                if with_loss:
                    loss, _ = model.loss(emissions, target)
                    n = target.size if model.use_crf else target.tokens
                    total, count = total + loss * n, count + n
                for row, path in zip(batch.index, model.decode(emissions, target.lengths, constraints)):
                    predicted[row] = vocabs.tags.decode(path)
                if marginals is not None:
                    p = model.marginals(emissions, target.lengths, constraints)
                    for b, (row, n) in enumerate(zip(batch.index, target.lengths)):
                        marginals[row] = np.array(p[b, :int(n)], dtype=np.float64)
                if progress is not None:
                    progress(k + 1, len(batches))
    finally:
        model.train(was_training)
    return predicted, (total / count if count else math.nan)


def sentence_batches(sentences: Sequence[Sentence], vocabs: Vocabs, max_word_len: int | None, lm: Any,
                     context: int, context_max_len: int, batch_size: int) -> list:
    """Prediction's batches (sorted by length, at most ``batch_size`` rows and 40 tokens a row on
    average), each row with its ``--context`` when ``context`` > 0."""
    rows, spans = extend(encode(sentences, vocabs, max_word_len, lm), [s.doc for s in sentences], context,
                         context_max_len)
    return context_batches(rows, spans, batch_size, max_tokens=batch_size * 40)


def in_gold_scheme(sentences: Sequence[Sentence], predicted: Sequence[Sequence[str]]) -> tuple[list[list[str]], str]:
    """Predicted tags rewritten in the scheme the gold sentences are written in (BIO, BIOES or
    IOB1, :func:`~rnnlab.tasks.tagging.schemes.detect_scheme`), and that scheme: token accuracy
    and written predictions then compare like with like (entity scores do not depend on it)."""
    scheme = detect_scheme([s.tags for s in sentences])
    return [convert(p, scheme) for p in predicted], scheme


class TaggingTask(Task):
    name = "tagging"
    unit = "sentences"
    selection = Selection("f1", "max")

    def __init__(self, cfg: TagConfig, vocabs: Vocabs, train: Sequence[Sentence], dev: Sequence[Sentence],
                 lm_runs: str = "") -> None:
        if not train or not dev:
            raise ConfigError("tagging needs training and validation sentences")
        self.cfg, self.vocabs, self.dev = cfg, vocabs, list(dev)
        # computed once per sentence, cached; lm_runs: the pair --lm-text trained (cfg.lm stays as given)
        self.lm = lm_features(lm_runs or cfg.lm)
        self.encoded = encode(train, vocabs, cfg.max_word_len, self.lm)
        # --context: the rows the BiLSTMs read (each sentence with its neighbours) and the sentences' spans
        self.rows, self.spans = extend(self.encoded, [s.doc for s in train], cfg.context, cfg.context_max_len)
        counts: dict[int, int] = {}
        for e in self.encoded:
            for w in e.words.tolist():
                counts[w] = counts.get(w, 0) + 1
        self.singletons = np.zeros(len(vocabs.words), dtype=bool)
        self.singletons[[w for w, n in counts.items() if n == 1]] = True
        self.singletons[: 2] = False
        # --word-lm-weight: each word id's class for the word LM (its N most frequent words, 0 the rest)
        self.word_class = (word_classes([e.words for e in self.encoded], len(vocabs.words), cfg.word_lm_vocab)
                           if cfg.word_lm_gamma() > 0 else None)
        self.epoch, self.index = 0, 0
        self._epoch_batches: tuple[int, list] | None = None
        self.vectors_note = ""   # set by build_model when --vectors initialises the word embeddings
        self._vectors: tuple[np.ndarray, np.ndarray, int] | None = None

    # -- model -----------------------------------------------------------------------------------
    def build_model(self) -> TaggerModel:
        model = TaggerModel(**model_spec(self.cfg, self.vocabs, self.lm))
        if self.cfg.vectors:
            if self._vectors is None:   # read once: GloVe files run to gigabytes
                self._vectors = read_vectors(self.cfg.vectors, self.vocabs.words, self.vocabs.lower)
            rows, vectors, dim = self._vectors
            if dim != self.cfg.word_dim:
                raise ConfigError(f"{self.cfg.vectors} holds {dim}-dimensional vectors; set --word-dim {dim}")
            model.word.params["W"][rows] = vectors
            self.vectors_note = (f"--vectors: {len(rows):,} of {len(self.vocabs.words) - 2:,} training words found in "
                                 f"{self.cfg.vectors} ({100 * len(rows) / max(1, len(self.vocabs.words) - 2):.1f} %); "
                                 "the others keep their random initialisation")
        return model

    def pack_model(self, model: TaggerModel) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"param/{name}": value for name, value in model.state_dict().items()}
        return arrays, {"kind": KIND, "model": dict(model.spec), "vocabs": self.vocabs.to_dict(),
                        "scheme": self.cfg.scheme, "max_word_len": self.cfg.max_word_len,
                        **({"context": self.cfg.context, "context_max_len": self.cfg.context_max_len}
                           if self.cfg.context else {}),
                        "lm": ",".join(str(x.path.resolve()) for x in (self.lm.fwd, self.lm.bwd)) if self.lm else ""}

    # -- data --------------------------------------------------------------------------------------
    def _batches(self) -> list:
        if self._epoch_batches is None or self._epoch_batches[0] != self.epoch:
            seed = int(np.random.SeedSequence([self.cfg.seed, self.epoch]).generate_state(1)[0])
            self._epoch_batches = (self.epoch, context_batches(self.rows, self.spans, self.cfg.batch_size,
                                                               shuffle=True, seed=seed))
        return self._epoch_batches[1]

    def next_batch(self) -> Any:
        batches = self._batches()
        batch = batches[self.index]
        if self.word_class is not None:  # the words' own classes, before any is replaced by <unk>
            batch = replace(batch, word_classes=self.word_class[batch.words])
        if self.cfg.word_unk > 0:
            rng = np.random.default_rng([self.cfg.seed, self.epoch, self.index])
            drop = self.singletons[batch.words] & (rng.random(batch.words.shape) < self.cfg.word_unk)
            if drop.any():
                batch = _replace_words(batch, np.where(drop, self.vocabs.words.unk_index, batch.words))
        self.index += 1
        if self.index == len(batches):
            self.epoch, self.index = self.epoch + 1, 0
        return batch

    def data_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])

    # -- one step and evaluation ---------------------------------------------------------------------
    def forward_backward(self, model: TaggerModel, batch: Any, carry: Any) -> StepOutput:
        emissions, cache, target = sentence_emissions(model, batch)   # --context: the sentences' positions
        loss, lcache = model.loss(emissions, target)
        dh = None
        if model.word_lm is not None and self.cfg.word_lm_gamma() > 0:   # Rei (2017): + gamma x the word LM
            gamma = self.cfg.word_lm_gamma()
            lm, lmcache = model.word_lm.forward(cache.h, batch.lengths, batch.word_classes)
            loss += gamma * lm
            dh = model.word_lm.backward(gamma, lmcache)
        model.backward(emissions_backward(model.loss_backward(lcache), batch), cache, dh)
        return StepOutput(loss, batch.size, cache.rnn, None)

    def evaluate(self, model: TaggerModel, should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        predicted, loss = predict_tags(model, self.vocabs, self.dev, self.cfg.scheme, self.cfg.eval_batch,
                                       self.cfg.max_word_len, should_stop, progress, with_loss=True, lm=self.lm,
                                       context=self.cfg.context, context_max_len=self.cfg.context_max_len)
        return metrics_row(evaluate([s.tags for s in self.dev], predicted), loss)

    def describe_eval(self, metrics: dict[str, float]) -> str:
        return (f"validation entity F1 {metrics['f1']:.2f} (P {metrics['precision']:.2f}, R {metrics['recall']:.2f}, "
                f"token accuracy {metrics['acc']:.2f}%), loss {metrics['loss']:.4f}")

    def meta(self) -> dict[str, Any]:
        return {"train_sentences": len(self.encoded), "dev_sentences": len(self.dev)}


def metrics_row(report: EntityReport, loss: float) -> dict[str, float]:
    return {"loss": float(loss), "f1": 100 * report.f1, "precision": 100 * report.precision,
            "recall": 100 * report.recall, "acc": 100 * report.token_accuracy}


def _replace_words(batch: Any, words: np.ndarray) -> Any:
    return replace(batch, words=words)


@dataclass
class LoadedRun:
    model: TaggerModel
    vocabs: Vocabs
    scheme: str
    max_word_len: int
    config: dict
    path: Path
    lm: Any = None      # the char-LM features the model reads (None without --lm)
    weights: str = "current"   # "average": the loop's averaged weights won on validation (--average)
    context: int = 0           # --context: neighbouring sentences read on each side
    context_max_len: int = DEFAULT_MAX_LEN
    propagation: Propagation = OFF   # --propagate: label consistency after decoding (consistency.py)


def load_run(run: str | Path) -> LoadedRun:
    """The tagger saved in a run folder (its best.npz) or a checkpoint file."""
    from ...train.runs import find_checkpoint

    path = find_checkpoint(run)
    arrays, meta = load_checkpoint(path)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} is not a tagger checkpoint (kind {meta.get('kind')!r}); "
                              "train one with `rnnlab tag train`")
    spec = dict(meta["model"])
    model = TaggerModel(**spec)
    model.load_state_dict({k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")})
    lm = lm_features(meta.get("lm", "")) if spec.get("lm_dim") else None
    return LoadedRun(model.eval(), Vocabs.from_dict(meta["vocabs"]), meta["scheme"], int(meta.get("max_word_len", 30)),
                     meta.get("config", {}), path, lm, str(meta.get("trainer", {}).get("weights", "current")),
                     int(meta.get("context", 0)), int(meta.get("context_max_len", DEFAULT_MAX_LEN)),
                     from_config(meta.get("config", {}), meta.get("propagate")))
