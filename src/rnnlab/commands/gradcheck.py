"""``rnnlab gradcheck``: analytic vs finite-difference gradients for every layer."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gradcheck", help="check every layer's hand-derived backward pass against finite differences",
                       description="Compare analytic gradients with centred finite differences in float64 for "
                                   "every parameter, input and initial state; one row per tensor with a verdict. An entry passes "
                                   "when its error is within 1e-6 relative plus the finite difference's own "
                                   "rounding and truncation bound (column fd bound), so the verdict does not "
                                   "depend on the CPU or BLAS kernel. "
                                   "A recurrent cell with a fused kernel is checked on every path of the time "
                                   "loop (case labels: compiled steps, NumPy steps, reference loop, batch split). "
                                   "Exits non-zero if any row fails.")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--module", metavar="NAME", action="append",
                       help="module to check, e.g. LSTMCell, gru, Linear (repeatable; default: all)")
    group.add_argument("--all", action="store_true", help="check every module (the default)")
    p.add_argument("--seed", type=int, default=0, help="seed for parameters, inputs and upstream gradients")
    p.add_argument("--list", action="store_true", help="list the modules that have a spec and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import gradcheck
    from ..errors import ConfigError

    if args.list:
        gradcheck.discover()  # task-level models register their specs beside their code
        print("\n".join(sorted(cls.__name__ for cls in gradcheck.SPECS)))
        return 0
    rows = []
    try:
        for name in args.module or [None]:
            rows += gradcheck.check(name, seed=args.seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(gradcheck.format_table(rows))
    failed = [r for r in rows if not r.passed]
    skipped = sum(r.skipped for r in rows)
    worst = max((r for r in rows if r.checked), key=lambda r: r.ratio)
    print(f"\n{len(rows)} tensors, {sum(r.checked for r in rows)} entries checked, {skipped} skipped at ReLU kinks; "
          f"worst relative error {max(r.max_error for r in rows if r.checked):.2e}; an entry passes when its error "
          f"is within tolerance {rows[0].tolerance:.0e} plus the finite difference's own rounding and truncation "
          f"bound (fd bound); closest to failing: {worst.module} {worst.tensor} at {worst.ratio:.2f} of allowed; "
          f"{len(failed)} failed", file=sys.stdout)
    paths = {p: sum(r.case.startswith(p + ": ") for r in rows) for p in gradcheck.specs.PATHS}
    if any(paths.values()):   # the recurrent cells' cases, one set per path of the time loop
        print("time-loop paths: " + ", ".join(f"{p} {n} tensors" for p, n in paths.items()), file=sys.stdout)
    return 1 if failed else 0
