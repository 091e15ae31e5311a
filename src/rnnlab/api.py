"""The Python API: ``CharLM`` and the loading/scoring helpers the CLI commands share.

    lm = CharLM(hidden_size=128, max_steps=500).fit("input.txt", out="runs/demo")
    print(lm.sample("The ", length=300, temperature=0.8, seed=1))
    print(lm.evaluate(open("held_out.txt").read())["bits_per_char"])
    lm.save("model.npz");  lm = CharLM.load("runs/demo")

Every method is a thin layer over the same functions the ``rnnlab`` commands
call (training, :mod:`rnnlab.generate`, the checkpoint format), so a model
behaves the same from Python and from the shell.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

from . import generate
from .checkpoint import load_checkpoint, save_checkpoint
from .data import DATASETS, EncodedCorpus, Vocab, load_text, split_ids
from .errors import ConfigError, DataError
from .models import CharRNN, ModelConfig
from .tasks.charlm.config import TrainConfig
from .train.runs import BEST, LAST, find_checkpoint, prepare_run_dir
from .tasks.charlm.packing import pack_model, unpack_model

LN2 = math.log(2.0)
CHECKPOINTS = {"best": BEST, "last": LAST}
SPLITS = ("train", "val", "test")


# -- loading and saving ------------------------------------------------------------------
class LoadedRun(NamedTuple):
    model: CharRNN
    vocab: Vocab
    meta: dict      # the checkpoint's metadata (its "config" is the training config, when known)
    path: Path      # the checkpoint file that was read


def load_run(run: str | os.PathLike, checkpoint: str = "best") -> LoadedRun:
    """A run folder (or ``runs/latest``, or a checkpoint file) -> its model, in eval mode."""
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    path = find_checkpoint(run, prefer=CHECKPOINTS[checkpoint])
    arrays, meta = load_checkpoint(path)
    model, vocab = unpack_model(arrays, meta, str(path))
    return LoadedRun(model.eval(), vocab, meta, path)


def train_config_for(model_config: ModelConfig) -> TrainConfig:
    """A training config whose model settings are ``model_config``'s (for models without one)."""
    keys = {f.name for f in dataclasses.fields(TrainConfig)}
    same = {k: v for k, v in model_config.to_dict().items() if k in keys}
    return TrainConfig(**same)


def save_model(path: str | os.PathLike, model: CharRNN, vocab: Vocab, config: dict | None = None) -> Path:
    """Write an rnnlab checkpoint (atomically) that ``load_run`` and every command can read."""
    arrays, meta = pack_model(model, vocab)
    if config is not None:
        meta["config"] = config
    return save_checkpoint(path, arrays, meta)


# -- scoring ----------------------------------------------------------------------------------
def encode_text(vocab: Vocab, text: str, name: str = "text") -> np.ndarray:
    """Ids of ``text``; a DataError names the characters the model never saw."""
    try:
        return vocab.encode(text)
    except DataError as exc:
        raise DataError(f"{name}: {exc}") from None


def score_ids(model: CharRNN, ids: np.ndarray, batch_size: int = 1, seq_len: int = 100, *,
              shrink: bool = True) -> dict[str, float]:
    """Cross-entropy of every character given the ones before it (all ``len(ids) - 1`` of them).

    The ids are cut into ``batch_size`` streams scored in parallel, each from
    a zero state, in chunks of ``seq_len`` with the state carried between
    chunks: the layout of the trainer's validation (so a run's own batch size
    reproduces its logged numbers, returned as ``stream_nats_per_char``); the
    characters left over after the streams are scored too, continuing the
    last stream (:mod:`rnnlab.scoring`). ``batch_size=1`` scores the text as
    one stream. With ``shrink`` there are fewer streams when needed for each
    to hold at least ``seq_len`` characters (a tiny text is one stream).
    """
    from .scoring import score_ids as score

    if len(ids) < 2:
        raise DataError(f"need at least 2 characters to score (one to predict from), got {len(ids)}")
    return score(model, ids, batch_size, seq_len, shrink=shrink)


def split_of_run(meta: dict, split: str, vocab: Vocab) -> np.ndarray:
    """The ids of a run's own train/val/test split, from the corpus settings saved with it."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        raise ConfigError("this checkpoint has no training config (an imported model?); score a file with --text")
    corpus = EncodedCorpus.from_source(cfg.get("corpus"), data_dir=cfg.get("data_dir"))
    if corpus.vocab != vocab:
        raise DataError(f"the corpus {corpus.name} no longer has the vocabulary the model was trained "
                        "with (was it changed?); score it with --text instead")
    return split_ids(corpus.ids, cfg.get("split", (0.9, 0.05, 0.05)))[SPLITS.index(split)]


def _looks_like_a_path(text: str) -> bool:
    word = text.strip()
    return bool(word) and not any(ch.isspace() for ch in word) and len(word) < 256 \
        and ("/" in word or "\\" in word or Path(word).suffix != "" or Path(word).expanduser().exists())


# -- the object API ----------------------------------------------------------------------------
def _with_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    # from_dict names unknown keys in a ConfigError, where dataclasses.replace raises a bare TypeError
    return TrainConfig.from_dict({**config.to_dict(), **overrides}).validate()


def _corpus_spec(source: str | os.PathLike | None, text: str | None, run_dir: Path) -> str | None:
    """A corpus spec for the trainer; raw ``text`` is written into the run folder first."""
    if text is None and isinstance(source, str) and ("\n" in source or len(source) >= 4096):
        text, source = source, None   # unmistakably text, not a name (kept for older callers)
    if text is not None:
        if not text:
            raise DataError("the training text is empty")
        path = run_dir / "corpus.txt"
        path.write_text(text, encoding="utf-8")
        return str(path.resolve())
    if source is None:
        return None
    if isinstance(source, str) and not source.strip():
        raise DataError("the training source is empty: pass a path, a dataset name, or the text itself as text=...")
    if isinstance(source, str) and source not in DATASETS and not Path(source).expanduser().exists():
        raise DataError(f"no such file, folder or dataset: {source!r} (datasets: {', '.join(DATASETS)}); "
                        "to train on a string of text, pass text=...")
    return str(source)


class CharLM:
    """A character-level language model: train, sample, evaluate, save and load.

    ``CharLM(**overrides)`` takes any :class:`~rnnlab.tasks.charlm.config.TrainConfig`
    field (``cell``, ``hidden_size``, ``max_steps``...).
    """

    def __init__(self, **overrides: Any) -> None:
        self.config = _with_overrides(TrainConfig(), overrides)
        self._model: CharRNN | None = None
        self._vocab: Vocab | None = None
        self.run_dir: Path | None = None

    # -- state ------------------------------------------------------------------------------
    @property
    def model(self) -> CharRNN:
        if self._model is None:
            raise ConfigError("this CharLM has no model yet: call fit() or CharLM.load()")
        return self._model

    @property
    def vocab(self) -> Vocab:
        self.model  # noqa: B018 - same error when untrained
        return self._vocab  # type: ignore[return-value]

    def __repr__(self) -> str:
        c = self.config
        state = f"{self._model.num_parameters():,} parameters" if self._model is not None else "untrained"
        return f"CharLM({c.cell}, {c.num_layers}x{c.hidden_size}, {state})"

    # -- training ---------------------------------------------------------------------------
    def fit(self, source: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *,
            text: str | None = None, verbose: bool = False, progress: bool = True, force: bool = False,
            **overrides: Any) -> "CharLM":
        """Train a new model; returns self.

        ``source``: a file or folder (a ``Path``, or a string naming an existing
        one), a dataset name, or None for the default corpus; ``text=``: the
        training text itself (saved as ``corpus.txt`` in the run folder). A
        one-line string that is neither an existing path nor a dataset is an
        error (a misspelt file name), not text to train on. ``out``: the run
        folder (default ``runs/<timestamp>``; one holding a run is refused unless
        ``force``). ``progress``: a progress bar on stderr; ``verbose``: also
        the log lines. Keyword overrides change the config first.
        """
        from .tasks.charlm import train
        from .train import Progress

        if text is not None and source is not None:
            raise ConfigError("fit() takes a source (path or dataset name) or text=, not both")
        cfg = _with_overrides(self.config, overrides)
        run_dir = prepare_run_dir(str(out) if out is not None else None, force=force)
        cfg = cfg.replace(corpus=_corpus_spec(source, text, run_dir))
        bar = Progress(enabled=progress, loss_label=lambda loss: f"loss {loss:.3f}  {loss / LN2:.3f} bits/char")
        train(cfg, out=str(run_dir), log=print if verbose else (lambda *_: None), progress=bar, force=True)
        loaded = load_run(run_dir)
        self.config, self.run_dir = cfg, run_dir
        self._model, self._vocab = loaded.model, loaded.vocab
        return self

    # -- using the model -----------------------------------------------------------------------
    def stream(self, prime: str = "", length: int = 200, temperature: float = 1.0, top_k: int = 0,
               seed: int | None = None, argmax: bool = False, precision: str = "fp32") -> Iterator[str]:
        """Generated characters one at a time (for printing as they come); ``precision`` as in
        :meth:`sample`."""
        from .tasks.charlm.config import check_precision_cell

        check_precision_cell(precision, self.model.config.cell)
        return generate.stream(self.model, self.vocab, prime, length, temperature=temperature, top_k=top_k,
                               seed=seed, argmax=argmax, precision=precision)

    def sample(self, prime: str = "", length: int = 200, temperature: float = 1.0, top_k: int = 0,
               seed: int | None = None, argmax: bool = False, beam: int = 0, precision: str = "fp32") -> str:
        """``length`` characters continuing ``prime`` (not repeated in the result).

        ``beam > 0`` runs beam search of that width instead of sampling. ``precision="bf16"``: the
        products in bf16 with fp32 accumulation (as ``rnnlab sample --precision bf16``; refused with
        :class:`ConfigError` where the CPU or oneMKL cannot run it).
        """
        if beam:
            from .tasks.charlm.config import check_precision_cell

            check_precision_cell(precision, self.model.config.cell)
            return generate.beam_search(self.model, self.vocab, prime, length, beam, seed=seed,
                                        precision=precision).text
        return "".join(self.stream(prime, length, temperature, top_k, seed, argmax, precision))

    def evaluate(self, text: str | os.PathLike | None = None, *, path: str | os.PathLike | None = None,
                 batch_size: int | None = None, seq_len: int | None = None,
                 precision: str = "fp32") -> dict[str, float]:
        """Bits per character, perplexity and nats per character of ``text=`` or of the file ``path=``.

        ``precision="bf16"``: the matrix products in bf16 with fp32 accumulation (as ``rnnlab eval
        --precision bf16``; refused with :class:`ConfigError` where the CPU or oneMKL cannot run it).

        A positional ``Path`` is read as a file; a positional string is text,
        except that a one-word string that looks like a file name
        (``"input.txt"``) is refused as ambiguous: say ``path=`` or ``text=``.
        Defaults to the training batch size and sequence length (see :func:`score_ids`).
        """
        if isinstance(text, os.PathLike):
            text, path = None, text
        if (text is None) == (path is None):
            raise ConfigError("evaluate() needs exactly one of text=... or path=...")
        if text is not None and _looks_like_a_path(text):
            raise ConfigError(f"evaluate({text!r}): is this a file name? pass path={text!r} to score the file, "
                              f"or text={text!r} to score the string itself")
        if path is not None:
            text = load_text(path)
        from .blas import precision as products
        from .tasks.charlm.config import check_precision_cell

        check_precision_cell(precision, self.model.config.cell)
        ids = encode_text(self.vocab, text)
        with products.use(precision):
            return score_ids(self.model, ids, batch_size or self.config.batch_size, seq_len or self.config.seq_len)

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write an rnnlab checkpoint (``.npz``; a folder gets ``best.npz``); returns its path."""
        path = Path(path)
        if path.is_dir():
            path = path / BEST
        return save_model(path, self.model, self.vocab, self.config.to_dict())

    @classmethod
    def load(cls, path_or_run: str | os.PathLike, checkpoint: str = "best") -> "CharLM":
        """A CharLM from a checkpoint file or a run folder (its best checkpoint by default)."""
        loaded = load_run(path_or_run, checkpoint)
        lm = cls.__new__(cls)
        saved = loaded.meta.get("config")
        lm.config = TrainConfig.from_dict(saved) if isinstance(saved, dict) else train_config_for(loaded.model.config)
        lm._model, lm._vocab = loaded.model, loaded.vocab
        lm.run_dir = loaded.path.parent
        return lm
