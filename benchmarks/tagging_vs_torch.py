"""The BiLSTM-CRF tagger: rnnlab against the same model in PyTorch, side by side in one process.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_vs_torch.py            # NCBI-disease batches
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_vs_torch.py --synthetic # no data needed
    # with the char-LM features counted (two `rnnlab train` runs, the second --reverse)
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_vs_torch.py --dataset conll2000 --lm FWD,BWD
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tagging_vs_torch.py --dataset conll2000 --lm FWD,BWD --lm-cached

Model, identical in both (weights copied from rnnlab's into torch): word embeddings (100),
case embeddings (8), a character BiLSTM (25 per direction over 25-dim character embeddings),
a word BiLSTM (100 per direction), dropout 0.5, a linear layer to the tags, and a
linear-chain CRF (BIOES tags). torch: ``nn.LSTM`` over packed sequences for both BiLSTMs
and the CRF's forward algorithm and gold score in torch, differentiated by autograd, Viterbi
in torch (``tests/tasks/tagging/torch_tagger.py``, the model the parity test checks
rnnlab's against in float64). Both run the character BiLSTM once per distinct spelling of the
batch, the same algorithm (``--torch-every-token`` makes torch run it per token, as a naive
torch implementation does).

``--lm FWD_RUN,BWD_RUN`` adds the frozen char-LM features (Akbik et al. 2018; two ``rnnlab train``
runs, the second ``--reverse``) and makes both sides pay for them at every step: each batch's
sentences are read by both LMs (no cache; the tagger's own training caches them once per sentence,
so this is the cost of the first epoch and of tagging new text), rnnlab through its
``LMFeatures``, torch through ``nn.LSTM`` copies of the same LMs (checked equal to rnnlab's features
before timing), and the states at each word's boundaries are the tagger's extra input.
``--lm-cached`` instead times what training does after its first pass: each side reads every
training sentence once (that one-off pass is timed and printed for both), and the steps then
take the features as an input. With ``--lm``, ``--block N`` (default 256) also times prediction as
``tag predict`` runs it: blocks of N new sentences, the LM features of the whole block (rnnlab's
``LMFeatures``: length-sorted groups of packed rows; torch: ``nn.LSTM`` over the same groups, padded,
its faster option, or ``--torch-lm-group G`` sentences at a time), then the tagger over batches of
128 (the same batches for both). ``--block-only`` skips the other measurements.

The word-LM objective of Rei (2017), on in ``tag train`` by default (weight 0.03; training only,
prediction never reads it), is timed with ``--word-lm-weight G`` (default 0.03; 0: the tagger
alone): both sides add G x the head's loss (the next word from the word BiLSTM's forward half, the
previous from its backward half, over the 7,500 most frequent training words plus one class for the
rest) to the CRF's and back-propagate it; torch's head is the same four ``nn.Linear`` layers over
the valid positions, gathered, with ``cross_entropy``.

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
from dataclasses import replace
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
from rnnlab.tasks.tagging.task import TagConfig, lm_features, model_spec, predict_tags  # noqa: E402
from rnnlab.tasks.tagging.vocab import build_vocabs, encode, make_batches  # noqa: E402
from rnnlab.tasks.tagging.wordlm import word_classes  # noqa: E402


def torch_tagger_module():
    path = ROOT / "tests" / "tasks" / "tagging" / "torch_tagger.py"
    spec = importlib.util.spec_from_file_location("torch_tagger", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batches(args) -> tuple[list, object, list]:
    if args.synthetic:
        sentences = convert_sentences(synthetic_sentences(2000, seed=0, max_len=40), "BIOES")
    else:
        sentences = load_dataset(args.dataset, args.data_dir, scheme="BIOES").train
    vocabs = build_vocabs(sentences, scheme="BIOES")
    found = make_batches(encode(sentences, vocabs, 30), args.batch_size, shuffle=True, seed=0)
    return found, vocabs, sentences


class TorchLMFeatures:
    """rnnlab's ``LMFeatures`` in torch: ``nn.LSTM`` copies of the two char LMs, no cache."""

    def __init__(self, features) -> None:
        import torch
        from torch import nn

        self.parts = []
        for lm in (features.fwd, features.bwd):
            cell = lm.model.rnn.layers[0].cell
            if len(lm.model.rnn.layers) != 1 or not hasattr(lm.model.embed, "params"):
                raise SystemExit("--lm: this benchmark copies one-layer LSTM char-LMs with an embedding")
            H = cell.hidden_size
            lstm = nn.LSTM(cell.params["W_x"].shape[0], H, batch_first=True)
            with torch.no_grad():
                lstm.weight_ih_l0.copy_(torch.from_numpy(cell.params["W_x"].T.copy()))
                lstm.weight_hh_l0.copy_(torch.from_numpy(cell.params["W_h"].T.copy()))
                lstm.bias_ih_l0.copy_(torch.from_numpy(cell.params["b"].copy()))
                lstm.bias_hh_l0.zero_()
            embed = nn.Embedding.from_pretrained(torch.from_numpy(lm.model.embed.params["W"].copy()))
            self.parts.append((lm, embed, lstm.float()))

    def __call__(self, sentences):
        """(B, T, D) float32 tensor of features, 0 on padding."""
        import torch

        texts = [" " + " ".join(tokens) + " " for tokens in sentences]
        L, T, B = max(map(len, texts)), max(map(len, sentences)), len(sentences)
        starts = np.zeros((B, T), np.int64)
        ends = np.zeros((B, T), np.int64)
        for b, tokens in enumerate(sentences):
            pos = 1
            for t, tok in enumerate(tokens):
                starts[b, t], ends[b, t] = pos, pos + max(len(tok), 1) - 1
                pos += len(tok) + 1
        out = []
        with torch.no_grad():
            for (lm, embed, lstm), where in zip(self.parts, (ends, starts)):
                ids = np.full((B, L), lm.fallback, np.int64)
                for b, text in enumerate(texts):
                    row = [lm.stoi.get(ch, lm.fallback) for ch in (text[::-1] if lm.reverse else text)]
                    ids[b, :len(row)] = row
                h, _ = lstm(embed(torch.from_numpy(ids)))
                if lm.reverse:   # position i of row b: the state after reading back to character i
                    where = np.array([[len(text) - 1 - w for w in row] for text, row in zip(texts, where)])
                out.append(h[torch.arange(B)[:, None], torch.from_numpy(where)])
        mask = torch.from_numpy(np.array([[t < len(s) for t in range(T)] for s in sentences]))
        return torch.cat(out, dim=-1) * mask[..., None]


def TorchWordLMHead(head, tt):
    """rnnlab's ``WordLMHead`` in torch (weights copied): tanh layer and softmax per direction over
    the valid positions, gathered; the summed cross-entropy over sentences, as rnnlab's."""
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.H = head.hidden_size
            self.fh, self.fo = tt._linear_from(head.fwd_hidden), tt._linear_from(head.fwd_out)
            self.bh, self.bo = tt._linear_from(head.bwd_hidden), tt._linear_from(head.bwd_out)

        def forward(self, h, lengths, classes):
            n = torch.as_tensor(np.asarray(lengths))[:, None]
            c = torch.as_tensor(classes)
            t = torch.arange(h.shape[1] - 1)[None]
            fwd, bwd = t + 1 < n, t + 1 < n     # position t predicts t + 1; position t + 1 predicts t
            zf = self.fo(torch.tanh(self.fh(h[:, :-1, :self.H][fwd])))
            zb = self.bo(torch.tanh(self.bh(h[:, 1:, self.H:][bwd])))
            total = (nn.functional.cross_entropy(zf, c[:, 1:][fwd], reduction="sum")
                     + nn.functional.cross_entropy(zb, c[:, :-1][bwd], reduction="sum"))
            return total / len(n)

    return Head()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="folder holding ncbi-disease")
    p.add_argument("--synthetic", action="store_true", help="generated sentences instead of NCBI-disease")
    p.add_argument("--dataset", default="ncbi-disease", help="ncbi-disease (default) or conll2000")
    p.add_argument("--lm", default="", help="FWD_RUN,BWD_RUN: char-LM features, computed at every step by both")
    p.add_argument("--lm-cached", action="store_true", help="with --lm: features computed once per sentence "
                   "(timed apart), then an input of the steps")
    p.add_argument("--block", type=int, default=256, help="with --lm: also time tagging blocks of this many new "
                   "sentences as `tag predict` does (0: no)")
    p.add_argument("--block-only", action="store_true", help="with --lm: only the --block measurement")
    p.add_argument("--lm-batch", type=int, default=0, help="rnnlab's LMFeatures batch (default: its own)")
    p.add_argument("--torch-lm-group", type=int, default=0, help="--block: sentences per torch LM batch (default: "
                   "the groups rnnlab's LMFeatures makes)")
    p.add_argument("--word-lm-weight", type=float, default=0.03, help="the word-LM objective's weight in the "
                   "training steps, both sides (default 0.03, tag train's; 0: the tagger alone)")
    p.add_argument("--batch-size", type=int, default=16, help="sentences per batch (default 16)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (set OMP_NUM_THREADS to match)")
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per library and measurement")
    p.add_argument("--no-crf", action="store_true", help="softmax output layer instead of the CRF")
    p.add_argument("--no-chars", action="store_true", help="no character BiLSTM")
    p.add_argument("--torch-every-token", action="store_true", help="torch runs the char BiLSTM per token")
    p.add_argument("--hidden-size", type=int, default=0, help="word BiLSTM units per direction (default: tag train's)")
    p.add_argument("--char-hidden", type=int, default=0, help="char BiLSTM units per direction (default: tag train's)")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    found, vocabs, sentences = batches(args)
    cfg = TagConfig(crf=not args.no_crf, chars=not args.no_chars, word_lm_weight=args.word_lm_weight)
    cfg.hidden_size = args.hidden_size or cfg.hidden_size
    cfg.char_hidden = args.char_hidden or cfg.char_hidden
    lm = lm_features(args.lm) if args.lm else None
    if lm is not None and args.lm_batch:
        lm.batch = args.lm_batch
    model = TaggerModel(**model_spec(cfg, vocabs, lm))
    tt = torch_tagger_module()
    tm = tt.TorchTagger(model, unique_chars=not args.torch_every_token)
    tm.float()
    gamma = cfg.word_lm_gamma()
    tlm = TorchLMFeatures(lm) if lm is not None else None

    cached: dict = {}

    def with_lm(batch, torch_side: bool):
        """The batch with its sentences' LM features, computed now (both sides pay for them)."""
        if lm is None:
            return batch
        if (id(batch), torch_side) in cached:
            return cached[id(batch), torch_side]
        tokens = [sentences[i].tokens for i in batch.index]
        if torch_side:
            return replace(batch, lm=tlm(tokens))
        lm.cache.clear()
        feats = np.zeros((batch.size, batch.words.shape[1], lm.dim), np.float32)
        for k, f in enumerate(lm(tokens)):
            feats[k, :len(f)] = f
        return replace(batch, lm=feats)

    twlm = None
    if gamma > 0:   # each batch's word-LM classes, as the task gives them (the training words' top 7,500)
        table = word_classes([e.words for e in encode(sentences, vocabs, 30)], len(vocabs.words), cfg.word_lm_vocab)
        found = [replace(b, word_classes=table[b.words]) for b in found]
        twlm = TorchWordLMHead(model.word_lm, tt).float()
        b = found[0]   # the two heads compute the same loss before anything is timed
        model.eval()
        tm.eval()
        _, c0 = model.forward(with_lm(b, False))
        ours = model.word_lm.forward(c0.h, b.lengths, b.word_classes)[0]
        with torch.no_grad():
            tm.emissions(with_lm(b, True))
            theirs = float(twlm(tm.h, b.lengths, b.word_classes))
        if abs(ours - theirs) > 1e-4 * abs(theirs):
            raise SystemExit(f"--word-lm-weight: torch's word-LM loss {theirs} differs from rnnlab's {ours}")
    if lm is not None:   # the two implementations compute the same features
        ours, theirs = with_lm(found[0], False).lm, with_lm(found[0], True).lm.numpy()
        gap = float(np.abs(ours - theirs).max())
        if gap > 1e-4:
            raise SystemExit(f"--lm: torch's char-LM features differ from rnnlab's by {gap:.2e}")
        print(f"char-LM features: {lm.dim} per token ({args.lm}); rnnlab and torch agree to {gap:.1e}")

    def torch_features(tokens: list) -> dict:
        """Each distinct sentence's (T, D) features from torch's LMs, read in the groups rnnlab's
        LMFeatures makes (length-sorted), or --torch-lm-group sentences at a time in the same order."""
        todo = sorted(set(tokens), key=lambda s: sum(map(len, s)) + len(s))
        G = args.torch_lm_group
        groups = [todo[k:k + G] for k in range(0, len(todo), G)] if G else lm.groups(todo)
        out = {}
        for group in groups:
            f = tlm(group)
            for row, toks in enumerate(group):
                out[toks] = f[row, :len(toks)]
        return out

    if lm is not None and args.lm_cached:   # one pass over every training sentence, each side, then cached
        import time

        import torch

        tokens = [s.tokens for s in sentences]
        start = time.perf_counter()
        lm.cache.clear()
        ours_all = lm(tokens)                  # rnnlab's own pass: its length-sorted groups
        spent = [time.perf_counter() - start]
        start = time.perf_counter()
        by_tokens = torch_features(tokens)     # the same groups (or --torch-lm-group) for torch
        theirs_all = [by_tokens[t] for t in tokens]
        spent.append(time.perf_counter() - start)
        for b in found:
            T = b.words.shape[1]
            ours = np.zeros((b.size, T, lm.dim), np.float32)
            theirs = torch.zeros((b.size, T, lm.dim))
            for row, i in enumerate(b.index):
                ours[row, :len(tokens[i])] = ours_all[i]
                theirs[row, :len(tokens[i])] = theirs_all[i]
            cached[id(b), False], cached[id(b), True] = replace(b, lm=ours), replace(b, lm=theirs)
        n = len(tokens)
        print(f"features of all {n:,} training sentences, once: rnnlab {spent[0]:.1f} s ({n / spent[0]:.0f} sent/s), "
              f"torch {spent[1]:.1f} s ({n / spent[1]:.0f} sent/s), ratio {spent[1] / spent[0]:.2f}")
    opt = make_optimizer("adam", model.named_parameters(), lr=1e-3)
    params = list(tm.parameters()) + (list(twlm.parameters()) if twlm is not None else [])
    topt = torch.optim.Adam(params, lr=1e-3)
    state = {"ours": 0, "theirs": 0, "ours_p": 0, "theirs_p": 0}

    def next_batch(key: str):
        b = found[state[key] % len(found)]
        state[key] += 1
        return with_lm(b, key.startswith("theirs"))

    def ours_train() -> None:
        batch = next_batch("ours")
        model.train()
        model.zero_grad()
        em, cache = model.forward(batch)
        loss, lc = model.loss(em, batch)
        dh = None
        if gamma > 0:
            _, lmc = model.word_lm.forward(cache.h, batch.lengths, batch.word_classes)
            dh = model.word_lm.backward(gamma, lmc)
        model.backward(model.loss_backward(lc), cache, dh)
        clip_grad_norm(opt.params, 5.0)
        opt.step()

    def theirs_train() -> None:
        batch = next_batch("theirs")
        tm.train()
        topt.zero_grad()
        em = tm.emissions(batch)
        loss = tm.loss(em, batch)
        if twlm is not None:
            loss = loss + gamma * twlm(tm.h, batch.lengths, batch.word_classes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
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

    blocks = [sentences[k:k + args.block] for k in range(0, len(sentences), args.block)] if args.block else []
    where = {"ours_b": 0, "theirs_b": 0}

    def next_block(key: str) -> list:
        block = blocks[where[key] % len(blocks)]
        where[key] += 1
        return block

    def ours_block() -> None:   # `tag predict`: 256 new sentences, LM features (no cache), tagger batches of 128
        lm.cache.clear()
        predict_tags(model, vocabs, next_block("ours_b"), "BIOES", lm=lm)

    def theirs_block() -> None:   # the same LM groups (or --torch-lm-group), the same tagger batches, in torch
        block = next_block("theirs_b")
        feats = torch_features([s.tokens for s in block])
        tm.eval()
        for b in make_batches(encode(block, vocabs, 30), 128, max_tokens=128 * 40):
            x = torch.zeros((b.size, b.words.shape[1], lm.dim))
            for row, i in enumerate(b.index):
                x[row, :b.lengths[row]] = feats[block[i].tokens]
            tm.predict(replace(b, lm=x))

    sizes = [b.size for b in found]
    per_batch = float(np.mean(sizes))
    print(f"{'synthetic' if args.synthetic else args.dataset + ' train'}: {len(found)} batches of up to "
          f"{args.batch_size} sentences (mean {per_batch:.1f}, {np.mean([b.tokens for b in found]):.0f} tokens), "
          f"threads {args.threads}, CRF {not args.no_crf}, chars {not args.no_chars} ({cfg.char_hidden} + {cfg.char_hidden}), "
          f"word BiLSTM {cfg.hidden_size} + {cfg.hidden_size}"
          f"{', torch char BiLSTM per token' if args.torch_every_token else ''}"
          f"{'' if lm is None else ', char-LM features ' + ('cached' if args.lm_cached else 'computed at every step')}"
          f", word-LM objective in training {gamma:g}")
    print(f"{'':<10}{'rnnlab sent/s':>14}{'torch sent/s':>14}{'ratio':>7}{'rounds':>13}")
    ratios = []
    for name, a, b in (() if args.block_only and lm is not None else
                       (("train", ours_train, theirs_train), ("predict", ours_predict, theirs_predict))):
        timing = side_by_side(a, b, 3, args.seconds)
        # the step time varies with the batch: compare totals over the same batch sequence
        ratio = timing.theirs / timing.ours
        ratios.append(ratio)
        print(f"{name:<10}{per_batch / timing.ours:>14.0f}{per_batch / timing.theirs:>14.0f}{ratio:>7.2f}"
              f"{timing.spread():>13}")
    if lm is not None and blocks:
        per_block = float(np.mean([len(b) for b in blocks]))
        timing = side_by_side(ours_block, theirs_block, 1, args.seconds)
        ratio = timing.theirs / timing.ours
        ratios.append(ratio)
        name = f"predict, blocks of {args.block} (tag predict)"
        print(f"{name}: {per_block / timing.ours:.0f} / {per_block / timing.theirs:.0f} sent/s, ratio {ratio:.2f} "
              f"(rounds {timing.spread().strip()})")
    print(f"min ratio vs torch: {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
