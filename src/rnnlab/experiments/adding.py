"""The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015, sec. 4.1).

Each input step has two features: a random number u_t ~ U(0, 1) and a marker
m_t in {0, 1}. Exactly two markers are 1, one in the first half of the
sequence and one in the second half; the target is the sum of the two marked
numbers. Only the last step's output is read, so the network must carry the
first marked number across at least T/2 steps.

Predicting the constant 1 (the mean of the target) scores MSE = Var(u1 + u2)
= 2/12 = 0.167: the baseline. A run *solves* the task when its test MSE
falls below SOLVED = 0.05 (30 % of the baseline, i.e. it explains 70 % of the
target's variance); the table reports how many seeds got there, and the
training steps and seconds (evaluation excluded) at the first evaluation
below 0.05. Training data is drawn fresh every step; the test set is 1,000
fixed sequences.

Budgets: step-matched runs all get ``STEPS`` optimizer steps (a run that gets
below ``STOP_BELOW`` stops early: it has solved the task); time-matched runs
get the per-length minutes of ``BUDGET``.

The IRNN protocol of Le, Jaitly & Hinton (2015), beside the Adam rows: the
recurrent matrix the identity, biases 0, input weights N(0, 0.001^2), ReLU,
plain SGD over a small learning-rate x clipping grid (``IRNN_SGD_GRID``),
batch 16 and 100 hidden units as in the paper, at the paper's shortest
length T = 150 (``PROTOCOL_LENGTHS``). Departures (docs/studies.md): a few
thousand steps instead of the paper's ~10^6, hence only the top of its
learning-rate grid.
"""
from __future__ import annotations

import math

import numpy as np

from .runner import Column, Condition, Options, Study
from ..train.loopconfig import LoopConfig
from ..models.seqmodel import first_below
from .seqtask import RandomBatches, SequenceTask, fit_sequence, run_dir_for

BASELINE = 2.0 / 12.0
SOLVED = 0.05
STOP_BELOW = 0.005     # a run that gets this low is stopped early: it has clearly solved the task
TEST_SIZE = 1000
CELLS_DEFAULT = ("rnn", "irnn", "lstm", "gru", "bnlstm")

# Settings chosen by trial runs (docs/studies.md): with Adam, lr 1e-2 lets the LSTM and GRU
# leave the 0.167 plateau within a few hundred steps at T=100 (1e-3 had not after 1,500).
# The IRNN learns at 1e-3 with tight clipping; its identity recurrence lets the state grow
# without bound once the weights drift above norm 1, so it gets no more than that.
CELL_SETTINGS: dict[str, dict] = {
    "rnn": {"lr": 1e-3, "clip": 1.0},
    "irnn": {"lr": 1e-3, "clip": 1.0},
    "lstm": {"lr": 1e-2, "clip": 1.0},
    "gru": {"lr": 1e-2, "clip": 1.0},
    "bnlstm": {"lr": 3e-3, "clip": 1.0},
}
HIDDEN = 64
BATCH = 32
# per sequence length: (max training steps, default per-run minutes of training) of a time-matched
# run; T = 150 is the shortest length of Le et al. (2015)
BUDGET = {100: (3000, 0.5), 150: (3000, 0.6), 200: (3000, 0.75), 400: (3000, 1.0)}
STEPS = 2000            # every step-matched run gets this many optimizer steps (at every length)
# The IRNN protocol of Le et al. (2015): identity W_h, zero biases, W_x ~ N(0, 0.001^2), ReLU, plain SGD
# with gradient clipping, batch 16, 100 hidden units; (lr, clip) pairs from the top of their grid
# (lr 1e-2 .. 1e-8, clip 1 or 10): with a few thousand steps instead of ~10^6 smaller rates move nothing.
# lr 1e-1 lies above their grid: at 1e-2 all three seeds were still on the plateau after 2,000 steps.
IRNN_SGD_GRID = ((1e-1, 1.0), (1e-2, 1.0), (1e-2, 10.0), (1e-3, 10.0))
PROTOCOL = {"optimizer": "sgd", "batch": 16, "hidden": 100,
            "options": {"identity_scale": 1.0, "input_std": 0.001}}
PROTOCOL_LENGTHS = (150,)
QUICK = {"lengths": (20,), "steps": 300, "minutes": 0.25, "hidden": 32, "eval_every": 50}


def adding_batch(rng: np.random.Generator, batch: int, steps: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (B, T, 2) and targets (B, 1) of the adding problem."""
    x = np.zeros((batch, steps, 2), dtype=dtype)
    x[:, :, 0] = rng.random((batch, steps))
    half = steps // 2
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, steps, size=batch)
    rows = np.arange(batch)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = (x[rows, first, 0] + x[rows, second, 0])[:, None]
    return x, y.astype(dtype)


def conditions(opts: Options) -> list[Condition]:
    lengths = QUICK["lengths"] if opts.quick else tuple(BUDGET)
    conds = []
    for T in lengths:
        for cell in CELLS_DEFAULT:
            s = CELL_SETTINGS[cell]
            label = "irnn adam" if cell == "irnn" else cell
            conds.append(Condition(f"{label} T={T}", cell, f"T={T}", {"T": T, **s}))
        if opts.quick or T in PROTOCOL_LENGTHS:
            for lr, clip in IRNN_SGD_GRID:
                conds.append(Condition(f"irnn sgd lr={lr:g} clip={clip:g} T={T}", "irnn", f"T={T}",
                                       {"T": T, "lr": lr, "clip": clip, **PROTOCOL}))
    return conds


def step_budget(opts: Options) -> int:
    return opts.steps or (QUICK["steps"] if opts.quick else STEPS)


def run_one(cond: Condition, seed: int, opts: Options) -> dict:
    s = cond.settings
    T = s["T"]
    if opts.quick:
        steps, minutes, hidden, every = QUICK["steps"], QUICK["minutes"], QUICK["hidden"], QUICK["eval_every"]
    else:
        (steps, minutes), hidden, every = BUDGET.get(T, (2000, 1.0)), HIDDEN, 100
    minutes = opts.minutes if opts.minutes is not None else minutes
    if opts.budget == "steps":
        steps, minutes = step_budget(opts), 0.0
    if "hidden" in s and not opts.quick:
        hidden = s["hidden"]
    batch = s.get("batch", BATCH)
    options = {"max_steps": T} if cond.cell == "bnlstm" else {}  # one BN statistics slot per step
    options.update(s.get("options", {}))
    spec = {"cell": cond.cell, "input_size": 2, "hidden_size": hidden, "output_size": 1, "seed": seed, **options}
    test = adding_batch(np.random.default_rng([12345, T]), TEST_SIZE, T)   # same test set for every seed and cell
    task = SequenceTask(spec, RandomBatches(lambda rng: adding_batch(rng, batch, T), [seed, T, 1]), test,
                        "regression", stop_below=STOP_BELOW)
    cfg = LoopConfig(optimizer=s.get("optimizer", "adam"), lr=s["lr"], clip=s["clip"], max_steps=steps,
                     max_minutes=minutes, eval_every=every, guard="skip", seed=seed)
    res = fit_sequence(task, cfg, run_dir_for(opts, "adding", cond.label, seed), log=opts.log)
    hist = res.history
    hit = first_below(hist, "eval_loss", SOLVED)
    final = hist[-1]["eval_loss"]
    return {"final_mse": final if not res.diverged else math.nan,
            "best_mse": min(h["eval_loss"] for h in hist),
            "solved": hit is not None,
            "steps_to_solve": hit["step"] if hit else None,
            "seconds_to_solve": hit["seconds"] if hit else None,
            "steps": res.steps, "seconds": res.seconds, "ms_per_step": 1000 * res.seconds / max(res.steps, 1),
            "diverged": res.diverged, "stop": res.stop, "params": task.build_model().num_parameters(),
            "hidden": hidden, "batch": batch, "optimizer": cfg.optimizer, "step_budget": steps,
            "lr": s["lr"], "clip": s["clip"], "bad_steps": res.bad_steps,
            "curve": [(h["step"], h["eval_loss"]) for h in hist]}


def notes(opts: Options) -> str:
    return (f"Adding problem: MSE on 1,000 fixed test sequences; baseline (always predict 1) = {BASELINE:.3f}. "
            f"Solved = test MSE < {SOLVED} at some evaluation; steps/seconds to solve are at the first such "
            f"evaluation (training time only, mean over the seeds that solved it; (k/n) = k of n seeds). "
            f"Adam, batch {BATCH}, global-norm clipping; runs stop early once MSE < {STOP_BELOW}. "
            f"Step-matched runs: {step_budget(opts)} steps each. 'irnn sgd' rows: the protocol of Le et al. "
            f"(2015): identity W_h, zero biases, W_x ~ N(0, 0.001^2), plain SGD with clipping, batch "
            f"{PROTOCOL['batch']}, {PROTOCOL['hidden'] if not opts.quick else QUICK['hidden']} hidden units. "
            "Mean ± sample std over seeds.")


COLUMNS = [
    Column("hidden", "hidden", "{:d}", "const"),
    Column("opt", "optimizer", "{}", "const"),
    Column("batch", "batch", "{:d}", "const"),
    Column("lr", "lr", "{:g}", "const"),
    Column("clip", "clip", "{:g}", "const"),
    Column("solved", "solved", kind="count"),
    Column("diverged", "diverged", kind="count"),
    Column("final MSE", "final_mse", "{:.4f}"),
    Column("best MSE", "best_mse", "{:.4f}"),
    Column(f"steps to MSE<{SOLVED}", "steps_to_solve", "{:.0f}"),
    Column(f"seconds to MSE<{SOLVED}", "seconds_to_solve", "{:.0f}"),
    Column("steps run", "steps", "{:.0f}"),
    Column("ms/step", "ms_per_step", "{:.0f}"),
]

STUDY = Study("adding", "Adding problem", 3, conditions, run_one, COLUMNS,
              ("training step", "test MSE"), notes, log_y=True, y_limits=(1e-3, 1.0))
