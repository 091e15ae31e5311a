"""Gradient checking: analytic backward passes against centred finite differences.

For a module, a set of differentiable inputs (inputs and initial states) and
a random upstream gradient G for every output, the scalar checked is

    f(theta) = sum_k <G_k, out_k(theta)>

whose gradient the backward pass computes when fed G. Each entry of every
parameter and input is perturbed by +-h (float64, h = EPS = 1e-5):

    numeric_i = (f(theta + h e_i) - f(theta - h e_i)) / (2 h)
    error_i   = |analytic_i - numeric_i| / max(|analytic_i|, |numeric_i|, floor)

with floor = 1e-3 * max_j |numeric_j|: an entry a thousand times smaller than
the largest one of its tensor is judged on that absolute scale.

The verdict must not depend on the machine. A finite difference is itself
wrong by two amounts no backward pass can remove, and both are bounded per
entry (``bound_i``; the table shows it relative to the same denominator):

* rounding: every f is a float64 sum whose last bits depend on the BLAS
  kernel's summation order (OpenBLAS picks a different one per CPU). Its
  error is at most about u * n * S, with u = 2**-53, S = max(sum_k |G_k| |out_k|,
  |f|) the magnitude the objective is summed from and n the number of terms
  summed. The difference of two such values over 2h is then off by up to
  u * n * S / h, times ROUNDING_FACTOR for the depth of the computation that
  made the outputs (recurrences, log-sum-exps).
* truncation: the centred difference is off by h**2 * f'''(theta) / 6; the
  h and 2h estimates differ by three times that, so |numeric(2h) - numeric(h)|
  bounds it with a margin (and adds the 2h estimate's rounding once more).
  The 2h runs are made only for an entry not already within tolerance +
  rounding, so they cost time only where they can change the verdict.

An entry passes when |analytic - numeric| <= tolerance * denominator + bound.
A wrong derivative (a missing term, a flipped sign, a transposed weight) is
off by a fraction of the gradient itself, orders of magnitude above either
bound: tests/gradcheck/test_mutations.py plants such bugs and asserts each one
fails. A row reports its worst ``ratio`` = error / allowed (a pass is < 1), so
a reader sees how close each tensor came and why it passes.

ReLU kinks: where a module is piecewise linear, a perturbation that moves a
pre-activation across zero makes the finite difference meaningless. A case
may give ``kink_pattern(cache)``, the signs of all its ReLU pre-activations;
an entry whose +-h (or +-2h) run changes that pattern is skipped and counted,
never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..module import Module

EPS = 1e-5
TOLERANCE = 1e-6
UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2
ROUNDING_FACTOR = 8.0


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


def input_case(label: str, module: Any, x: np.ndarray) -> Case:
    """The case of a module with one input and one output: ``forward(x) -> (y, cache)`` and
    ``backward(dy, cache) -> dx``."""
    inputs = {"x": x}

    def run() -> tuple[list[np.ndarray], Any]:
        y, cache = module.forward(inputs["x"])
        return [y], cache

    def grad(G: list[np.ndarray], cache: Any) -> dict[str, np.ndarray]:
        return {"x": module.backward(G[0], cache)}

    return Case(label, module, inputs, run, grad)


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
    bound: float = 0.0      # worst finite-difference error bound (rounding + truncation), relative
    ratio: float = 0.0      # worst |analytic - numeric| / (tolerance * denominator + bound); pass < 1

    @property
    def passed(self) -> bool:
        return self.checked > 0 and bool(self.ratio < 1.0)

    @property
    def verdict(self) -> str:
        if self.checked == 0:
            return "FAIL (every entry crossed a kink)"
        return "ok" if self.passed else "FAIL"


def _objective(outputs: Sequence[np.ndarray], upstream: list[np.ndarray]) -> tuple[float, float, int]:
    """f, the magnitude S = sum |G| |out| it is summed from, and the number of terms summed."""
    value = magnitude = 0.0
    terms = 0
    for o, g in zip(outputs, upstream):
        o = np.asarray(o)
        value += float(np.sum(o * g))
        magnitude += float(np.sum(np.abs(o) * np.abs(g)))
        terms += int(o.size)
    return value, max(magnitude, abs(value)), max(terms, 1)


def _denominator(analytic: np.ndarray, numeric: np.ndarray, valid: np.ndarray) -> np.ndarray:
    floor = max(1e-3 * float(np.max(np.abs(numeric[valid]), initial=0.0)), 1e-12)
    return np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)


def _difference(case: Case, flat: np.ndarray, i: int, step: float, upstream: list[np.ndarray],
                base_pattern: np.ndarray | None) -> tuple[float, float, bool]:
    """(centred difference at ``step``, its rounding bound, whether no ReLU kink was crossed)."""
    original = flat[i]
    values, magnitude, terms, smooth = [], 0.0, 1, True
    for sign in (1.0, -1.0):
        flat[i] = original + sign * step
        outputs, cache = case.run()
        value, m, n = _objective(outputs, upstream)
        values.append(value)
        magnitude, terms = max(magnitude, m), max(terms, n)
        if base_pattern is not None and not np.array_equal(case.kink_pattern(cache), base_pattern):
            smooth = False
    flat[i] = original
    rounding = ROUNDING_FACTOR * UNIT_ROUNDOFF * terms * magnitude / step
    return (values[0] - values[1]) / (2 * step), rounding, smooth


def check_tensor(case: Case, value: np.ndarray, analytic: np.ndarray, upstream: list[np.ndarray],
                 base_pattern: np.ndarray | None, eps: float,
                 tolerance: float) -> tuple[int, int, float, float, float]:
    """(checked, skipped, max relative error, max relative bound, max error / allowed) for one tensor.

    Every entry gets the step-h difference and its rounding bound; an entry not within tolerance +
    rounding also gets the step-2h difference, whose distance from the step-h one bounds truncation
    (so the 2h runs cost time only where they can change the verdict)."""
    flat = value.reshape(-1)
    numeric, bound = np.zeros(flat.size), np.zeros(flat.size)
    valid = np.ones(flat.size, dtype=bool)
    for i in range(flat.size):
        numeric[i], bound[i], valid[i] = _difference(case, flat, i, eps, upstream, base_pattern)
    a = analytic.reshape(-1)
    if not valid.any():
        return 0, flat.size, float("nan"), float("nan"), float("nan")
    for i in np.flatnonzero(valid & (np.abs(a - numeric) > tolerance * _denominator(a, numeric, valid) + bound)):
        coarse, rounding, smooth = _difference(case, flat, int(i), 2 * eps, upstream, base_pattern)
        bound[i] += abs(coarse - numeric[i])
        valid[i] = smooth
    a, n, b = a[valid], numeric[valid], bound[valid]
    denom = _denominator(a, n, np.ones(n.size, dtype=bool))
    diff = np.abs(a - n)
    return (int(valid.sum()), int((~valid).sum()), float(np.max(diff / denom)), float(np.max(b / denom)),
            float(np.max(diff / (tolerance * denom + b))))


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
        checked, skipped, err, rel_bound, ratio = check_tensor(case, value, analytic, upstream, base_pattern,
                                                               eps, tolerance)
        rows.append(Row(name, case.label, tname, kind, value.shape, checked, skipped, err, tolerance,
                        rel_bound, ratio))
    return rows


def format_table(rows: list[Row]) -> str:
    """Render rows as an aligned plain-text table with a verdict per row.

    ``fd bound`` is the finite difference's own worst error bound (rounding + truncation, relative);
    an entry passes when its error is within tolerance + that bound, i.e. ``err/allowed`` < 1."""
    header = ("module", "case", "tensor", "kind", "shape", "checked", "skipped", "max rel err", "fd bound",
              "err/allowed", "verdict")
    body = [(r.module, r.case, r.tensor, r.kind, "x".join(map(str, r.shape)) or "scalar", str(r.checked),
             str(r.skipped), f"{r.max_error:.2e}", f"{r.bound:.1e}", f"{r.ratio:.2f}", r.verdict) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)
