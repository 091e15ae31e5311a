"""Sequence tagging: CoNLL data, BIO/BIOES schemes, entity metrics, BiLSTM-CRF tagger.

``from rnnlab.tasks.tagging import Tagger`` (see :mod:`rnnlab.tasks.tagging.api`).
"""
from .api import Tagger, train_tagger  # noqa: F401
from .task import TagConfig, TaggingTask, load_run  # noqa: F401

__all__ = ["TagConfig", "Tagger", "TaggingTask", "load_run", "train_tagger"]
