"""The tagger from Python, and the training entry point behind ``rnnlab tag train``.

>>> from rnnlab.tasks.tagging import Tagger
>>> tagger = Tagger(crf=True, hidden_size=100).fit("ncbi-disease", data_dir="../shared/data", max_minutes=30)
>>> tagger.evaluate("test.tsv").f1                      # or a list of Sentence
>>> tagger.predict([["BRCA1", "mutations", "cause", "breast", "cancer", "."], "Raw text is tokenised."])
>>> tagger.save("tagger.npz"); tagger = Tagger.load("tagger.npz")   # or Tagger.load("runs/latest")
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ...blas import precision
from ...errors import ConfigError
from ...train import Progress, run_task
from ...train.job import Job, open_job
from ...train.runs import CONFIG
from .data import Sentence, read_conll
from .metrics import EntityReport, evaluate, format_table
from .schemes import chunks
from .task import LoadedRun, TagConfig, TaggingTask, in_gold_scheme, load_corpus, load_run
from .tokenize import split_sentences, tokenize
from .vocab import Vocabs, build_vocabs


def train_tagger(cfg: TagConfig | None = None, out: str | None = None, resume: str | None = None,
                 budget: dict | None = None, force: bool = False, log: Callable[[str], None] = print,
                 progress: Progress | None = None, given: dict | None = None) -> dict[str, Any]:
    """Train (or with ``resume``, continue exactly) a tagger; returns the loop's summary, plus
    ``test`` (the best checkpoint's EntityReport on the test split) when there is one.

    On resume the run's settings stand; ``budget`` (or ``given``, the settings the user gave)
    replaces its budget, and any other setting given must equal the run's own
    (:func:`~rnnlab.train.job.resumed_config`)."""
    if not resume and cfg is None:
        raise ConfigError("train_tagger needs a TagConfig (or resume=RUN)")
    given = {**(budget or {}), **(given or {})}
    with open_job("tagging", TagConfig, cfg, out=out, resume=resume, force=force, given=given) as job:
        return _train_tagger(job, log, progress, force=force)


def _train_tagger(job: Job, log: Callable[[str], None], progress: Progress | None,
                  force: bool = False) -> dict[str, Any]:
    cfg, ckpt, meta, run_dir = job.cfg, job.ckpt, job.meta, job.run_dir
    cfg.validate()
    precision.check(cfg.precision)   # one line naming the missing CPU feature or package, before any work
    corpus = load_corpus(cfg)
    vocabs = Vocabs.from_dict(meta["vocabs"]) if ckpt is not None else build_vocabs(
        corpus.train, scheme=cfg.scheme, min_word_count=cfg.min_word_count)
    log(f"rnnlab tag train: {corpus.name}, {len(corpus.train)} training / {len(corpus.dev)} validation / "
        f"{len(corpus.test)} test sentences ({corpus.note or 'files'}); {len(vocabs.words)} words, "
        f"{len(vocabs.chars)} characters, tags {' '.join(vocabs.tags.itos)}; "
        f"{f'word-LM objective {cfg.word_lm_weight:g} in training' if cfg.word_lm_weight else 'no word-LM objective'} "
        f"(--word-lm-weight)\nrun folder: {run_dir} "
        f"(settings in {run_dir / CONFIG})")
    for note in corpus.repairs:
        log(note)
    lm_runs = ""
    if cfg.lm_text:   # the char-LM pair first, through the same loop (resumed or reused when it exists)
        from .lm_pretrain import forget, pretrain_pair
        if force and ckpt is None:
            forget(run_dir)
        factory = None if progress is None else (lambda: Progress(enabled=False))
        lm_runs, code = pretrain_pair(cfg, corpus.train, run_dir, log, factory)
        if code:
            return {"steps": 0, "stop": "interrupted while training the char-LM pair", "exit_code": code,
                    "elapsed_s": 0.0, "best": None, "run_dir": str(run_dir)}
    task = TaggingTask(cfg, vocabs, corpus.train, corpus.dev, lm_runs if cfg.lm_text else "")
    for split in ("dev", "test"):  # gold tags never seen in training: scored as themselves, never predicted
        vocabs.tags.unknown.clear()
        for s in getattr(corpus, split):
            vocabs.tags.encode(s.tags)
        if vocabs.tags.report_unknown():
            log(f"note ({split} split): {vocabs.tags.report_unknown()}; they count as gold entities the model "
                "cannot predict")
    vocabs.tags.unknown.clear()
    if progress is None:
        progress = Progress(loss_label=lambda loss: f"loss {loss:.3f}")
    if cfg.vectors and ckpt is None:
        task.build_model()   # reads the file once up front: a bad file fails here, before any training
        log(task.vectors_note)
    summary = run_task(task, cfg, run_dir, resume_from=ckpt, log=log, progress=progress)
    if summary["steps"] > 0 and not summary["exit_code"]:   # --propagate: measured (auto: decided) on dev
        from .settle import settle_propagation

        summary["propagate"] = settle_propagation(cfg, run_dir, corpus.dev, log)
    if corpus.test and summary["steps"] > 0 and not summary["exit_code"]:
        loaded = load_run(run_dir)
        report = evaluate_sentences(loaded, corpus.test)
        summary["test"] = report
        which = ", averaged weights" if loaded.weights == "average" else ""
        log(f"test split, best checkpoint ({loaded.path.name}{which}):\n{format_table(report)}")
    log(f"done ({summary['stop']}): {summary['steps']} steps, {summary['elapsed_s']:.0f}s of training; best "
        f"validation F1 {summary['best'] if summary['best'] is not None else float('nan'):.2f}; run in {run_dir}")
    return summary


def evaluate_sentences(loaded: LoadedRun | Sequence[LoadedRun], sentences: Sequence[Sentence],
                       batch_size: int = 128) -> EntityReport:
    """Entity P/R/F1 (conlleval) of a trained tagger (or a seed ensemble: a list of runs) on gold-tagged
    sentences (any of BIO, BIOES, IOB1)."""
    from .ensemble import predict_ensemble

    predicted = predict_ensemble([loaded] if isinstance(loaded, LoadedRun) else list(loaded), sentences, batch_size)
    predicted, _ = in_gold_scheme(sentences, predicted)
    return evaluate([s.tags for s in sentences], predicted)


def _as_sentence(item: Any) -> Sentence:
    if isinstance(item, Sentence):
        return item
    tokens = [t.text for t in tokenize(item)] if isinstance(item, str) else [str(t) for t in item]
    return Sentence(tuple(tokens), ("O",) * len(tokens))


BLOCK_CHARS = 1 << 16  # text split into sentences at a time by predict_stream


def _sentence_blocks(pieces: Iterable[str], batch_sentences: int,
                     block_chars: int = BLOCK_CHARS) -> Iterator[tuple[str, int, list]]:
    """(text, offset of text in the input, sentences of text) for bounded blocks of the input.

    Text is gathered until it holds ``block_chars`` characters; its sentences but the last
    (which may continue in the next piece) are handed on, and the last one's text is carried
    over. A sentence longer than ``max(block_chars, 16 * block_chars)`` characters is cut there."""
    carry, base, size = [], 0, 0

    def emit(text: str, final: bool) -> Iterator[tuple[str, int, list]]:
        sentences = split_sentences(text)
        keep = len(sentences) if final or not sentences else len(sentences) - 1
        if not final and keep == 0 and len(text) > 16 * block_chars:
            keep = len(sentences)  # one endless "sentence": cut it rather than hold the file
        for i in range(0, keep, batch_sentences):
            yield text, base, sentences[i:min(i + batch_sentences, keep)]
        if keep == len(sentences):
            return ""
        return text[sentences[keep][0].start:]

    for piece in pieces:
        carry.append(piece)
        size += len(piece)
        if size >= block_chars:
            text = "".join(carry)
            rest = yield from emit(text, False)
            base += len(text) - len(rest)
            carry, size = ([rest], len(rest)) if rest else ([], 0)
    text = "".join(carry)
    if text:
        yield from emit(text, True)


class Tagger:
    """``Tagger(**options)`` takes any :class:`TagConfig` field (crf, chars, scheme, hidden_size,
    word_dim, dropout, lr, batch_size, seed, vectors...)."""

    def __init__(self, **options: Any) -> None:
        known = set(TagConfig.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown Tagger options {unknown}; known: {', '.join(sorted(known))}")
        self.options = options
        self.loaded: LoadedRun | None = None
        self.members: list[LoadedRun] = []   # Tagger.load("RUN1,RUN2"): a seed ensemble (tagging.ensemble)
        self.summary: dict[str, Any] | None = None

    def fit(self, train: str | os.PathLike, dev: str | os.PathLike | None = None,
            test: str | os.PathLike | None = None, *, data_dir: str | None = None, out: str | None = None,
            force: bool = False, log: Callable[[str], None] = lambda s: None,
            progress: Progress | None = None, **loop: Any) -> "Tagger":
        """Train on a named dataset (``"ncbi-disease"``) or on CoNLL files (train, dev, test);
        ``loop`` overrides settings such as max_minutes or max_steps. The run folder is ``out``."""
        named = dev is None and not Path(train).exists()
        data = {"dataset": str(train)} if named else {"train_file": str(train), "dev_file": str(dev or ""),
                                                      "test_file": str(test or "")}
        cfg = TagConfig(**{**self.options, **loop, **data, "data_dir": data_dir or ""})
        self.summary = train_tagger(cfg, out=out, force=force, log=log,
                                    progress=progress or Progress(enabled=False))
        self.loaded = load_run(self.summary["run_dir"])
        return self

    def _ready(self) -> LoadedRun:
        if self.loaded is None:
            raise ConfigError("this Tagger is not trained: call fit() or Tagger.load(RUN) first")
        return self.loaded

    def evaluate(self, data: str | os.PathLike | Sequence[Any]) -> EntityReport:
        """Score a CoNLL file or gold sentences (:class:`Sentence`, or (tokens, tags) pairs)."""
        loaded = self._ready()
        if isinstance(data, (str, os.PathLike)):
            sentences = read_conll(data, "auto")
        else:
            sentences = [s if isinstance(s, Sentence) else Sentence(tuple(s[0]), tuple(s[1])) for s in data]
        return evaluate_sentences(self.members or [loaded], sentences)

    def predict(self, sentences: Sequence[Any]) -> list[list[str]]:
        """Tags for each sentence: a list of tokens, or a raw string (tokenised by
        :func:`rnnlab.tasks.tagging.tokenize.tokenize`, tags aligned with its tokens). A run with
        ``--propagate`` reads the list as one document, in its order."""
        from .ensemble import predict_ensemble

        loaded = self._ready()
        items = [_as_sentence(s) for s in sentences]
        keep = [i for i, s in enumerate(items) if len(s)]
        tags = predict_ensemble(self.members or [loaded], [items[i] for i in keep])
        out: list[list[str]] = [[] for _ in items]
        for i, t in zip(keep, tags):
            out[i] = t
        return out

    def predict_text(self, text: str) -> list[dict[str, Any]]:
        """Sentences of plain text with their tokens (offsets), tags and entity spans."""
        return list(self.predict_stream([text]))

    def predict_stream(self, pieces: Iterable[str], batch_sentences: int = 256) -> Iterator[dict[str, Any]]:
        """:meth:`predict_text` over text arriving in pieces (e.g. the lines of a file), one
        sentence dict at a time: at most ``batch_sentences`` sentences (and one unfinished
        sentence of text) are held, so memory does not grow with the input. Offsets count
        characters from the start of the whole input. A run trained with ``--context N`` reads N
        sentences on each side across blocks too (each block is tagged once the next one is read);
        ``--propagate`` reads each block as a document of its own (at most ``batch_sentences``)."""
        n = max([m.context for m in self.members or [self._ready()]])
        blocks = _sentence_blocks(pieces, batch_sentences, BLOCK_CHARS)
        if n == 0:
            for text, base, sentences in blocks:
                yield from self._spans(text, base, sentences, self.predict([[t.text for t in s] for s in sentences]))
            return
        left: list = []
        held: list = []   # blocks read but not tagged: the first waits until n sentences follow it

        def tag_first() -> Iterator[dict[str, Any]]:
            nonlocal left
            text, base, sentences = held.pop(0)
            own = [[t.text for t in s] for s in sentences]
            right = [[t.text for t in s] for b in held for s in b[2]][:n]
            tags = self.predict(left + own + right)[len(left):len(left) + len(own)]
            yield from self._spans(text, base, sentences, tags)
            left = (left + own)[-n:]

        for block in blocks:
            held.append(block)
            while len(held) > 1 and sum(len(b[2]) for b in held[1:]) >= n:
                yield from tag_first()
        while held:
            yield from tag_first()

    @staticmethod
    def _spans(text: str, base: int, sentences: list, tags: list) -> Iterator[dict[str, Any]]:
        for toks, tg in zip(sentences, tags):
            spans = [{"type": c.type, "start": base + toks[c.start].start, "end": base + toks[c.end - 1].end,
                      "text": text[toks[c.start].start:toks[c.end - 1].end]} for c in chunks(tg)]
            yield {"tokens": [{"text": t.text, "start": base + t.start, "end": base + t.end, "tag": g}
                              for t, g in zip(toks, tg)], "entities": spans}

    def save(self, path: str | os.PathLike) -> Path:
        """Copy the trained checkpoint (weights, sizes, vocabularies) to ``path``."""
        loaded = self._ready()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(loaded.path, path)
        return path

    @classmethod
    def load(cls, run_or_path: str | os.PathLike, propagate: str | None = None,
             propagate_confidence: float | None = None, propagate_support: float | None = None) -> "Tagger":
        """A trained run (``"RUN1,RUN2,..."``: a seed ensemble); ``propagate`` (off, N, doc) replaces
        the run's ``--propagate`` window for this tagger's predictions, ``propagate_confidence`` and
        ``propagate_support`` (0 to 1) the thresholds of its confidence gate."""
        from .ensemble import load_members

        tagger = cls()
        tagger.members = load_members(str(run_or_path), propagate, propagate_confidence,
                                      propagate_support)   # "RUN1,RUN2,...": a seed ensemble
        tagger.loaded = tagger.members[0]
        tagger.options = dict(tagger.loaded.config)
        return tagger
