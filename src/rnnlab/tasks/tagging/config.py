"""Every setting of a tagging run, with its default and the help ``rnnlab tag train`` shows (field
metadata read by :mod:`rnnlab.commands.configflags`; the loop's own settings, from
:class:`~rnnlab.train.loopconfig.LoopConfig`, keep the loop's help)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...train.loopconfig import LoopConfig, validate_loop
from .consistency import AUTO_WINDOW, parse_window
from .schemes import normalize_scheme

WORD_LM_WEIGHT = 0.03   # the default weight of the word-LM objective (--word-lm-weight)
# defaults that changed after runs were first saved: a saved run without them ran with them off
OFF_BEFORE = {"word_lm_weight": 0.0, "propagate": "off", "propagate_confidence": 0.0, "propagate_support": 0.0}


def _opt(default: Any, help: str = "", **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta} if help else meta)


@dataclass
class TagConfig(LoopConfig):
    """Every setting of a tagging run (the loop's own fields first, from LoopConfig)."""
    dataset: str = _opt("", cli=False)           # ncbi-disease, conll2000; or the files below
    train_file: str = _opt("", cli=False)        # (their flags: DATASET, --train, --dev, --test, --data-dir)
    dev_file: str = _opt("", cli=False)
    test_file: str = _opt("", cli=False)
    data_dir: str = _opt("", cli=False)
    scheme: str = _opt("BIOES", "tag scheme the model predicts: BIO or BIOES (the data's tags are converted)")
    crf: bool = _opt(True, "a linear-chain CRF output layer (Viterbi decoding); --no-crf: per-token softmax")
    chars: bool = _opt(True, "a character-level BiLSTM word encoder; --no-chars: word and case embeddings only",
                       aliases=("--char",))
    word_dim: int = _opt(100, "word embedding size (set by --vectors' width when given)")
    case_dim: int = _opt(8, "case/shape feature embedding size")
    feature_dim: int = _opt(16, "embedding size of each extra feature column (e.g. POS in conll2000)")
    char_dim: int = _opt(25, "character embedding size")
    char_hidden: int = _opt(25, "hidden units per direction of the character BiLSTM")
    hidden_size: int = _opt(100, "hidden units per direction of the word BiLSTM")
    num_layers: int = _opt(1, "stacked word BiLSTM layers")
    dropout: float = _opt(0.5, "dropout on the BiLSTM's input and output (and between layers)")
    word_unk: float = _opt(0.5, "probability of replacing a training word seen once by the unknown word")
    min_word_count: int = _opt(1, "words seen fewer times in training are unknown")
    max_word_len: int = _opt(30, "characters of a word read by the character BiLSTM")
    vectors: str = _opt("", "pretrained word vectors: a word2vec/GloVe text file (none are shipped)")
    lm: str = _opt("", "FWD_RUN,BWD_RUN: two char-LM runs of `rnnlab train` (the second with --reverse) whose "
                       "states at each word's last (forward) and first (backward) character are added to the word "
                       "features (frozen)")
    lm_text: str = _opt("", "FILE[,FILE...]: train the --lm pair first, through the same loop, on the training "
                            "split's sentences plus these unlabelled text files ('-': the training sentences "
                            "alone); the LMs live in RUN/lm-fwd and RUN/lm-bwd")
    lm_minutes: float = _opt(10.0, "with --lm-text: training budget of each char-LM, in minutes")
    lm_steps: int = _opt(0, "with --lm-text: stop each char-LM after this many steps; 0: no limit")
    lm_hidden_size: int = _opt(256, "with --lm-text: hidden units of each (one-layer LSTM) char-LM")
    # 0.03: chosen on the dev sets of NCBI-disease and CoNLL-2000 (docs/tagging.md, "The word-LM objective of
    # Rei (2017)"); None until validate(), which makes it 0 under --context (the word LM would predict the
    # context's words) and WORD_LM_WEIGHT otherwise, so that the saved run holds the number it trained with
    word_lm_weight: float | None = _opt(None, "weight gamma of the word-LM objective (Rei 2017), training only: the "
                                              "word BiLSTM's forward half predicts the next word, its backward half "
                                              "the previous one; 0: off (Rei used 0.1) (default: 0.03; 0 with "
                                              "--context)", type=float, check="non_negative")
    word_lm_vocab: int = _opt(7500, "with --word-lm-weight: the word LM predicts the N most frequent training "
                                    "words, and one class for every other word")
    word_lm_hidden: int = _opt(50, "with --word-lm-weight: units of the word LM's tanh layer (per direction)")
    context: int = _opt(0, "cross-sentence context: the BiLSTMs also read N neighbouring sentences on each side "
                           "(same file or split, same document: never across -DOCSTART-); emissions, loss and "
                           "decoding cover the sentence alone; prediction reads the same context; 0: off")
    context_max_len: int = _opt(256, "with --context: tokens of a sentence with its context at most (the context "
                                     "is cut, never the sentence)")
    propagate: str = _opt("auto", "label consistency after decoding (docs/tagging.md, 'Label consistency'): a string "
                                 "tagged as an entity is also tagged where it occurs untagged within N sentences on "
                                 "each side (same document); N, doc (the whole document or file), off, or auto "
                                 f"({AUTO_WINDOW} sentences, kept only if it raises the best checkpoint's validation "
                                 "F1, decided at the end of training); prediction only, the training is the same",
                          metavar="off|auto|N|doc")
    propagate_abbreviations: bool = _opt(True, "with --propagate: an abbreviation defined as 'ENTITY ( SF )' "
                                               "(Schwartz & Hearst 2003) is tagged like the entity where it recurs")
    propagate_vote: bool = _opt(True, "with --propagate: a string is tagged only where the window tagged it at least "
                                      "as often as it left it untagged (abbreviations excepted)")
    # support 0.001 (and confidence 0): chosen on the dev sets of NCBI-disease and CoNLL-2000 (docs/tagging.md,
    # "The confidence gate"); a run saved before the options had them at 0 (OFF_BEFORE)
    propagate_confidence: float = _opt(0.0, "with --propagate: a predicted entity is spread only if the model's "
                                            "posterior marginal of its tags (CRF forward-backward) is at least P at "
                                            "each of its tokens; 0: every entity", metavar="P", check="probability")
    propagate_support: float = _opt(0.001, "with --propagate: a recurrence is tagged only where the model's posterior "
                                         "marginal of an entity tag (1 - p(O)) is at least P at each of its tokens; "
                                         "0: wherever it recurs", metavar="P", check="probability")
    # batch 8 over 10,000 steps: chosen on the dev sets of NCBI-disease and CoNLL-2000 (docs/tagging.md,
    # "Batch 8 over 10,000 steps"); the 30-minute budget stays as a cap for slower machines
    batch_size: int = _opt(8, "sentences per training batch")
    eval_batch: int = _opt(128, "sentences per batch when evaluating")
    # the loop's settings, tagger defaults
    lr: float = 2e-3
    clip: float = 5.0
    schedule: str = "auto"
    max_steps: int = _opt(10000, "stop after this many steps (batches), the cosine schedule annealing over "
                                 "them; 0: no limit (the schedule then anneals over --max-minutes)")
    max_minutes: float = _opt(30.0, "training-time budget in minutes (evaluation excluded); 0: no limit")
    eval_every: int = _opt(250, "evaluate entity F1 on the validation split every N steps")
    log_every: int = 25

    def validate(self) -> "TagConfig":
        validate_loop(self)
        if bool(self.dataset) == bool(self.train_file):
            raise ConfigError("name a dataset (ncbi-disease, conll2000) or give --train FILE (and --dev FILE), "
                              "not both")
        if self.train_file and not self.dev_file:
            raise ConfigError("--train needs --dev FILE: the validation data that picks the best checkpoint")
        self.scheme = normalize_scheme(self.scheme)
        if self.scheme not in ("BIO", "BIOES"):
            raise ConfigError(f"--scheme must be BIO or BIOES, got {self.scheme}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.word_unk <= 1.0:
            raise ConfigError("--dropout must be in [0, 1) and --word-unk in [0, 1]")
        for name in ("word_dim", "case_dim", "feature_dim", "char_dim", "char_hidden", "hidden_size",
                     "num_layers", "batch_size", "eval_batch", "max_word_len", "min_word_count", "word_lm_vocab",
                     "word_lm_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        self.word_lm_weight = self.word_lm_gamma()
        if not (self.word_lm_weight >= 0.0 and np.isfinite(self.word_lm_weight)):
            raise ConfigError(f"--word-lm-weight must be a finite number >= 0, got {self.word_lm_weight}")
        if self.lm and len(self.lm.split(",")) != 2:
            raise ConfigError(f"--lm takes two char-LM runs, FWD_RUN,BWD_RUN (the second trained with "
                              f"`rnnlab train --reverse`), got {self.lm!r}")
        if self.context < 0 or self.context_max_len < 1:
            raise ConfigError("--context needs N >= 0 sentences and --context-max-len >= 1 tokens")
        if self.context and self.word_lm_weight > 0:
            raise ConfigError("--context and --word-lm-weight together are not supported (the word LM would "
                              "predict the context's words); use one of them")
        if str(self.propagate).strip().lower() != "auto":
            parse_window(self.propagate)   # one line naming --propagate
        for name in ("propagate_confidence", "propagate_support"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a number from 0 to 1, got {getattr(self, name)}")
        if self.lm and self.lm_text:
            raise ConfigError("give --lm FWD_RUN,BWD_RUN (trained LMs) or --lm-text FILE (train them here), not both")
        if self.lm_text and (self.lm_hidden_size < 1 or self.lm_minutes < 0 or self.lm_steps < 0
                             or not (self.lm_minutes or self.lm_steps)):
            raise ConfigError("--lm-text needs --lm-hidden-size >= 1 and a budget: --lm-minutes > 0 or --lm-steps > 0")
        return self

    def word_lm_gamma(self) -> float:
        """The word-LM objective's weight this run trains with: the given one, else the default
        (``WORD_LM_WEIGHT``; 0 with ``--context``)."""
        if self.word_lm_weight is not None:
            return self.word_lm_weight
        return 0.0 if self.context else WORD_LM_WEIGHT

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TagConfig":
        """A saved run's settings. A setting the run was saved without predates its option, so the run
        had it off (``OFF_BEFORE``), not today's default: no word LM, no label-consistency pass."""
        names = {f.name for f in fields(cls)}
        return cls(**{**OFF_BEFORE, **{k: v for k, v in d.items() if k in names}})
