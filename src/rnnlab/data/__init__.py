"""Text data for the character-level language model: corpora, vocabularies, encoded ids, batches.

(Time series live in :mod:`rnnlab.timeseries`; ``data.series`` and ``data.windows`` are aliases kept
for old imports.)

Typical use::

    corpus = EncodedCorpus.from_source("tinyshakespeare", data_dir=args.data_dir)
    train, val, test = corpus.split((0.9, 0.05, 0.05))
    batches = StreamBatcher(train, batch_size=64, seq_len=100)
    for batch in batches.epoch_batches():   # batch.x, batch.y: (B, T) int64
        ...
    for batch in eval_batches(val, 64, 100):
        ...

Modules: :mod:`.corpus` (reading text, the default corpus), :mod:`.datasets`
(named downloadable datasets), :mod:`.vocab`, :mod:`.encoded` (cached,
memory-mapped id arrays), :mod:`.batching` (splits and TBPTT batches),
:mod:`.atomic` (crash-safe file replacement).
"""
from ..io.atomic import atomic_write
from .batching import DEFAULT_FRACTIONS, Batch, Splits, StreamBatcher, eval_batches, split_ids
from .corpus import (
    CorpusSource,
    CorpusText,
    default_corpus,
    default_corpus_fingerprint,
    default_corpus_source,
    load_text,
    resolve_corpus,
)
from .datasets import (DATA_ENV, DATASETS, FILE_SETS, DatasetInfo, FileSet, cache_dir, resolve_dataset,
                       resolve_files)
from .encoded import EncodedCorpus
from .vocab import Vocab

__all__ = [
    "DATASETS", "DATA_ENV", "FILE_SETS", "FileSet", "resolve_files", "DEFAULT_FRACTIONS", "Batch", "CorpusSource", "CorpusText",
    "DatasetInfo", "EncodedCorpus", "Splits", "StreamBatcher", "Vocab", "atomic_write",
    "cache_dir", "default_corpus", "default_corpus_fingerprint", "default_corpus_source",
    "eval_batches", "load_text", "resolve_corpus", "resolve_dataset", "split_ids",
]
