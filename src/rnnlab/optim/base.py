"""The optimizer base class: parameter bookkeeping, state buffers, checkpoints.

An optimizer is built from the ``(name, param, grad)`` triples yielded by
:meth:`rnnlab.module.Module.named_parameters` and keeps *references* to those
arrays. :meth:`Optimizer.step` reads the gradients and updates the parameters
in place, so the module sees the new values without any copying. (Build the
optimizer after :meth:`Module.astype`, which rebinds the arrays.)

Per-parameter state (momentum, moment estimates, ...) lives in named *slots*:
``self.state[slot][param_name]`` is an array with the parameter's shape and
dtype. :meth:`Optimizer.state_dict` flattens everything into one dict whose
values are NumPy arrays (keys ``"<slot>/<param_name>"``) or plain scalars
(``"type"``, ``"step"``, ``"lr"``, ``"hp/<hyperparameter>"``), so that a
checkpoint can store the arrays in an ``.npz`` and the scalars in JSON.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

ParamTriple = tuple[str, np.ndarray, np.ndarray]


def _collect(params: Iterable[ParamTriple]) -> list[ParamTriple]:
    """Materialise and validate the triples (a generator can be read only once)."""
    triples = []
    seen: set[str] = set()
    for name, param, grad in params:
        if name in seen:
            raise ValueError(f"duplicate parameter name {name!r}")
        seen.add(name)
        if not isinstance(param, np.ndarray) or not np.issubdtype(param.dtype, np.floating):
            raise TypeError(f"parameter {name!r} must be a floating-point ndarray")
        if not isinstance(grad, np.ndarray) or grad.shape != param.shape or grad.dtype != param.dtype:
            raise ValueError(f"gradient of {name!r} must be an ndarray with the parameter's shape and dtype")
        if not param.flags.writeable:
            raise ValueError(f"parameter {name!r} is read-only; the optimizer updates it in place")
        triples.append((name, param, grad))
    if not triples:
        raise ValueError("optimizer got an empty parameter list")
    return triples


def _scalar(value: Any) -> Any:
    """Accept scalars back from JSON or as 0-d arrays from an .npz file."""
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(f"expected a scalar, got an array of shape {value.shape}")
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_nonneg(**values: float) -> None:
    for key, value in values.items():
        if not value >= 0.0:  # also rejects NaN
            raise ValueError(f"{key} must be >= 0, got {value}")


def ema_(avg: np.ndarray, x: np.ndarray, decay: float, tmp: np.ndarray) -> np.ndarray:
    """In place ``avg = decay * avg + (1 - decay) * x``; ``tmp`` is scratch (may be ``x``).

    Scaling ``x`` separately (rather than ``(avg - x) * decay + x``) keeps full
    relative precision when ``1 - decay`` is small, e.g. Adam's 1 - 0.999.
    """
    np.multiply(x, 1.0 - decay, out=tmp)
    avg *= decay
    avg += tmp
    return avg


class Optimizer:
    """Base class. Subclasses set :attr:`hyper` and implement :meth:`_update`.

    ``lr`` is a public, mutable attribute: learning-rate schedules and the
    trainer's divergence guard assign to it between steps.
    """

    #: names of scalar hyper-parameter attributes saved in the state dict
    hyper: tuple[str, ...] = ()

    def __init__(self, params: Iterable[ParamTriple], lr: float) -> None:
        check_nonneg(lr=lr)
        self.params = _collect(params)
        self.lr = float(lr)
        self.step_count = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._scratch: dict[tuple[str, int], np.ndarray] = {}

    # -- subclass hooks ------------------------------------------------------
    def slots(self) -> tuple[str, ...]:
        """Names of the per-parameter state buffers the current settings need."""
        return ()

    def _init_slot(self, slot: str, param: np.ndarray) -> np.ndarray:
        return np.zeros_like(param)

    def _update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    # -- helpers for subclasses ---------------------------------------------
    def _allocate(self) -> None:
        """(Re)create state buffers; called once the hyper-parameters are set."""
        self.state = {
            slot: {name: self._init_slot(slot, p) for name, p, _ in self.params}
            for slot in self.slots()
        }

    def _work(self, name: str, param: np.ndarray, index: int = 0) -> np.ndarray:
        """A reusable scratch array, so that each step allocates (almost) nothing."""
        key = (name, index)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty_like(param)
        return buf

    def _decayed_grad(self, name: str, param: np.ndarray, grad: np.ndarray, weight_decay: float) -> np.ndarray:
        """Scratch copy of ``grad + weight_decay * param`` (the L2 form, as in torch).

        Always a copy: the caller's gradient must survive the step untouched,
        and the optimizers below overwrite this buffer freely.
        """
        out = self._work(name, param)
        if weight_decay:
            np.multiply(param, weight_decay, out=out)
            out += grad
        else:
            np.copyto(out, grad)
        return out

    # -- public API ------------------------------------------------------------
    def step(self) -> None:
        """Apply one update to every parameter from its current gradient."""
        self.step_count += 1
        for name, param, grad in self.params:
            self._update(name, param, grad)

    def zero_grad(self) -> None:
        for _, _, grad in self.params:
            grad.fill(0)

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": type(self).__name__, "step": self.step_count, "lr": self.lr}
        for key in self.hyper:
            out[f"hp/{key}"] = getattr(self, key)
        for slot, buffers in self.state.items():
            for name, buf in buffers.items():
                out[f"{slot}/{name}"] = buf.copy()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore step, lr, hyper-parameters and buffers saved by :meth:`state_dict`.

        Like torch, the saved hyper-parameters win over the constructor's.
        Buffers are copied into arrays of the parameter's dtype.
        """
        kind = _scalar(state.get("type"))
        if kind != type(self).__name__:
            raise ValueError(f"state dict is for {kind!r}, not {type(self).__name__!r}")
        missing_hp = [k for k in self.hyper if f"hp/{k}" not in state]
        if missing_hp:
            raise ValueError(f"optimizer state lacks hyper-parameters {missing_hp}")
        old = {k: getattr(self, k) for k in self.hyper}
        for key, current in old.items():
            setattr(self, key, type(current)(_scalar(state[f"hp/{key}"])))
        # Which buffers exist depends on the settings (e.g. momentum > 0).
        expected = {"type", "step", "lr"} | {f"hp/{k}" for k in self.hyper}
        expected |= {f"{slot}/{name}" for slot in self.slots() for name, _, _ in self.params}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        problems = [f"missing {missing}, unexpected {unexpected}"] if missing or unexpected else []
        shapes = {name: p.shape for name, p, _ in self.params}
        problems += [
            f"shape of {key} is {np.shape(state[key])}, expected {shapes[key.split('/', 1)[1]]}"
            for key in expected & set(state)
            if "/" in key and not key.startswith("hp/") and np.shape(state[key]) != shapes[key.split("/", 1)[1]]
        ]
        if problems:
            for key, value in old.items():
                setattr(self, key, value)
            raise ValueError("optimizer state mismatch: " + "; ".join(problems))
        self._allocate()
        for slot, buffers in self.state.items():
            for name, buf in buffers.items():
                buf[...] = state[f"{slot}/{name}"]
        self.step_count = int(_scalar(state["step"]))
        self.lr = float(_scalar(state["lr"]))

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("lr",) + self.hyper)
        return f"{type(self).__name__}({settings}, params={len(self.params)})"
