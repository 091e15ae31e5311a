"""The BiLSTM-CRF tagger: rnnlab against the same model in PyTorch, side by side in one process.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_vs_torch.py            # NCBI-disease batches
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_vs_torch.py --synthetic # no data needed

Model, identical in both (weights copied from rnnlab's into torch): word embeddings (100),
case embeddings (8), a character BiLSTM (25 per direction over 25-dim character embeddings),
a word BiLSTM (100 per direction), dropout 0.5, a linear layer to the tags, and a
linear-chain CRF (BIOES tags). torch: ``nn.LSTM`` over packed sequences for both BiLSTMs
and the CRF's forward algorithm and gold score in torch, differentiated by autograd, Viterbi
in torch (``tests/tasks/tagging/torch_tagger.py``, the model the parity test checks
rnnlab's against in float64). Both run the character BiLSTM once per distinct spelling of the
batch, the same algorithm (``--torch-every-token`` makes torch run it per token, as a naive
torch implementation does).

The same batches (length-bucketed, ``--batch-size`` sentences) for both, float32, the same
thread count (torch.set_num_threads(--threads), OMP/OpenBLAS threads from the environment:
set OMP_NUM_THREADS=--threads). A training step is zero-grad, forward, CRF loss, backward,
global-norm clipping (5) and the Adam update; prediction is eval mode, no gradients,
forward and Viterbi. The two libraries alternate in short rounds
(``benchmarks/throughput.py``'s ``side_by_side``), so both see the same machine load; the
"rounds" column is the middle half of the per-round ratios. Printed: sentences/s for each
library and the ratio rnnlab / torch (above 1: rnnlab faster).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import side_by_side  # noqa: E402

from rnnlab.module import no_grad  # noqa: E402
from rnnlab.optim import clip_grad_norm, make_optimizer  # noqa: E402
from rnnlab.tasks.tagging.data import convert_sentences, load_dataset  # noqa: E402
from rnnlab.tasks.tagging.model import TaggerModel  # noqa: E402
from rnnlab.tasks.tagging.synthetic import synthetic_sentences  # noqa: E402
from rnnlab.tasks.tagging.task import TagConfig, model_spec  # noqa: E402
from rnnlab.tasks.tagging.vocab import build_vocabs, encode, make_batches  # noqa: E402


def torch_tagger_module():
    path = ROOT / "tests" / "tasks" / "tagging" / "torch_tagger.py"
    spec = importlib.util.spec_from_file_location("torch_tagger", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batches(args) -> tuple[list, object]:
    if args.synthetic:
        sentences = convert_sentences(synthetic_sentences(2000, seed=0, max_len=40), "BIOES")
    else:
        sentences = load_dataset("ncbi-disease", args.data_dir, scheme="BIOES").train
    vocabs = build_vocabs(sentences, scheme="BIOES")
    found = make_batches(encode(sentences, vocabs, 30), args.batch_size, shuffle=True, seed=0)
    return found, vocabs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="folder holding ncbi-disease")
    p.add_argument("--synthetic", action="store_true", help="generated sentences instead of NCBI-disease")
    p.add_argument("--batch-size", type=int, default=16, help="sentences per batch (default 16)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (set OMP_NUM_THREADS to match)")
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per library and measurement")
    p.add_argument("--no-crf", action="store_true", help="softmax output layer instead of the CRF")
    p.add_argument("--no-chars", action="store_true", help="no character BiLSTM")
    p.add_argument("--torch-every-token", action="store_true", help="torch runs the char BiLSTM per token")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    found, vocabs = batches(args)
    cfg = TagConfig(crf=not args.no_crf, chars=not args.no_chars)
    model = TaggerModel(**model_spec(cfg, vocabs))
    tm = torch_tagger_module().TorchTagger(model, unique_chars=not args.torch_every_token)
    tm.float()
    opt = make_optimizer("adam", model.named_parameters(), lr=1e-3)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    state = {"ours": 0, "theirs": 0, "ours_p": 0, "theirs_p": 0}

    def next_batch(key: str):
        b = found[state[key] % len(found)]
        state[key] += 1
        return b

    def ours_train() -> None:
        batch = next_batch("ours")
        model.train()
        model.zero_grad()
        em, cache = model.forward(batch)
        loss, lc = model.loss(em, batch)
        model.backward(model.loss_backward(lc), cache)
        clip_grad_norm(opt.params, 5.0)
        opt.step()

    def theirs_train() -> None:
        batch = next_batch("theirs")
        tm.train()
        topt.zero_grad()
        em = tm.emissions(batch)
        tm.loss(em, batch).backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 5.0)
        topt.step()

    def ours_predict() -> None:
        batch = next_batch("ours_p")
        model.eval()
        with no_grad():
            em, _ = model.forward(batch)
            model.decode(em, batch.lengths)

    def theirs_predict() -> None:
        batch = next_batch("theirs_p")
        tm.eval()
        tm.predict(batch)

    sizes = [b.size for b in found]
    per_batch = float(np.mean(sizes))
    print(f"{'synthetic' if args.synthetic else 'NCBI-disease train'}: {len(found)} batches of up to "
          f"{args.batch_size} sentences (mean {per_batch:.1f}, {np.mean([b.tokens for b in found]):.0f} tokens), "
          f"threads {args.threads}, CRF {not args.no_crf}, chars {not args.no_chars}"
          f"{', torch char BiLSTM per token' if args.torch_every_token else ''}")
    print(f"{'':<10}{'rnnlab sent/s':>14}{'torch sent/s':>14}{'ratio':>7}{'rounds':>13}")
    ratios = []
    for name, a, b in (("train", ours_train, theirs_train), ("predict", ours_predict, theirs_predict)):
        timing = side_by_side(a, b, 3, args.seconds)
        # the step time varies with the batch: compare totals over the same batch sequence
        ratio = timing.theirs / timing.ours
        ratios.append(ratio)
        print(f"{name:<10}{per_batch / timing.ours:>14.0f}{per_batch / timing.theirs:>14.0f}{ratio:>7.2f}"
              f"{timing.spread():>13}")
    print(f"min ratio vs torch: {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
