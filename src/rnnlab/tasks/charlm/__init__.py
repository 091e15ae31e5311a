"""The character language model task: batches of streams, carried state, bits per character."""
from .task import CharLMTask, evaluate, model_config

__all__ = ["CharLMTask", "evaluate", "model_config"]
