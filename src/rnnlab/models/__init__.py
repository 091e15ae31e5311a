"""Complete models built from the engine's layers."""
from .charlm import CharRNN, ModelConfig

__all__ = ["CharRNN", "ModelConfig"]
