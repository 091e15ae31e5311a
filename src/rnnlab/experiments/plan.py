"""A study's plan: its options, rows (:class:`Condition`), columns, the budgets, and the jobs
(budget x condition x seed) the runner takes in order (:mod:`rnnlab.experiments.runner`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from ..cells import CELLS


@dataclass
class Options:
    quick: bool = False
    seeds: int | None = None          # None: 1 with quick, else the study's default
    out: str | None = None            # None: runs/experiments/<name>-<timestamp>
    minutes: float | None = None      # per-run training budget; None: the study's default
    data_dir: str | None = None
    cells: list[str] | None = None    # None: the study's default cells
    corpus: str | None = None         # charlm only: a dataset name or a text file/folder
    budget: str = "both"              # "steps", "time" or "both" (run_one sees "steps" or "time")
    steps: int | None = None          # per-run step budget for budget="steps"; None: the study's default
    jobs: int = 1                     # worker processes; 1 runs every job in this process
    groups: list[str] | None = None   # None: every group (e.g. adding's "T=150", digits' "permuted")
    rows: list[str] | None = None     # None: every row; else rows whose label contains one of these
    validation: bool = False          # score on a validation split of the training data, not the test split
    ray: str | None = None            # None: local (jobs); "local": a local Ray cluster; else a Ray address
    force: bool = False               # replace the results of an earlier study in ``out``
    log: Callable[[str], None] = field(default=print, repr=False)


BUDGETS = ("steps", "time")
BUDGET_CHOICES = ("steps", "time", "both")
BUDGET_TITLES = {"steps": "Step-matched: every run gets the same number of optimizer steps",
                 "time": "Time-matched: every run gets the same training time"}
def budgets_of(opts: "Options") -> tuple[str, ...]:
    if opts.budget not in BUDGET_CHOICES:
        from ..errors import ConfigError
        raise ConfigError(f"unknown budget {opts.budget!r}; choose from {', '.join(BUDGET_CHOICES)}")
    return BUDGETS if opts.budget == "both" else (opts.budget,)


class Condition(NamedTuple):
    label: str               # the row's name in the table
    cell: str                # registry name; rows whose cell is missing are skipped
    group: str               # rows of one group share a plot (e.g. "T=200")
    settings: dict           # everything the study needs to run it


class Column(NamedTuple):
    header: str
    key: str                 # metric key in a run's record
    fmt: str = "{:.3f}"
    kind: str = "stat"       # "stat": mean ± std; "count": k/n true; "const": from the condition's first run


# the first columns of a study whose rows differ in model size and optimiser (charlm, digits)
MODEL_COLUMNS = (
    Column("hidden", "hidden", "{:d}", "const"),
    Column("params", "params", "{:,}", "const"),
    Column("opt", "optimizer", "{}", "const"),
    Column("lr", "lr", "{:g}", "const"),
)


def no_notes(opts: "Options") -> str:
    return ""


def no_check(opts: "Options") -> None:
    return None


class Study(NamedTuple):
    name: str
    title: str
    default_seeds: int
    conditions: Callable[[Options], list[Condition]]
    run_one: Callable[[Condition, int, Options], dict]
    columns: list[Column]
    curve_labels: tuple[str, str]                    # x and y axis names of each run's "curve"
    notes: Callable[[Options], str] = no_notes     # module-level functions only: workers unpickle the study
    log_y: bool = False
    y_limits: tuple[float, float] | None = None      # keeps one diverged run from flattening the others
    validation: bool = False                         # supports Options.validation (a held-out split)
    check: Callable[[Options], None] = no_check      # bad input (a corpus) as one line, before any job runs


def cell_available(name: str) -> bool:
    return name in CELLS


def select(conds: list[Condition], wanted: list[str] | None, log: Callable[[str], None],
           groups: list[str] | None = None, rows: list[str] | None = None) -> list[Condition]:
    """Keep the conditions whose cell (group, label) is wanted and whose cell is registered; say why
    others are skipped."""
    if rows:
        for text in rows:
            if not any(text in c.label for c in conds):
                log(f"note: no row of this study has '{text}' in its label")
        conds = [c for c in conds if any(text in c.label for text in rows)]
    if groups:
        offered = list(dict.fromkeys(c.group for c in conds))
        for name in groups:
            if name not in offered:
                log(f"note: this study has no group '{name}' (it offers {', '.join(offered)})")
        conds = [c for c in conds if c.group in groups]
    if wanted:
        offered = {c.cell for c in conds}
        for name in wanted:
            if name not in offered:
                log(f"note: this study has no rows for cell '{name}' (it offers {', '.join(sorted(offered))})")
        conds = [c for c in conds if c.cell in wanted]
    kept, missing = [], []
    for c in conds:
        if cell_available(c.cell):
            kept.append(c)
        elif c.cell not in missing:
            missing.append(c.cell)
    for name in missing:
        log(f"note: cell '{name}' not available in this build; skipping its rows")
    return kept


class Job(NamedTuple):
    budget: str              # "steps" or "time"
    index: int               # the condition's position in the study's list
    cond: Condition
    seed: int

    @property
    def key(self) -> tuple[str, int, int]:
        return self.budget, self.index, self.seed


def plan_jobs(conds: list[Condition], seeds: int, budgets: tuple[str, ...]) -> list[Job]:
    """Every (budget, condition, seed), in the order the serial runner takes them."""
    return [Job(b, i, c, s) for b in budgets for i, c in enumerate(conds) for s in range(seeds)]
