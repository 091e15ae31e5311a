"""Label consistency after decoding (``--propagate``), measured on trained runs: entity F1 of each setting.

    PYTHONPATH=src python benchmarks/tagging_propagate.py RUN1 RUN2 RUN3 --data-dir DIR [--split dev]
    PYTHONPATH=src python benchmarks/tagging_propagate.py RUN1 RUN2 RUN3 --split test --windows 3 --no-grid

Each run's best checkpoint tags its own split once (``--split dev``, the default; the test split
only when asked, to read once the setting the dev split chose); the predictions are kept in
``--cache`` (a file per run and split, with the model's posterior marginals) so a second call costs no model work. Then every
setting (off, and each window of ``--windows`` with and without the abbreviation rule and the
majority vote, at each threshold of the confidence gate, ``--confidence`` and ``--support``) rewrites
the predictions (``rnnlab.tasks.tagging.consistency.propagate``) and is scored with conlleval's
rules. Printed per setting: each run's F1, the mean and standard deviation over runs, the mean
change against off, and the entities the pass added (and how many of them are gold entities).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnlab.tasks.tagging.consistency import Propagation, confidence_of, parse_window, propagate  # noqa: E402
from rnnlab.tasks.tagging.metrics import evaluate  # noqa: E402
from rnnlab.tasks.tagging.schemes import chunks  # noqa: E402
from rnnlab.tasks.tagging.task import TagConfig, load_corpus, load_run, predict_tags  # noqa: E402


def predictions(run: str, split: str, data_dir: str, cache: Path) -> tuple[list, list[list[str]], str, list]:
    """(gold sentences, predicted tags, the model's scheme, the model's confidence in each sentence's tags)
    of one run's split, cached."""
    loaded = load_run(run)
    cfg = TagConfig.from_dict(loaded.config)
    if data_dir:
        cfg.data_dir = data_dir
    sentences = getattr(load_corpus(cfg), split)
    key = hashlib.sha256(f"{Path(loaded.path).resolve()}:{loaded.path.stat().st_mtime_ns}:{split}".encode())
    path = cache / f"{key.hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as f:
            tags = json.loads(str(f["tags"]))
            marginals = np.split(f["marginals"], np.cumsum([len(t) for t in tags])[:-1])
    else:
        marginals: list = []
        tags, _ = predict_tags(loaded.model, loaded.vocabs, sentences, loaded.scheme, 128, loaded.max_word_len,
                               lm=loaded.lm, context=loaded.context, context_max_len=loaded.context_max_len,
                               marginals=marginals)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, tags=json.dumps(tags), marginals=np.concatenate(marginals))
    names = loaded.vocabs.tags.itos
    return sentences, tags, loaded.scheme, [confidence_of(t, m, names) for t, m in zip(tags, marginals)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="tagger run folders (e.g. seeds 0, 1, 2 of one corpus)")
    p.add_argument("--data-dir", default="", help="folder of the named datasets (default: the runs' own)")
    p.add_argument("--split", choices=("dev", "test"), default="dev")
    p.add_argument("--windows", default="0,1,3,10,doc", help="windows to score (sentences each side; doc: all)")
    p.add_argument("--abbreviations", choices=("both", "on", "off"), default="both")
    p.add_argument("--vote", choices=("both", "on", "off"), default="both", help="the majority-vote rule")
    p.add_argument("--compounds", choices=("both", "on", "off"), default="on",
                   help="on: occurrences next to a hyphen are left alone (the pass's rule); off: tagged too")
    p.add_argument("--confidence", default="0", help="thresholds of the confidence gate's source rule to score "
                   "(--propagate-confidence), comma-separated")
    p.add_argument("--support", default="0", help="thresholds of its target rule (--propagate-support)")
    p.add_argument("--rounds", type=int, default=0, help="rounds of the pass (0: to the fixed point)")
    p.add_argument("--cache", default="/tmp/rnnlab-propagate-cache", help="folder of cached predictions")
    p.add_argument("--json", default="", help="also write the table as JSON here")
    args = p.parse_args()

    data = [predictions(run, args.split, args.data_dir, Path(args.cache)) for run in args.runs]
    settings = [(Propagation(), True)]
    for w in args.windows.split(","):
        for abbr in {"both": (False, True), "on": (True,), "off": (False,)}[args.abbreviations]:
            for vote in {"both": (False, True), "on": (True,), "off": (False,)}[args.vote]:
                for comp in {"both": (True, False), "on": (True,), "off": (False,)}[args.compounds]:
                    for tau in (float(v) for v in args.confidence.split(",")):
                        for rho in (float(v) for v in args.support.split(",")):
                            settings.append((Propagation(parse_window(w), abbr, vote, tau, rho), comp))
    print(f"{args.split} split, runs: {', '.join(args.runs)}")
    print(f"{'setting':<96}{'F1 per run':<26}{'mean':>7}{'std':>6}{'change':>8}{'added':>7}{'gold':>6}")
    rows, base = [], None
    for setting, comp in settings:
        f1s, added, hits = [], 0, 0
        for sentences, tags, scheme, confidence in data:
            new = propagate([s.tokens for s in sentences], tags, scheme, setting, [s.doc for s in sentences],
                            args.rounds, comp, confidence)
            f1s.append(100 * evaluate([s.tags for s in sentences], new).f1)
            for s, old, now in zip(sentences, tags, new):
                extra = set(chunks(now)) - set(chunks(old))
                added += len(extra)
                hits += len(extra & set(chunks(s.tags)))
        mean = statistics.mean(f1s)
        std = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        base = mean if base is None else base
        name = setting.describe() + ("" if comp or not setting.on else ", next to hyphens too")
        print(f"{name:<96}{' '.join(f'{f:.2f}' for f in f1s):<26}{mean:>7.2f}{std:>6.2f}{mean - base:>+8.2f}"
              f"{added / len(data):>7.1f}{hits / len(data):>6.1f}")
        rows.append({"setting": name, "window": setting.window, "abbreviations": setting.abbreviations,
                     "vote": setting.vote, "compounds": comp,
                     "confidence": setting.source, "support": setting.target,
                     "f1": f1s, "mean": mean, "std": std, "change": mean - base, "added_per_run": added / len(data),
                     "gold_per_run": hits / len(data)})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
