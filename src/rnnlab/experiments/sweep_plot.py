"""The plot of a sweep (``rnnlab sweep ... --plot``): each trial's validation metric and the best so far."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_sweep(result: dict[str, Any], path: Path) -> Path:
    """The search as a plot: each finished trial's metric (pruned ones at their last report), best so far."""
    from ..plotting import require_matplotlib

    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(7, 4))
    done = [t for t in result["trials"] if t["state"] == "COMPLETE"]
    pruned = [t for t in result["trials"] if t["state"] == "PRUNED" and t["intermediate"]]
    ax.plot([t["number"] for t in done], [t["value"] for t in done], "o", label="complete")
    if pruned:
        ax.plot([t["number"] for t in pruned], [t["intermediate"][max(t["intermediate"])] for t in pruned], "x",
                color="grey", label="pruned (last report)")
    better = min if result["direction"] == "minimize" else max
    xs, ys, best = [], [], None
    for t in sorted(done, key=lambda t: t["number"]):
        best = t["value"] if best is None else better(best, t["value"])
        xs.append(t["number"])
        ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {result['metric']}")
    ax.set_title(f"sweep {result['study']}: {len(done)} complete, {len(pruned)} pruned")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
