"""Complete models built from the engine's layers: the char-LM :class:`CharRNN` and the
sequence-to-one / sequence-to-many :class:`SeqModel` shared by the studies, forecasting and anomaly
detection. Each registers its gradient-check spec beside its code."""
from .charlm import CharRNN, ModelConfig
from .seqmodel import SeqModel
from . import specs  # noqa: F401,E402  (registers CharRNN's gradcheck spec)

__all__ = ["CharRNN", "ModelConfig", "SeqModel"]
