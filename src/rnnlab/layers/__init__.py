"""Layers: token inputs, affine, dropout, losses, and the recurrent time loop."""
from .bidirectional import Bidirectional
from .crf import CRF, Constraints, tag_constraints  # noqa: F401  (linear-chain CRF)
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
