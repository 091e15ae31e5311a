"""rnnlab vs PyTorch: the same character LM, the same data and budget, one after the other.

    python benchmarks/charlm_vs_torch.py ../shared/data/nietzsche.txt --minutes 10

Both models: Embedding(V, E) -> {LSTM,GRU,RNN}(E, H, L) -> [dropout] -> Linear(H, V),
softmax cross-entropy, the same optimizer and global-norm clipping, the same
90/5/5 contiguous split, the same B parallel streams of T characters with
the hidden state carried across batches (truncated BPTT), the same
validation scoring (every position of the validation streams). Each trains
for the same wall-clock budget; the best validation bits/char is reported.
Prints, for each, training chars/s and validation bits/char, then the ratios.
``--baseline`` adds the teaching configuration (min-char-rnn style: batch 1,
tanh RNN, hidden 100, unroll 25, one-hot, Adagrad 0.1, clip +-5) in rnnlab.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnlab.data import EncodedCorpus, StreamBatcher, eval_batches  # noqa: E402
from rnnlab.train import TrainConfig, train  # noqa: E402
from rnnlab.optim import make_schedule  # noqa: E402
from rnnlab.train.progress import MetricsLog  # noqa: E402
from rnnlab.train.trainer import scheduled_lr  # noqa: E402

LN2 = math.log(2)


def torch_run(cfg: TrainConfig, corpus: EncodedCorpus, minutes: float, eval_every: int) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(cfg.seed)
    V = len(corpus.vocab)
    rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cfg.cell]

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(V, cfg.embedding_size)
            self.rnn = rnn_cls(cfg.embedding_size, cfg.hidden_size, cfg.num_layers, batch_first=True,
                               dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
            self.drop = nn.Dropout(cfg.dropout)
            self.out = nn.Linear(cfg.hidden_size, V)

        def forward(self, x, state):
            h, state = self.rnn(self.embed(x), state)
            return self.out(self.drop(h)), state

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    train_ids, val_ids, _ = corpus.split(cfg.split)
    batcher = StreamBatcher(train_ids, cfg.batch_size, cfg.seq_len)

    def detach(state):
        if state is None:
            return None
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    def evaluate() -> float:
        model.eval()
        total, count, state = 0.0, 0, None
        with torch.no_grad():
            for b in eval_batches(val_ids, cfg.batch_size, cfg.seq_len):
                logits, state = model(torch.from_numpy(b.x), state)
                loss = nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(b.y).reshape(-1),
                                                   reduction="sum")
                total += float(loss)
                count += b.y.size
        model.train()
        return total / count

    best, step, state, train_time = math.inf, 0, None, 0.0
    schedule = make_schedule(cfg.schedule, cfg.lr, warmup_steps=cfg.warmup_steps,
                             **({"total_steps": max(cfg.max_steps, 1)} if cfg.schedule == "cosine" else {}))
    while train_time < minutes * 60:
        t0 = time.perf_counter()
        for group in opt.param_groups:  # the very schedule rnnlab's trainer follows
            group["lr"] = scheduled_lr(cfg, schedule, step, train_time)
        b = batcher.next_batch()
        if b.index == 0:
            state = None
        logits, state = model(torch.from_numpy(b.x), state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(b.y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        if cfg.clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        state = detach(state)
        step += 1
        train_time += time.perf_counter() - t0
        if step % eval_every == 0:
            best = min(best, evaluate())
    best = min(best, evaluate())
    return {"steps": step, "chars_per_s": step * cfg.batch_size * cfg.seq_len / train_time, "val_bpc": best / LN2}


def rnnlab_run(cfg: TrainConfig, minutes: float, out: Path) -> dict:
    summary = train(cfg, out=str(out), log=lambda *a: None, force=True)
    rows = [r for r in MetricsLog(out / "metrics.jsonl").read() if r.get("split") == "train"]
    steps = summary["steps"]
    chars = steps * cfg.batch_size * cfg.seq_len
    return {"steps": steps, "chars_per_s": chars / summary["elapsed_s"], "val_bpc": summary["best_val_bpc"],
            "last_rate": rows[-1]["rate"] if rows else float("nan")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", help="training text (e.g. ../shared/data/nietzsche.txt)")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget for each framework")
    p.add_argument("--cell", default=None, help="override the cell (default: rnnlab's default)")
    p.add_argument("--hidden-size", type=int, default=None)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig setting for both sides, e.g. --set schedule=cosine --set lr=3e-3")
    p.add_argument("--only", choices=["rnnlab", "torch"], help="run one side only")
    p.add_argument("--baseline", action="store_true", help="also run the min-char-rnn-style teaching baseline")
    p.add_argument("--out", default="runs/bench", help="folder for rnnlab's run")
    args = p.parse_args()

    overrides = {k: v for k, v in (("cell", args.cell), ("hidden_size", args.hidden_size),
                                   ("dropout", args.dropout), ("eval_every", args.eval_every)) if v is not None}
    defaults = TrainConfig()
    for item in args.set:
        key, _, value = item.partition("=")
        if not hasattr(defaults, key):
            p.error(f"unknown setting {key!r}")
        overrides[key] = type(getattr(defaults, key))(value)
    cfg = TrainConfig(corpus=args.text, max_minutes=args.minutes, **overrides).validate()
    corpus = EncodedCorpus.from_source(args.text)
    print(f"corpus {args.text}: {len(corpus):,} chars, vocab {len(corpus.vocab)}; budget {args.minutes} min each")
    print(f"config: {cfg.cell} {cfg.num_layers}x{cfg.hidden_size}, embedding {cfg.embedding_size}, dropout "
          f"{cfg.dropout}, B={cfg.batch_size} T={cfg.seq_len}, {cfg.optimizer} lr {cfg.lr} ({cfg.schedule}), "
          f"clip {cfg.clip}")
    results = {}
    if args.only != "torch":
        results["rnnlab"] = rnnlab_run(cfg, args.minutes, Path(args.out) / "rnnlab")
        print(f"rnnlab : {results['rnnlab']['chars_per_s']:>9,.0f} chars/s  {results['rnnlab']['steps']:>6} steps  "
              f"validation {results['rnnlab']['val_bpc']:.4f} bits/char", flush=True)
    if args.only != "rnnlab":
        results["torch"] = torch_run(cfg, corpus, args.minutes, cfg.eval_every)
        print(f"torch  : {results['torch']['chars_per_s']:>9,.0f} chars/s  {results['torch']['steps']:>6} steps  "
              f"validation {results['torch']['val_bpc']:.4f} bits/char", flush=True)
    if len(results) == 2:
        r, t = results["rnnlab"], results["torch"]
        print(f"ratio rnnlab/torch: speed {r['chars_per_s'] / t['chars_per_s']:.2f}x; "
              f"validation bits/char {r['val_bpc']:.4f} vs {t['val_bpc']:.4f} "
              f"({'rnnlab' if r['val_bpc'] <= t['val_bpc'] else 'torch'} lower)")
    if args.baseline:
        base = TrainConfig(corpus=args.text, cell="rnn", hidden_size=100, num_layers=1, embedding_size=0,
                           batch_size=1, seq_len=25, optimizer="adagrad", lr=0.1, clip=0.0, clip_value=5.0,
                           eval_every=2000, eval_chars=0, max_minutes=args.minutes).validate()
        b = rnnlab_run(base, args.minutes, Path(args.out) / "baseline")
        print(f"teaching baseline (rnnlab, batch 1, tanh RNN 100, Adagrad): {b['chars_per_s']:,.0f} chars/s, "
              f"validation {b['val_bpc']:.4f} bits/char")
    return 0


if __name__ == "__main__":
    sys.exit(main())
