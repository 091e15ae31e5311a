"""The one module contract every rnnlab layer follows.

A :class:`Module` holds

* ``params`` – a dict ``name -> ndarray`` of its own trainable arrays,
* ``grads``  – a dict with exactly the same keys, gradients *accumulated* by
  :meth:`backward` (call :meth:`zero_grad` between steps),
* ``training`` – a flag switched by :meth:`train` / :meth:`eval`,
* child modules, registered with :meth:`add_child`, so that containers expose
  their children's parameters under dotted names (``"layers.0.cell.W_h"``).

``forward(*inputs)`` returns ``(outputs, cache)``; the cache is a small
``NamedTuple`` defined beside the layer, holding exactly what the backward
pass needs. ``backward(doutputs, cache)`` accumulates into ``grads`` and
returns the gradient of the inputs (``None`` for integer inputs such as token
ids). Recurrent layers also return the gradient of the initial state.

Modules are plain Python objects: no autograd, no graph. The backward pass of
each layer is written by hand next to its forward pass.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

DEFAULT_DTYPE = np.float32

_grad_enabled = True


def grad_enabled() -> bool:
    """False inside :func:`no_grad`: forward passes need not keep what backward would read."""
    return _grad_enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Run forward passes that will never be differentiated (evaluation, scoring).

    Layers whose cache is large may then skip it: the fused GRU loop keeps one
    step's gates instead of all T, the LSTM runs a forward-only loop
    (:mod:`rnnlab.fast.lstm_infer`: no per-step caches, token rows read in
    place), and the softmax cross-entropy keeps no log-probabilities.
    Calling ``backward`` on such a forward's cache raises an error.

    The outermost ``no_grad`` also runs the hooks given to :func:`on_no_grad` (the batch-split
    forward of :mod:`rnnlab.fast.parallel` sets every BLAS to one thread there) and undoes them
    on the way out.
    """
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    undo = [hook() for hook in _no_grad_hooks] if previous else []
    try:
        yield
    finally:
        _grad_enabled = previous
        for u in reversed(undo):
            u()


_no_grad_hooks: list[Callable[[], Callable[[], None]]] = []


def on_no_grad(hook: Callable[[], Callable[[], None]]) -> None:
    """Call ``hook()`` on entering the outermost :func:`no_grad`, and the function it returns on
    leaving it (registered once per hook)."""
    if hook not in _no_grad_hooks:
        _no_grad_hooks.append(hook)


def release_workspaces(module: "Module") -> None:
    """Drop the activation arrays that layers keep between steps (rnnlab.workspace), e.g. after
    training; the next forward pass simply allocates them again."""
    for _, m in module.modules():
        workspace = getattr(m, "workspace", None)
        if workspace is not None:
            workspace.clear()


class Module:
    """Base class: parameters, gradients, children and train/eval mode."""

    abstract = True  # read from each class's own __dict__: subclasses are concrete unless they say so

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}  # non-trained state, e.g. batch-norm population statistics
        self.children: dict[str, Module] = {}
        self.training = True

    # -- construction -------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a trainable array and a zero gradient of the same shape."""
        value = np.ascontiguousarray(value)
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def add_buffer(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register an array that is saved and loaded with the weights but not trained."""
        self.buffers[name] = np.ascontiguousarray(value)
        return self.buffers[name]

    def add_child(self, name: str, module: "Module") -> "Module":
        self.children[name] = module
        return module

    # -- the contract ---------------------------------------------------------
    def forward(self, *inputs: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def backward(self, dout: Any, cache: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *inputs: Any) -> tuple[Any, Any]:
        return self.forward(*inputs)

    # -- traversal --------------------------------------------------------------
    def modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Yield ``(dotted_name, module)`` for self and all descendants."""
        yield prefix, self
        for name, child in self.children.items():
            yield from child.modules(f"{prefix}{name}.")

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(dotted_name, param, grad)`` over the whole tree."""
        for prefix, module in self.modules():
            for name, value in module.params.items():
                yield prefix + name, value, module.grads[name]

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, module in self.modules():
            for name, value in module.buffers.items():
                yield prefix + name, value

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    # -- state ----------------------------------------------------------------
    def zero_grad(self) -> None:
        for _, _, grad in self.named_parameters():
            grad.fill(0)

    def train(self, mode: bool = True) -> "Module":
        for _, module in self.modules():
            module.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def astype(self, dtype: Any) -> "Module":
        """Cast every parameter and gradient in place (float64 for checks)."""
        for _, module in self.modules():
            for name in module.params:
                module.params[name] = np.ascontiguousarray(module.params[name], dtype=dtype)
                module.grads[name] = np.zeros_like(module.params[name])
            for name in module.buffers:
                module.buffers[name] = np.ascontiguousarray(module.buffers[name], dtype=dtype)
        return self

    @property
    def dtype(self) -> np.dtype:
        for _, value, _ in self.named_parameters():
            return value.dtype
        return np.dtype(DEFAULT_DTYPE)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by dotted name (copies)."""
        state = {name: value.copy() for name, value, _ in self.named_parameters()}
        state.update((name, value.copy()) for name, value in self.named_buffers())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the existing parameters and buffers; names and shapes must match."""
        own = {name: value for name, value, _ in self.named_parameters()}
        own.update(self.named_buffers())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
        for name, value in own.items():
            new = np.asarray(state[name])
            if new.shape != value.shape:
                raise ValueError(f"shape mismatch for {name}: expected {value.shape}, got {new.shape}")
            value[...] = new

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.params.items())
        kids = ", ".join(self.children)
        inner = "; ".join(s for s in (shapes, kids and f"children: {kids}") if s)
        return f"{type(self).__name__}({inner})"
