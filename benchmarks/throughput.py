"""Training, evaluation and sampling throughput: rnnlab against PyTorch on the CPU, side by side.

    PYTHONPATH=src python benchmarks/throughput.py           # the full table (about seven minutes)
    PYTHONPATH=src python benchmarks/throughput.py --quick   # H=256 only, a one-minute look
    OPENBLAS_NUM_THREADS=1 taskset -c 0 python benchmarks/throughput.py --threads 1 --eval-only --cells lstm
                                                             # the evaluation rows alone, one pinned thread

Model, identical in both: Embedding(V=85, 64) -> 2-layer LSTM or GRU (hidden H)
-> Linear(H, V), softmax cross-entropy, Adam; batch B=64 of T=64 characters,
float32, the same thread count: torch.set_num_threads(--threads), and OpenBLAS
(NumPy's BLAS) uses its default, the core count, unless OPENBLAS_NUM_THREADS is
set; for a one-thread comparison run
``OPENBLAS_NUM_THREADS=1 python benchmarks/throughput.py --threads 1``. A training step is zero-grad, forward,
loss, backward and the Adam update. The two libraries run in one process in
rounds of two short blocks of steps (in alternating order), so both see the same
machine load, with a pause before each block so that neither library's idle
worker threads, still spinning, slow the other's steps (see side_by_side); each
row reports the median of the timed steps after warm-up, and "rounds" the middle
half (quartiles) of the per-round ratios, i.e. how far the ratio moved in the run.

* FLOPs are the model's matrix products only: per character and layer
  2 (D + H) G H forward (G = 4 LSTM, 3 GRU) plus 2 H V for the output layer;
  a training step is 3x that (backward costs twice the forward).
  MFU = achieved FLOP/s / the best float32 GEMM rate measured in this run
  (2048^3 products in NumPy and in torch, whichever is faster).
* Memory: peak resident-set growth over the first two training steps of a fresh
  model (Linux VmHWM, reset through /proc/self/clear_refs), each library in a
  fresh subprocess with glibc's mmap threshold fixed at 4 KiB so that freed
  arrays go back to the OS and reuse cannot hide the peak. It counts
  activations, gradients, temporaries and what persists between steps (Adam's
  moments in both; rnnlab's activation workspace, rnnlab.workspace), not the
  model itself, nor library machinery loaded once per process: a step of a
  tiny model runs first in both (torch's kernels; rnnlab's compiled steps,
  i.e. numba and LLVM), and the script prints that memory under the table.
  The tracemalloc column is what a later rnnlab step still allocates once its
  workspace exists (NumPy reports allocations to tracemalloc).
* Eval: forward and loss only (both in eval mode under no_grad: rnnlab's LSTM then runs its
  forward-only loop, rnnlab.fast.lstm_infer, and its GRU keeps one step's gates instead of
  all T; the loss keeps no log-probabilities). ``--eval-only`` times these rows alone.
* Sampling: batch 1, H=256, 2 layers, temperature 0.8, one character at a
  time (rnnlab.generate.Stepper; torch steps nn.LSTM with its state), in
  alternating blocks as above.

* Other cells (``--other-cells``, training only, the same model with that cell):
  the tanh RNN and the IRNN against torch ``nn.RNN`` (tanh, relu); the BN-LSTM and
  LN-LSTM, which torch does not have, against rnnlab's own LSTM (their extra cost:
  "x LSTM" is the step time over the LSTM's, measured in alternating rounds like
  every ratio here) and, for reference, against a torch model written with the same
  equations (``TorchNormLSTM``: a Python loop over time, autograd for the backward;
  per-step batch statistics, no population statistics kept).

The last line is ``min ratio vs torch: X.XX``, the smallest training ratio of the main table;
the line before it, ``min eval ratio vs torch``, the smallest evaluation ratio (with
``--eval-only``, the only rows timed, it is the last line).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnlab.blas import choice as blas_choice  # noqa: E402
from rnnlab.blas import precision  # noqa: E402
from rnnlab.fast import accel  # noqa: E402
from rnnlab.generate import Sampler, Stepper  # noqa: E402
from rnnlab.layers import SoftmaxCrossEntropy  # noqa: E402
from rnnlab.models import CharRNN, ModelConfig  # noqa: E402
from rnnlab.module import no_grad  # noqa: E402
from rnnlab.optim import Adam  # noqa: E402

V, E, B, T, LAYERS = 85, 64, 64, 64, 2
BF16_CELLS = ("lstm", "gru")   # cells whose time loop has bf16 step products (rnnlab.tasks.charlm.config.BF16_CELLS)


# -- the two models ------------------------------------------------------------------------
def rnnlab_model(cell: str, H: int) -> CharRNN:
    return CharRNN(ModelConfig(vocab_size=V, cell=cell, hidden_size=H, num_layers=LAYERS, embedding_size=E))


def rnnlab_steps(cell: str, H: int, prec: str = "fp32") -> tuple:
    """(train step, evaluation) of rnnlab; ``prec`` "bf16": products in bf16 (--precision bf16)."""
    model, loss = rnnlab_model(cell, H), SoftmaxCrossEntropy()
    opt = Adam(model.named_parameters(), lr=1e-3)
    ids = np.random.default_rng(0).integers(0, V, (B, T + 1))

    def train() -> None:
        with precision.use(prec):
            model.zero_grad()
            (logits, _), cache = model.forward(ids[:, :-1])
            _, lcache = loss.forward(logits, ids[:, 1:])
            model.backward((loss.backward(1.0, lcache), None), cache)
            opt.step()

    def evaluate() -> None:  # as rnnlab.train.evaluate does it
        model.eval()
        with no_grad(), precision.use(prec):
            (logits, _), _ = model.forward(ids[:, :-1])
            loss.forward(logits, ids[:, 1:])
        model.train()
    return train, evaluate


def torch_model(cell: str, H: int):
    import torch
    from torch import nn
    torch.manual_seed(0)
    if cell in ("bnlstm", "lnlstm"):
        rnn = nn.Sequential(*(TorchNormLSTM(E if k == 0 else H, H, cell) for k in range(LAYERS)))
    else:
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, "irnn": nn.RNN}[cell](
            E, H, LAYERS, batch_first=True, **({"nonlinearity": "relu"} if cell == "irnn" else {}))
    return nn.ModuleDict({"embed": nn.Embedding(V, E), "rnn": rnn, "out": nn.Linear(H, V)})


def TorchNormLSTM(D: int, H: int, kind: str, eps: float = 1e-5):
    """The BN-LSTM or the per-gate LN-LSTM in torch, with rnnlab's equations (rnnlab.cells.norm):
    a = N(x W_x) gamma_x + N(h W_h) gamma_h + b ; c = f c + i g ; h = o tanh(N(c) gamma_c + beta_c).
    N: batch statistics of each step (BN, training mode) or each row's per gate block (LN).
    (B, T, D) -> (B, T, H); a reference for speed, so the BN keeps no population statistics."""
    import torch
    from torch import nn

    class NormLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.W_x, self.W_h = nn.Linear(D, 4 * H, bias=False), nn.Linear(H, 4 * H, bias=False)
            g0 = 0.1 if kind == "bnlstm" else 1.0
            self.b = nn.Parameter(torch.zeros(4 * H))
            self.gamma_x, self.gamma_h = (nn.Parameter(torch.full((4 * H,), g0)) for _ in range(2))
            self.gamma_c, self.beta_c = nn.Parameter(torch.full((H,), g0)), nn.Parameter(torch.zeros(H))

        def norm(self, v: "torch.Tensor", groups: int) -> "torch.Tensor":
            if kind == "bnlstm":    # over the batch: dim -2 of (B, F) and of (T, B, F)
                mu = v.mean(-2, keepdim=True)
                return (v - mu) * torch.rsqrt(((v - mu) ** 2).mean(-2, keepdim=True) + eps)
            shape = v.shape
            return nn.functional.layer_norm(v.reshape(*shape[:-1], groups, -1), (shape[-1] // groups,),
                                            eps=eps).reshape(shape)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            B, T, _ = x.shape
            xs = self.norm(self.W_x(x.transpose(0, 1)), 4) * self.gamma_x + self.b   # (T, B, 4H)
            h, c, out = x.new_zeros(B, H), x.new_zeros(B, H), []
            for t in range(T):
                a = xs[t] + self.norm(self.W_h(h), 4) * self.gamma_h
                i, f, g, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H]), torch.tanh(a[:, 2 * H:3 * H]), \
                    torch.sigmoid(a[:, 3 * H:])
                c = f * c + i * g
                h = o * torch.tanh(self.norm(c, 1) * self.gamma_c + self.beta_c)
                out.append(h)
            return torch.stack(out, 1)

    return NormLSTM()


def torch_steps(cell: str, H: int, bf16: bool = False) -> tuple:
    """(train step, evaluation) of torch; ``bf16``: the forward under torch.autocast("cpu", bfloat16)
    (float32 master weights and optimizer, as --precision bf16)."""
    import contextlib

    import torch
    m = torch_model(cell, H)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    ids = torch.randint(0, V, (B, T + 1))

    def loss() -> "torch.Tensor":
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            h = m["rnn"](m["embed"](ids[:, :-1]))
            h = h[0] if isinstance(h, tuple) else h
            logits = m["out"](h)
        return torch.nn.functional.cross_entropy(logits.float().reshape(-1, V), ids[:, 1:].reshape(-1))

    def train() -> None:
        opt.zero_grad()
        loss().backward()
        opt.step()

    def evaluate() -> None:
        with torch.no_grad():
            loss()
    return train, evaluate


# -- measurements --------------------------------------------------------------------------------
class Timing(NamedTuple):
    ours: float            # median seconds per call, rnnlab
    theirs: float          # the same for torch
    pairs: list[float]     # per round: torch's block median / rnnlab's (> 1: rnnlab faster)

    def spread(self) -> str:
        """The middle half of the per-round ratios: how far the ratio moved within this run."""
        q = statistics.quantiles(self.pairs, n=4) if len(self.pairs) > 1 else self.pairs * 3
        return f"{q[0]:.2f}-{q[2]:.2f}"


def side_by_side(a, b, warmup: int, seconds: float, block: float = 0.4, pause: float = 0.3,
                 min_rounds: int = 4) -> Timing:
    """Time a and b in rounds of two blocks, one per library, until each has run ``seconds``.

    Not single steps in turn: after its last call each library's worker threads
    keep spinning for a while (OpenBLAS's for up to about 0.1 s), so the other
    library's next step finds one of the two cores taken. Alternating single
    steps slowed torch's LSTM at H=128 from about 96K to 35-48K chars/s (and
    rnnlab's less), which made every ratio look better for rnnlab than it is.
    So each block comes after a pause and a warm-up call, and runs steps for at
    least ``block`` seconds; the order within a round alternates.

    Many short rounds rather than a few long blocks: this machine's speed moves
    by 10-40 % within seconds (a shared host), and a slow phase that falls on one
    library's only block decides the ratio. Short rounds spread such phases over
    both libraries. Each round's ratio of block medians is kept: their spread
    shows how much one run's ratio can be trusted.
    """
    times: tuple[list, list] = ([], [])
    pairs: list[float] = []
    while len(pairs) < min_rounds or min(map(sum, times)) < seconds:
        medians = [0.0, 0.0]
        for j in ((0, 1) if len(pairs) % 2 == 0 else (1, 0)):
            fn = (a, b)[j]
            time.sleep(pause)  # let the other library's threads go idle
            for _ in range(warmup if not pairs else 1):
                fn()
            spent: list[float] = []
            while sum(spent) < block:
                start = time.perf_counter()
                fn()
                spent.append(time.perf_counter() - start)
            times[j].extend(spent)
            medians[j] = statistics.median(spent)
        pairs.append(medians[1] / medians[0])
    return Timing(statistics.median(times[0]), statistics.median(times[1]), pairs)


def cpu_line() -> str:
    """The CPU model and the flags that decide the fast paths (from /proc/cpuinfo): the machine
    under a benchmark may differ from one day to the next."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    have = [f for f in wanted if f in flags]
    return f"CPU: {model}, {os.cpu_count()} logical CPUs; flags: {' '.join(have) or 'none of ' + ' '.join(wanted)}"


def gemm_peak(n: int = 2048, repeats: int = 5) -> float:
    import torch
    best = 0.0
    A = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    C = np.empty_like(A)
    tA, tC = torch.from_numpy(A.copy()), torch.empty(n, n)
    for mm in (lambda: np.matmul(A, A, out=C), lambda: torch.mm(tA, tA, out=tC)):
        mm()
        for _ in range(repeats):
            start = time.perf_counter()
            mm()
            best = max(best, 2 * n ** 3 / (time.perf_counter() - start))
    return best


def flops_per_char(cell: str, H: int) -> float:
    """Forward matrix-product FLOPs per character (training is 3x)."""
    G = {"lstm": 4, "gru": 3, "rnn": 1, "irnn": 1, "bnlstm": 4, "lnlstm": 4}[cell]
    sizes = [E] + [H] * (LAYERS - 1)
    return sum(2 * (D + H) * G * H for D in sizes) + 2 * H * V


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_probe(lib: str, cell: str, H: int) -> dict:
    """Run in a fresh subprocess: peak RSS growth (MB) of the first two training steps."""
    steps = rnnlab_steps if lib == "rnnlab" else torch_steps
    # Library machinery is not a training step's memory: one step of a tiny model first loads
    # it for both (torch's kernels; rnnlab's compiled steps, i.e. numba and LLVM), as the
    # import of either library is not counted either.
    rss_import = _status_kb("VmRSS")
    steps(cell, 8)[0]()
    gc.collect()
    machinery_mb = (_status_kb("VmRSS") - rss_import) / 1024
    train, _ = steps(cell, H)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: reset the peak-RSS mark (VmHWM) to the current RSS
    rss0 = _status_kb("VmRSS")
    # Two steps from a fresh model: the peak counts everything a step needs, including what
    # is kept between steps (optimizer moments, rnnlab's reused activation workspace).
    train()
    train()
    out = {"rss_mb": (_status_kb("VmHWM") - rss0) / 1024, "machinery_mb": machinery_mb}
    if lib == "rnnlab":  # NumPy reports its allocations to tracemalloc: an exact cross-check
        import tracemalloc
        tracemalloc.start()
        train()
        out["tracemalloc_mb"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return out


def measure_memory(lib: str, cell: str, H: int, threads: int) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="4096", MALLOC_TRIM_THRESHOLD_="0")
    cmd = [sys.executable, __file__, "--probe", lib, cell, str(H), "--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def sampling_rates(seconds: float) -> tuple[float, float]:
    """chars/s of temperature sampling, batch 1, LSTM H=256: rnnlab's Stepper against torch
    stepping nn.LSTM with its state, in alternating blocks (side_by_side). A call samples
    10-20 ms of characters: for rnnlab the Sampler's noise block, so that every call pays
    for one refill of its Gumbel noise; for torch 32."""
    import torch
    model = rnnlab_model("lstm", 256).eval()
    stepper, draw = Stepper(model).reset(1), Sampler(np.random.default_rng(0), temperature=0.8)
    token = np.zeros(1, dtype=np.intp)
    logits = stepper.feed(token)

    def ours() -> None:
        nonlocal logits
        for _ in range(draw.block):
            token[0] = draw(logits[0])
            logits = stepper.feed(token)

    m, theirs_per_call = torch_model("lstm", 256), 32
    x, state = torch.zeros(1, 1, dtype=torch.long), None

    def theirs() -> None:
        nonlocal x, state
        with torch.no_grad():
            for _ in range(theirs_per_call):
                h, state = m["rnn"](m["embed"](x), state)
                p = torch.softmax(m["out"](h[0, -1]) / 0.8, dim=-1)
                x = torch.multinomial(p, 1).view(1, 1)

    timing = side_by_side(ours, theirs, 1, seconds / 2, block=0.2)
    return draw.block / timing.ours, theirs_per_call / timing.theirs


# -- the report ---------------------------------------------------------------------------------
def train_rows(args, peak: float) -> dict:
    print(f"{'train':<10}{'rnnlab c/s':>11}{'torch c/s':>11}{'ratio':>7}{'rounds':>13}{'GFLOP/s':>9}{'MFU':>6}"
          f"{'torch MFU':>10}{'mem MB':>8}{'torch MB':>9}{'tracemalloc':>12}")
    times, machinery = {}, {}
    for cell in args.cells:
        for H in args.hidden:
            timing = side_by_side(rnnlab_steps(cell, H)[0], torch_steps(cell, H)[0], args.warmup, args.seconds)
            ours, theirs = timing.ours, timing.theirs
            flops = 3 * flops_per_char(cell, H) * B * T
            times[cell, H] = timing
            mem = ("", "", "")
            if not args.no_memory:
                m_ours, m_theirs = (measure_memory(lib, cell, H, args.threads) for lib in ("rnnlab", "torch"))
                mem = (f"{m_ours['rss_mb']:.0f}", f"{m_theirs['rss_mb']:.0f}", f"{m_ours['tracemalloc_mb']:.0f}")
                machinery = {"rnnlab": m_ours["machinery_mb"], "torch": m_theirs["machinery_mb"]}
            print(f"{cell} {H:<5}{B * T / ours:>11.0f}{B * T / theirs:>11.0f}{theirs / ours:>7.2f}"
                  f"{timing.spread():>13}{flops / ours / 1e9:>9.1f}{flops / ours / peak:>6.0%}{flops / theirs / peak:>10.0%}"
                  f"{mem[0]:>8}{mem[1]:>9}{mem[2]:>12}", flush=True)
    if machinery:
        print(f"memory loaded once per process by a tiny model's first step, not counted above: "
              f"rnnlab {machinery['rnnlab']:.0f} MB (element-wise steps: {accel.describe()}), "
              f"torch {machinery['torch']:.0f} MB")
    return times


def other_rows(args) -> dict:
    """Training rows for the other cells: against torch nn.RNN, or against rnnlab's LSTM and a torch
    model with the same equations (the normalised LSTMs). Returns {(cell, H): step time / LSTM's}."""
    print(f"{'other':<12}{'rnnlab c/s':>11}  {'against':<22}{'c/s':>9}{'ratio':>7}{'rounds':>13}{'x LSTM':>8}")
    extra = {}
    for cell in args.other_cells:
        for H in args.hidden:
            ours = rnnlab_steps(cell, H)[0]
            norm = cell in ("bnlstm", "lnlstm")
            against = [("rnnlab lstm", rnnlab_steps("lstm", H)[0])] if norm else []
            label = "torch, same equations" if norm else f"torch nn.RNN {'relu' if cell == 'irnn' else 'tanh'}"
            against.append((label, torch_steps(cell, H)[0]))
            for k, (label, theirs) in enumerate(against):
                timing = side_by_side(ours, theirs, args.warmup, args.seconds)
                slower = ""
                if label == "rnnlab lstm":
                    extra[cell, H] = timing.ours / timing.theirs
                    slower = f"{extra[cell, H]:.2f}"
                name = f"{cell} {H}" if k == 0 else ""
                print(f"{name:<12}{B * T / timing.ours:>11.0f}  {label:<22}{B * T / timing.theirs:>9.0f}"
                      f"{timing.theirs / timing.ours:>7.2f}{timing.spread():>13}{slower:>8}", flush=True)
    return extra


def eval_rows(args, train_times: dict | None) -> dict:
    """The evaluation rows; the eval/train column only where training was timed (not --eval-only)."""
    print(f"{'eval':<10}{'rnnlab c/s':>11}{'torch c/s':>11}{'ratio':>7}{'rounds':>13}{'eval/train':>11}")
    times = {}
    for cell in args.cells:
        for H in args.hidden:
            timing = side_by_side(rnnlab_steps(cell, H)[1], torch_steps(cell, H)[1], args.warmup, args.seconds)
            ours, theirs = timing.ours, timing.theirs
            times[cell, H] = timing
            per_train = f"{train_times[cell, H].ours / ours:.2f}" if train_times else ""
            print(f"{cell} {H:<5}{B * T / ours:>11.0f}{B * T / theirs:>11.0f}{theirs / ours:>7.2f}"
                  f"{timing.spread():>13}{per_train:>11}", flush=True)
    return times


def bf16_rows(args, whats: tuple = ("train", "eval")) -> dict:
    """--precision bf16: rnnlab's bf16 products against torch's bf16 autocast, training and evaluation,
    each in alternating rounds (the fp32 rows above are the baseline). A torch bf16 configuration
    that fails says so in its row."""
    print(f"{'bf16':<16}{'rnnlab c/s':>11}{'torch c/s':>11}{'ratio':>7}{'rounds':>13}")
    times = {}
    for what in whats:
        k = ("train", "eval").index(what)
        for cell in [c for c in args.cells if c in BF16_CELLS]:
            for H in args.hidden:
                name = f"{what} {cell} {H}"
                theirs = torch_steps(cell, H, bf16=True)[k]
                try:
                    theirs()
                except Exception as exc:   # noqa: BLE001  (reported in the row)
                    print(f"{name:<16}torch bf16 autocast cannot run: {type(exc).__name__}: {exc}"[:160])
                    continue
                timing = side_by_side(rnnlab_steps(cell, H, "bf16")[k], theirs, args.warmup, args.seconds)
                times[what, cell, H] = timing
                print(f"{name:<16}{B * T / timing.ours:>11.0f}{B * T / timing.theirs:>11.0f}"
                      f"{timing.theirs / timing.ours:>7.2f}{timing.spread():>13}", flush=True)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="H=256 only, shorter timing: about a minute")
    p.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    p.add_argument("--other-cells", nargs="*", default=["rnn", "irnn", "bnlstm", "lnlstm"],
                   help="cells timed in training only, after the main table (none: --other-cells)")
    p.add_argument("--hidden", nargs="+", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None,
                   help="timed seconds per library and configuration (default 5, --quick 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--eval-only", action="store_true",
                   help="only the evaluation rows (no training, other-cell, memory or sampling rows)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: after the fp32 rows, rnnlab --precision bf16 against torch's bf16 autocast "
                        "(training and evaluation; needs AVX512_BF16 or AMX and the mkl extra)")
    p.add_argument("--probe", nargs=3, metavar=("LIB", "CELL", "H"), help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    if args.probe:
        lib, cell, H = args.probe
        print(json.dumps(memory_probe(lib, cell, int(H))))
        return 0
    if args.precision == "bf16" and precision.unavailable_reason("bf16"):
        print(f"benchmark: {precision.unavailable_reason('bf16')}", file=sys.stderr)
        return 2
    emulated = args.precision == "bf16" and precision.emulation_allowed()
    args.hidden = args.hidden or ([256] if args.quick else [128, 256, 512])
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    args.warmup = 1 if args.quick else 2
    peak = gemm_peak()
    blas = os.environ.get("OPENBLAS_NUM_THREADS", f"default ({os.cpu_count()})")
    print(f"B={B} T={T} V={V} E={E} layers={LAYERS} float32, torch {torch.__version__} threads "
          f"{torch.get_num_threads()}, numpy {np.__version__} OpenBLAS threads {blas}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"rnnlab element-wise steps: {accel.describe()}")
    print(cpu_line())
    from rnnlab.blas import choice_cache

    record = choice_cache.path()
    print(f"rnnlab products: RNNLAB_BLAS={blas_choice.requested()} (auto: the faster of OpenBLAS and "
          "packed oneMKL per step shape, and of OpenBLAS and oneMKL sgemm per whole-sequence product of at least "
          f"{blas_choice.GEMM_MIN_MACS} multiply-adds, timed when first used"
          + (f" or taken from this machine's record {record}, which `rnnlab blas --clear` empties" if record else "")
          + "; the choices are listed at the end)")
    if args.precision == "bf16":
        print(f"rnnlab bf16 products: oneMKL cblas_gemm_bf16bf16f32 ({precision.cpu_vendor() or 'unknown vendor'}"
              + ("; RNNLAB_BF16_EMULATED=1: oneMKL may only emulate bf16 on this CPU)" if emulated else ")"))
    print(f"measured float32 GEMM peak: {peak / 1e9:.1f} GFLOP/s")
    for cell in args.cells:
        for H in args.hidden:
            print(f"FLOPs per char {cell} H={H}: train {3 * flops_per_char(cell, H) / 1e6:.2f} M, "
                  f"eval {flops_per_char(cell, H) / 1e6:.2f} M")
    if args.eval_only:
        eval_times = eval_rows(args, None)
        if args.precision == "bf16":
            bf16_rows(args, ("eval",))
        print(f"rnnlab BLAS choices (step products BxKxN@threads, whole-sequence products MxKxN:ab@threads): "
              f"{blas_choice.choices()['chosen']}")
        print(f"float32 GEMM peak measured again at the end: {gemm_peak() / 1e9:.1f} GFLOP/s")
        print(f"min eval ratio vs torch: {min(t.theirs / t.ours for t in eval_times.values()):.2f}")
        return 0
    train_times = train_rows(args, peak)
    extra = other_rows(args) if args.other_cells else {}
    eval_times = eval_rows(args, train_times)
    if args.precision == "bf16":
        bf16_rows(args)
    ours, theirs = sampling_rates(args.seconds)
    print(f"sampling (batch 1, LSTM H=256, 2 layers): rnnlab {ours:.0f} chars/s, torch {theirs:.0f} chars/s")
    # The machine's speed drifts (shared host): a second peak shows how far the MFU columns can be trusted.
    print(f"float32 GEMM peak measured again at the end: {gemm_peak() / 1e9:.1f} GFLOP/s")
    if extra:
        print(f"max normalised-LSTM step time over the LSTM's: {max(extra.values()):.2f}")
    print(f"rnnlab BLAS choices (step products BxKxN@threads, whole-sequence products MxKxN:ab@threads): "
          f"{blas_choice.choices()['chosen']}")
    print(f"min eval ratio vs torch: {min(t.theirs / t.ours for t in eval_times.values()):.2f}")
    print(f"min ratio vs torch: {min(t.theirs / t.ours for t in train_times.values()):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
