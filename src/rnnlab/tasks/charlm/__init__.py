"""The character language model task: batches of streams, carried state, bits per character;
:func:`train` (:mod:`.api`) is the API behind ``rnnlab train``."""
from .api import prepare, train
from .task import CharLMTask, evaluate, model_config

__all__ = ["CharLMTask", "evaluate", "model_config", "prepare", "train"]
