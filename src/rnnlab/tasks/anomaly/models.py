"""The detectors' networks: an LSTM forecaster, an LSTM encoder-decoder and an LSTM-VAE.

* ``pred`` (Malhotra et al. 2015): :class:`rnnlab.models.seqmodel.SeqModel`, an LSTM over a
  window of the past and a Linear on its last step giving the next value(s).
* ``encdec`` (EncDec-AD, Malhotra et al. 2016), :class:`EncDecAD`::

      (h_e, c_e) = LSTM_enc(x_1..x_L)                    final state of the encoder
      h_d        = LSTM_dec(RepeatVector_L(h_e); state0 = (h_e, c_e))
      r_{L+1-t}  = h_d[t] W + b                          the window reconstructed in reverse order

  ``forward(x) -> (r (B, L), cache)``: r[:, t] reconstructs the value channel x[:, t, 0].
* ``vae`` (LSTM-VAE), :class:`LSTMVAE`::

      h_e       = LSTM_enc(x_1..x_L)[last step]
      z, KL     = GaussianLatent(h_e)                    z = mu + exp(lv/2) eps
      h_d       = LSTM_dec(RepeatVector_L(z))
      [m, u]    = h_d W + b;   v = V tanh(u / V)         mean and log-variance (|v| < V = 5)

  ``forward(x, eps=None) -> ((m, v, KL), cache)``, m and v (B, L) for the value channel.

Backward passes run the same graph in reverse; every model has a gradcheck spec registered at the
end of this file (as ``rnnlab.models.seqmodel`` does).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...models.seqmodel import SeqModel
from ...layers import GaussianLatent, Linear, RepeatVector, RNNStack
from ...init import child_seeds
from ...module import DEFAULT_DTYPE, Module
from .spec import DetectorSpec

LOGVAR_MAX = 5.0
KINDS = ("pred", "encdec", "vae")


class EncDecCache(NamedTuple):
    enc: Any
    rep: Any
    dec: Any
    out: Any


class EncDecAD(Module):
    """LSTM encoder-decoder reconstructing a window: ``forward(x (B, L, F)) -> (r (B, L), cache)``."""

    def __init__(self, input_size: int, hidden_size: int, window: int, *, seed: int = 0,
                 dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        s = child_seeds(seed, 3)
        self.enc = self.add_child("enc", RNNStack("lstm", input_size, hidden_size, seed=s[0], dtype=dtype))
        self.rep = self.add_child("rep", RepeatVector(window))
        self.dec = self.add_child("dec", RNNStack("lstm", hidden_size, hidden_size, seed=s[1], dtype=dtype))
        self.out = self.add_child("out", Linear(hidden_size, 1, seed=s[2], dtype=dtype))

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, EncDecCache]:
        (_, se), ec = self.enc.forward(x)
        r_in, rc = self.rep.forward(se[0][0])
        (hd, _), dc = self.dec.forward(r_in, se)
        y, oc = self.out.forward(hd)
        return y[:, ::-1, 0], EncDecCache(ec, rc, dc, oc)

    def backward(self, drec: np.ndarray, cache: EncDecCache) -> np.ndarray:
        dy = np.zeros(drec.shape + (1,), dtype=drec.dtype)
        dy[:, ::-1, 0] = drec
        dhd = self.out.backward(dy, cache.out)
        dr_in, dse = self.dec.backward((dhd, None), cache.dec)
        dh, dc = dse[0]
        dh = dh + self.rep.backward(dr_in, cache.rep)
        dx, _ = self.enc.backward((None, [(dh, dc)]), cache.enc)
        return dx


class VAECache(NamedTuple):
    enc: Any
    lat: Any
    rep: Any
    dec: Any
    out: Any
    tanh_u: np.ndarray


class LSTMVAE(Module):
    """LSTM-VAE over windows: ``forward(x (B, L, F), eps=None) -> ((mean, logvar, kl), cache)``."""

    def __init__(self, input_size: int, hidden_size: int, window: int, latent_size: int = 8, *,
                 seed: int = 0, dtype: Any = DEFAULT_DTYPE) -> None:
        super().__init__()
        s = child_seeds(seed, 4)
        self.enc = self.add_child("enc", RNNStack("lstm", input_size, hidden_size, seed=s[0], dtype=dtype))
        self.latent = self.add_child("latent", GaussianLatent(hidden_size, latent_size, seed=s[1], dtype=dtype))
        self.rep = self.add_child("rep", RepeatVector(window))
        self.dec = self.add_child("dec", RNNStack("lstm", latent_size, hidden_size, seed=s[2], dtype=dtype))
        self.out = self.add_child("out", Linear(hidden_size, 2, seed=s[3], dtype=dtype))

    def forward(self, x: np.ndarray, eps: np.ndarray | None = None) -> tuple[tuple, VAECache]:
        (_, se), ec = self.enc.forward(x)
        (z, kl), lc = self.latent.forward(se[0][0], eps)
        r_in, rc = self.rep.forward(z)
        (hd, _), dc = self.dec.forward(r_in)
        o, oc = self.out.forward(hd)
        tanh_u = np.tanh(o[..., 1] / LOGVAR_MAX)
        return (o[..., 0], LOGVAR_MAX * tanh_u, kl), VAECache(ec, lc, rc, dc, oc, tanh_u)

    def backward(self, dout: tuple, cache: VAECache) -> np.ndarray:
        dmean, dlogvar, dkl = dout
        do = np.zeros(cache.tanh_u.shape + (2,), dtype=cache.tanh_u.dtype)
        if dmean is not None:
            do[..., 0] = dmean
        if dlogvar is not None:
            do[..., 1] = dlogvar * (1.0 - cache.tanh_u * cache.tanh_u)
        dhd = self.out.backward(do, cache.out)
        dr_in, _ = self.dec.backward((dhd, None), cache.dec)
        dz = self.rep.backward(dr_in, cache.rep)
        dh = self.latent.backward((dz, dkl), cache.lat)
        dx, _ = self.enc.backward((None, [(dh, np.zeros_like(dh))]), cache.enc)
        return dx


def make_model(spec: DetectorSpec | dict) -> Module:
    """The network of a detector from its spec (:class:`~rnnlab.tasks.anomaly.spec.DetectorSpec`, or the
    dict of its fields that checkpoints hold)."""
    s = DetectorSpec.from_dict(spec)
    if s.detector == "pred":
        return SeqModel("lstm", s.input_size, s.hidden_size, s.horizon, seed=s.seed)
    if s.detector == "encdec":
        return EncDecAD(s.input_size, s.hidden_size, s.window, seed=s.seed)
    if s.detector == "vae":
        return LSTMVAE(s.input_size, s.hidden_size, s.window, s.latent_size, seed=s.seed)
    raise ValueError(f"unknown detector {s.detector!r}; choose from {', '.join(KINDS)}")


def _gradcheck_cases(rng: np.random.Generator) -> list:
    """EncDecAD and LSTMVAE end to end: the loss reaches x through the decoder, the (repeated)
    encoder state and, for the VAE, the reparameterised sample and the KL term."""
    from ...gradcheck import input_case, randomize

    cases = []
    for label, B, L in (("B=3,L=4", 3, 4), ("B=1,T=1", 1, 1)):
        model = randomize(EncDecAD(2, 3, L, seed=1), rng)
        cases.append(input_case(f"EncDecAD {label}", model, rng.standard_normal((B, L, 2))))
    return cases


def _vae_cases(rng: np.random.Generator) -> list:
    from ...gradcheck import Case, randomize

    cases = []
    for label, B, L in (("B=3,L=4", 3, 4), ("B=1,T=1", 1, 1)):
        model = randomize(LSTMVAE(2, 3, L, latent_size=2, seed=1), rng, scale=0.8)
        inputs = {"x": rng.standard_normal((B, L, 2))}
        eps = rng.standard_normal((B, 2))

        def run(model=model, inputs=inputs, eps=eps):
            (m, v, kl), cache = model.forward(inputs["x"], eps)
            return [m, v, np.asarray(kl)], cache

        def grad(G, cache, model=model):
            return {"x": model.backward((G[0], G[1], float(G[2])), cache)}

        cases.append(Case(f"LSTMVAE {label}", model, inputs, run, grad))
    return cases


def _register() -> None:
    from ...gradcheck import spec_for

    spec_for(EncDecAD)(_gradcheck_cases)
    spec_for(LSTMVAE)(_vae_cases)


_register()
