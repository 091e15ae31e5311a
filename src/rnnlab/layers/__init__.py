"""Layers: token inputs, affine, dropout, losses, and the recurrent time loop."""
from .bidirectional import Bidirectional
from .crf import CRF, Constraints  # noqa: F401  (linear-chain CRF)
from .dropout import Dropout
from .embedding import Embedding, OneHot
from .gaussian_nll import GaussianNLL, gaussian_nll  # noqa: F401  (anomaly detection: LSTM-VAE)
from .linear import Linear
from .losses import MSELoss, SoftmaxCrossEntropy, log_softmax
from .latent import GaussianLatent, RepeatVector  # noqa: F401  (anomaly detection: LSTM-VAE)
from .recurrent import Recurrent
from .stack import RNNStack

__all__ = ["Bidirectional", "Dropout", "Embedding", "Linear", "MSELoss", "OneHot", "RNNStack",
           "Recurrent", "SoftmaxCrossEntropy", "log_softmax"]


def __getattr__(name: str):
    """``rnnlab.layers.tag_constraints`` moved to :mod:`rnnlab.tasks.tagging.schemes` (the scheme
    rules belong to the tagging task; layers know nothing of tasks). Kept working, with a warning."""
    if name == "tag_constraints":
        import importlib
        import warnings

        warnings.warn("rnnlab.layers.tag_constraints moved to rnnlab.tasks.tagging.schemes.tag_constraints",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module("rnnlab.tasks.tagging.schemes").tag_constraints
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
