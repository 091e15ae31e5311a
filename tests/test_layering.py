"""The layer order of docs/conventions.md, read from the imports of every module under src/rnnlab.

Every ``import`` and ``from ... import`` is counted, those inside functions too (a lazy import is
still a dependency). A module may import its own layer or a lower one; nothing imports upward, and
no two modules import each other (directly or through a chain).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnlab"

# Lowest first. A top-level package or module of rnnlab belongs to exactly one layer.
LAYERS: list[tuple[str, set[str]]] = [
    ("engine", {"module", "init", "errors", "states", "workspace", "cells", "layers", "fast", "optim", "blas",
                "checkpoint", "io", "gradcheck", "timeseries", "data", "torch_bridge", "plotting"}),
    ("models", {"models", "generate", "scoring", "torch_model"}),
    ("train", {"train"}),
    ("tasks", {"tasks", "api"}),
    ("experiments", {"experiments"}),
    ("commands", {"commands", "cli", "__main__", ""}),  # "" is the package itself (rnnlab/__init__.py)
]

# Known cycles being removed on another branch; each entry names the pair and who removes it.
ALLOWED_CYCLES: set[frozenset[str]] = {
}


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, src: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every rnnlab import in the file at ``path``."""
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "rnnlab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from . import fast`` or ``from .fast import stepping`` may name submodules: count
            # ``target.name`` too (resolved to the nearest existing module by ``cycles``)
            names = [f"{target}.{a.name}" for a in node.names if a.name != "*"]
            if target.split(".")[0] == "rnnlab":
                # ``from . import fast`` imports the submodule rnnlab.fast
                found += [(target, node.lineno)] * bool(node.module) + [(n, node.lineno) for n in names]
    return found


def graph(src: Path = SRC) -> dict[str, list[tuple[str, int]]]:
    """Module -> the modules it imports, each resolved to the nearest module that exists
    (``from .fast import stepping`` -> rnnlab.fast.stepping; ``from . import __version__`` -> rnnlab)."""
    raw = {module_name(p, src): imports(p, src) for p in sorted(src.rglob("*.py"))}

    def resolve(target: str) -> str:
        while target not in raw and "." in target:
            target = target.rpartition(".")[0]
        return target

    return {mod: sorted({(resolve(t), line) for t, line in targets}) for mod, targets in raw.items()}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for rank, (_, members) in enumerate(LAYERS):
        if top in members:
            return rank
    raise KeyError(f"{module}: its top-level name {top!r} is in no layer; add it to LAYERS and docs/conventions.md")


def upward_imports(edges: dict[str, list[tuple[str, int]]]) -> list[str]:
    bad = []
    for mod, targets in edges.items():
        for target, line in targets:
            if layer_of(target) > layer_of(mod):
                bad.append(f"{mod} (line {line}, layer {LAYERS[layer_of(mod)][0]}) imports {target} "
                           f"(layer {LAYERS[layer_of(target)][0]})")
    return bad


def cycles(edges: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), minus the allowed pairs.

    An edge to a package counts as an edge to its ``__init__``; an edge from a package's
    ``__init__`` to its own submodules is part of the package and ignored (importing a package runs
    its ``__init__``, but ``__init__`` re-exporting its children is not a cycle with them)."""
    adj: dict[str, set[str]] = {m: set() for m in edges}
    for mod, targets in edges.items():
        for t, _ in targets:
            if t != mod and not t.startswith(mod + ".") and t in adj:
                adj[mod].add(t)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # iterative-enough: the graph is a few hundred nodes deep at most
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 and frozenset(comp) not in ALLOWED_CYCLES:
                out.append(sorted(comp))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for mod in graph():
        layer_of(mod)


def test_nothing_imports_upward():
    bad = upward_imports(graph())
    assert not bad, "imports against the layer order (docs/conventions.md):\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_allowed_cycles_still_exist():
    """An allowance outlives its cycle only by mistake: once the pair is fixed, delete it above."""
    edges = graph()
    saved = set(ALLOWED_CYCLES)
    try:
        ALLOWED_CYCLES.clear()
        present = {frozenset(c) for c in cycles(edges)}
    finally:
        ALLOWED_CYCLES.update(saved)
    for pair in saved:
        assert pair in present, f"{sorted(pair)} is no longer a cycle: remove it from ALLOWED_CYCLES"


def _copy_tree(tmp_path: Path) -> Path:
    src = tmp_path / "rnnlab"
    for p in SRC.rglob("*.py"):
        dest = src / p.relative_to(SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    return src


@pytest.mark.parametrize("victim, line", [
    ("layers/linear.py", "from ..tasks.tagging import schemes\n"),         # engine -> tasks
    ("train/trainer.py", "from rnnlab.tasks.charlm import CharLMTask\n"),  # train -> tasks
    ("models/charlm.py", "def f():\n    from ..experiments import runner\n"),  # a lazy one counts too
])
def test_an_injected_upward_import_is_caught(tmp_path, victim, line):
    src = _copy_tree(tmp_path)
    assert not upward_imports(graph(src))
    (src / victim).write_text((src / victim).read_text(encoding="utf-8") + "\n" + line, encoding="utf-8")
    bad = upward_imports(graph(src))
    assert bad and all(b.startswith(module_name(src / victim, src) + " (line") for b in bad), bad


def test_an_injected_cycle_is_caught(tmp_path):
    src = _copy_tree(tmp_path)
    assert not cycles(graph(src))
    # io.atomic is imported by checkpoint; make atomic import checkpoint back (same layer, so only
    # the cycle check can catch it)
    victim = src / "io" / "atomic.py"
    victim.write_text(victim.read_text(encoding="utf-8") + "\nfrom .. import checkpoint\n", encoding="utf-8")
    assert cycles(graph(src)) == [["rnnlab.checkpoint", "rnnlab.io.atomic"]]
