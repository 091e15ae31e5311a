"""The cost of ``--context N`` in prediction: rnnlab with and without context, and against torch on the same rows.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_context.py --dataset ncbi-disease
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_context.py --synthetic

Prediction as ``tag eval`` runs it: the dev split's sentences in file order, batches of up to 128
(sorted by length, 40 tokens a row on average), each row the sentence with its N neighbours on each
side (``rnnlab.tasks.tagging.context``); timed is the model's work on ready batches: forward,
keeping the sentences' own positions, Viterbi. The default model (untrained: the cost does not
depend on the weights), float32, one thread. torch (``tests/tasks/tagging/torch_tagger.py``, the
parity test's model, ``nn.LSTM`` over packed rows) reads the same extended rows, gathers the
same positions and decodes them, so its ratio is like for like. Printed per N: sentences/s of
both and the ratio rnnlab / torch (rounds alternate, ``benchmarks/throughput.py``), then rnnlab's
cost with context N against N = 0 (timed side by side too), and with ``--train`` the same for
training steps as ``tag train`` takes them (batches of 8 of the training split, forward, loss on
the sentences, backward; ``TaggingTask.forward_backward``, no optimizer step).
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

from throughput import cpu_line, side_by_side  # noqa: E402

from rnnlab.module import no_grad  # noqa: E402
from rnnlab.tasks.tagging.context import sentence_emissions  # noqa: E402
from rnnlab.tasks.tagging.data import convert_sentences, load_dataset  # noqa: E402
from rnnlab.tasks.tagging.model import TaggerModel  # noqa: E402
from rnnlab.tasks.tagging.synthetic import synthetic_sentences  # noqa: E402
from rnnlab.tasks.tagging.task import TagConfig, TaggingTask, model_spec, sentence_batches  # noqa: E402
from rnnlab.tasks.tagging.vocab import build_vocabs  # noqa: E402


def torch_tagger_module():
    spec = importlib.util.spec_from_file_location("torch_tagger", ROOT / "tests" / "tasks" / "tagging" / "torch_tagger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--dataset", default="ncbi-disease", help="ncbi-disease (default) or conll2000")
    p.add_argument("--synthetic", action="store_true", help="generated sentences instead of a dataset")
    p.add_argument("--context", default="1,2", help="context sizes to time against 0 (default 1,2)")
    p.add_argument("--train", action="store_true", help="also time training steps with and without context")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per side and measurement")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    if args.synthetic:
        train = dev = convert_sentences(synthetic_sentences(1000, seed=0, max_len=40), "BIOES")
    else:
        corpus = load_dataset(args.dataset, args.data_dir, scheme="BIOES")
        train, dev = corpus.train, corpus.dev
    vocabs = build_vocabs(train, scheme="BIOES")
    model = TaggerModel(**model_spec(TagConfig(), vocabs)).eval()
    tm = torch_tagger_module().TorchTagger(model).float().eval()

    def ours(batches):
        def run() -> None:
            with no_grad():
                for b in batches:
                    em, _, target = sentence_emissions(model, b)
                    model.decode(em, target.lengths)
        return run

    def theirs(batches):
        def run() -> None:
            with torch.no_grad():
                for b in batches:
                    em = tm.emissions(b)
                    lengths = torch.from_numpy(np.asarray(b.lengths))
                    if b.span is not None:   # the sentences' own positions, as rnnlab's gather
                        span = torch.from_numpy(b.span)
                        t = torch.arange(int(span[:, 1].max()))
                        live = t[None, :] < span[:, 1:]
                        pos = torch.where(live, span[:, :1] + t[None, :], torch.zeros_like(t[None, :]))
                        em = em.gather(1, pos[..., None].expand(-1, -1, em.shape[2])) * live[..., None]
                        lengths = span[:, 1]
                    tm.crf.decode(em, lengths)
        return run

    print(cpu_line())
    n_sent = len(dev)
    sizes = [0] + [int(x) for x in args.context.split(",") if x]
    batches = {n: sentence_batches(dev, vocabs, 30, None, n, 256, 128) for n in sizes}
    print(f"{'synthetic' if args.synthetic else args.dataset + ' dev'}: {n_sent} sentences, "
          f"{sum(len(s) for s in dev)} tokens")
    print(f"{'context':<8}{'row tokens':>11}{'rnnlab sent/s':>15}{'torch sent/s':>14}{'ratio':>7}{'rounds':>13}")
    for n in sizes:
        timing = side_by_side(ours(batches[n]), theirs(batches[n]), 1, args.seconds, block=1e-9, pause=0.2)
        tokens = sum(int(b.lengths.sum()) for b in batches[n])
        print(f"{n:<8}{tokens:>11}{n_sent / timing.ours:>15.0f}{n_sent / timing.theirs:>14.0f}"
              f"{timing.theirs / timing.ours:>7.2f}{timing.spread():>13}")
    for n in sizes[1:]:
        timing = side_by_side(ours(batches[0]), ours(batches[n]), 1, args.seconds, block=1e-9, pause=0.2)
        print(f"rnnlab, context {n} against 0: {timing.theirs / timing.ours:.2f}x the time "
              f"(rounds {timing.spread().strip()})")
    for n in sizes[1:] if args.train else ():
        steps = {}
        for k in (0, n):
            task = TaggingTask(TagConfig(dataset="x", context=k), vocabs, train, dev)
            steps[k] = [task.next_batch() for _ in range(200)]

        def step(k, where={0: 0, n: 0}):
            def run() -> None:
                model.train()
                model.zero_grad()
                task.forward_backward(model, steps[k][where[k] % 200], None)
                where[k] += 1
            return run
        timing = side_by_side(step(0), step(n), 2, args.seconds)
        print(f"rnnlab training steps (batches of 8), context {n} against 0: {timing.theirs / timing.ours:.2f}x the "
              f"time (rounds {timing.spread().strip()}); {8 / timing.ours:.0f} / {8 / timing.theirs:.0f} sent/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
