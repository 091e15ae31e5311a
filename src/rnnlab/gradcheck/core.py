"""Gradient checking: analytic backward passes against centred finite differences.

For a module, a set of differentiable inputs (inputs and initial states) and
a random upstream gradient G for every output, the scalar checked is

    f(theta) = sum_k <G_k, out_k(theta)>

whose gradient the backward pass computes when fed G. Each entry of every
parameter and input is perturbed by +-eps (float64, eps = 1e-5) and

    numeric_i = (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps)
    error_i   = |analytic_i - numeric_i| / max(|analytic_i|, |numeric_i|, floor)

with floor = 1e-3 * max_j |numeric_j|: an entry a thousand times smaller than
the largest one of its tensor is judged on that absolute scale, because the
round-off of a finite difference (~1e-11 here) would otherwise make a correct
near-zero entry look wrong. The row reports the max error over the tensor.

ReLU kinks: where a module is piecewise linear, a perturbation that moves a
pre-activation across zero makes the finite difference meaningless. A case
may give ``kink_pattern(cache)``, the signs of all its ReLU pre-activations;
an entry whose +eps or -eps run changes that pattern is skipped and counted,
never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..module import Module

EPS = 1e-5
TOLERANCE = 1e-6


@dataclass
class Case:
    """One configuration to check: a float64 module and how to run it."""

    label: str
    module: Module
    inputs: dict[str, np.ndarray]  # differentiable inputs and initial states, perturbed in place
    run: Callable[[], tuple[Sequence[np.ndarray], Any]]   # forward -> (outputs, cache)
    grad: Callable[[list[np.ndarray], Any], dict[str, np.ndarray]]  # backward(G, cache) -> input grads
    kink_pattern: Callable[[Any], np.ndarray] | None = None
    kinds: dict[str, str] = field(default_factory=dict)  # input name -> "input" | "state"


@dataclass
class Row:
    module: str
    case: str
    tensor: str
    kind: str           # "param", "input" or "state"
    shape: tuple
    checked: int
    skipped: int
    max_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.checked > 0 and bool(self.max_error < self.tolerance)

    @property
    def verdict(self) -> str:
        if self.checked == 0:
            return "FAIL (every entry crossed a kink)"
        return "ok" if self.passed else "FAIL"


def _objective(outputs: Sequence[np.ndarray], upstream: list[np.ndarray]) -> float:
    return float(sum(np.sum(np.asarray(o) * g) for o, g in zip(outputs, upstream)))


def _errors(analytic: np.ndarray, numeric: np.ndarray, valid: np.ndarray) -> float:
    if not valid.any():
        return float("nan")
    a, n = analytic[valid], numeric[valid]
    floor = max(1e-3 * float(np.max(np.abs(n))), 1e-12)
    denom = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
    return float(np.max(np.abs(a - n) / denom))


def _numeric_gradient(case: Case, array: np.ndarray, upstream: list[np.ndarray],
                      base_pattern: np.ndarray | None, eps: float) -> tuple[np.ndarray, np.ndarray]:
    numeric = np.zeros_like(array)
    valid = np.ones(array.shape, dtype=bool)
    flat, nflat, vflat = array.reshape(-1), numeric.reshape(-1), valid.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        values = []
        for sign in (1.0, -1.0):
            flat[i] = original + sign * eps
            outputs, cache = case.run()
            values.append(_objective(outputs, upstream))
            if base_pattern is not None and not np.array_equal(case.kink_pattern(cache), base_pattern):
                vflat[i] = False
        flat[i] = original
        nflat[i] = (values[0] - values[1]) / (2 * eps)
    return numeric, valid


def check_case(name: str, case: Case, *, seed: int = 0, eps: float = EPS,
               tolerance: float = TOLERANCE) -> list[Row]:
    """Check every parameter and differentiable input of one case; one Row per tensor."""
    rng = np.random.default_rng(seed)
    module = case.module
    outputs, cache = case.run()
    upstream = [rng.standard_normal(np.shape(o)) for o in outputs]
    base_pattern = case.kink_pattern(cache) if case.kink_pattern else None
    module.zero_grad()
    input_grads = case.grad(upstream, cache)
    targets: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for pname, value, grad in module.named_parameters():
        targets.append((pname, "param", value, grad.copy()))
    for iname, value in case.inputs.items():
        targets.append((iname, case.kinds.get(iname, "input"), value, np.asarray(input_grads[iname])))
    rows = []
    for tname, kind, value, analytic in targets:
        if analytic.shape != value.shape:
            raise AssertionError(f"{name}/{tname}: gradient shape {analytic.shape} != {value.shape}")
        numeric, valid = _numeric_gradient(case, value, upstream, base_pattern, eps)
        rows.append(Row(name, case.label, tname, kind, value.shape, int(valid.sum()),
                        int((~valid).sum()), _errors(analytic, numeric, valid), tolerance))
    return rows


def format_table(rows: list[Row]) -> str:
    """Render rows as an aligned plain-text table with a verdict per row."""
    header = ("module", "case", "tensor", "kind", "shape", "checked", "skipped", "max rel err", "verdict")
    body = [(r.module, r.case, r.tensor, r.kind, "x".join(map(str, r.shape)) or "scalar", str(r.checked),
             str(r.skipped), f"{r.max_error:.2e}", r.verdict) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)
