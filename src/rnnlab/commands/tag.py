"""``rnnlab tag train|eval|predict``: the BiLSTM-CRF sequence tagger (rnnlab.tasks.tagging)."""
from __future__ import annotations

import argparse
import json
import sys

from .configflags import add_config_flags, given_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tasks.tagging.config import TagConfig

    p = sub.add_parser("tag", help="sequence tagging (NER, chunking) with a BiLSTM-CRF",
                       description="Train, evaluate and apply a BiLSTM-CRF tagger (word, case and character "
                                   "features; Lample et al. 2016).")
    tag = p.add_subparsers(dest="tag_command", metavar="ACTION")
    tag.required = True

    t = tag.add_parser("train", help="train a tagger", description="Train a tagger on a named dataset "
                       "(ncbi-disease, conll2000) or CoNLL files. Writes a run folder (config.json, metrics.jsonl, "
                       "best.npz, last.npz); the best validation entity F1 picks best.npz, and the test split "
                       "is scored with it at the end.")
    t.add_argument("dataset", nargs="?", help="named dataset: ncbi-disease or conll2000")
    t.add_argument("--train", dest="train_file", metavar="FILE", help="training CoNLL file (token [features] tag)")
    t.add_argument("--dev", dest="dev_file", metavar="FILE", help="validation CoNLL file (needed with --train)")
    t.add_argument("--test", dest="test_file", metavar="FILE", help="test CoNLL file, scored at the end")
    t.add_argument("--data-dir", metavar="DIR", help="folder holding named datasets (default: $RNNLAB_DATA)")
    t.add_argument("--out", metavar="DIR", help="run folder (default: runs/<timestamp>, with runs/latest)")
    t.add_argument("--resume", metavar="RUN", help="continue a run exactly where it stopped, with its own "
                   "settings: budget flags given here replace its budget; other flags given must be the run's")
    t.add_argument("--force", action="store_true", help="train into an --out folder that already holds a run, "
                   "deleting its checkpoints and metrics")
    # one flag per TagConfig field, defaults and help from the dataclass; a flag left out stays None
    add_config_flags(t, TagConfig)
    t.set_defaults(run=run_train)

    e = tag.add_parser("eval", help="score a trained tagger", description="Entity precision, recall and F1 "
                       "per type (conlleval's rules) and token accuracy of a run's best checkpoint.")
    e.add_argument("run_path", metavar="RUN", help="run folder, runs/latest, or a checkpoint file; RUN1,RUN2,...: "
                   "a seed ensemble (the runs' emission and transition scores averaged, then Viterbi)")
    e.add_argument("--data", metavar="FILE", help="gold CoNLL file (default: the run's own test split)")
    e.add_argument("--split", choices=("test", "dev"), default="test",
                   help="without --data: which of the run's own splits to score (default: test)")
    e.add_argument("--data-dir", metavar="DIR", help="folder holding named datasets (for the run's test split)")
    e.add_argument("--output", metavar="FILE", help="also write the predictions as CoNLL (token, gold, predicted)")
    e.add_argument("--propagate", metavar="off|N|doc", help=PROPAGATE_HELP)
    _gate_flags(e)
    e.set_defaults(run=run_eval)

    r = tag.add_parser("predict", help="tag plain text", description="Tag a plain-text file: split into "
                       "sentences and tokens (rnnlab.tasks.tagging.tokenize: words, numbers, and every other "
                       "character, hyphens and apostrophes included, a token of its own), then tag each "
                       "sentence. Output: CoNLL columns (token, tag; a blank line between sentences) or JSON.")
    r.add_argument("run_path", metavar="RUN", help="run folder, runs/latest, or a checkpoint file; RUN1,RUN2,...: "
                   "a seed ensemble (the runs' emission and transition scores averaged, then Viterbi)")
    r.add_argument("input", metavar="INPUT", help="UTF-8 text file, or - for standard input")
    r.add_argument("--format", choices=("conll", "json"), default="conll",
                   help="conll: token<TAB>tag lines; json: one object per sentence with tokens, tags and entity "
                        "spans with character offsets into the input (default: conll)")
    r.add_argument("--propagate", metavar="off|N|doc", help=PROPAGATE_HELP + "; each block of 256 sentences "
                   "of the input is a document of its own")
    _gate_flags(r)
    r.set_defaults(run=run_predict)


PROPAGATE_HELP = ("label consistency after decoding, replacing the run's own --propagate: a string the run tagged "
                  "as an entity is also tagged where it recurs untagged within N sentences on each side, or in the "
                  "whole document (doc); off: never (default: the run's setting)")


def _gate_flags(p: argparse.ArgumentParser) -> None:
    from .argtypes import probability

    p.add_argument("--propagate-confidence", type=probability, metavar="P", help="with --propagate: a predicted "
                   "entity is spread only if the model's marginal probability of its tags is at least P at each "
                   "of its tokens (default: the run's setting)")
    p.add_argument("--propagate-support", type=probability, metavar="P", help="with --propagate: a recurrence is "
                   "tagged only where the model's marginal probability of an entity tag is at least P at each of "
                   "its tokens (default: the run's setting)")


DATA_FLAGS = ("dataset", "train_file", "dev_file", "test_file", "data_dir")


def run_train(args: argparse.Namespace) -> int:
    from ..tasks.tagging.api import train_tagger
    from ..tasks.tagging.config import TagConfig

    given = given_settings(args, TagConfig)
    if args.resume:  # the run's settings stand; only those given here may replace them
        data = {k: getattr(args, k) for k in DATA_FLAGS if getattr(args, k, None)}
        summary = train_tagger(resume=args.resume, given={**given, **data})
    else:
        cfg = TagConfig(**given, dataset=args.dataset or "", train_file=args.train_file or "",
                        dev_file=args.dev_file or "", test_file=args.test_file or "", data_dir=args.data_dir or "")
        summary = train_tagger(cfg, out=args.out, force=args.force)
    if summary["exit_code"]:
        return summary["exit_code"]   # 130 after Ctrl-C, 143 after SIGTERM
    return 0 if summary["steps"] > 0 else 1


def run_eval(args: argparse.Namespace) -> int:
    from ..tasks.tagging.data import read_conll, write_conll
    from ..tasks.tagging.metrics import evaluate, format_table
    from ..tasks.tagging.data import repair_note
    from ..tasks.tagging.schemes import detect_scheme
    from ..tasks.tagging.ensemble import load_members, predict_ensemble
    from ..tasks.tagging.task import TagConfig, in_gold_scheme, load_corpus
    from ..errors import DataError
    from ..train.runs import check_out_file

    if args.output:
        check_out_file(args.output, "--output")  # before the work, not at the write
    members = load_members(args.run_path, args.propagate, args.propagate_confidence, args.propagate_support)
    loaded = members[0]
    if args.data:
        sentences, source = read_conll(args.data, "auto"), args.data
        note = repair_note(sentences, detect_scheme([s.tags for s in sentences]), f"--data {args.data}")
        if note:
            print(note)
    else:
        cfg = TagConfig.from_dict(loaded.config)
        if args.data_dir:
            cfg.data_dir = args.data_dir
        corpus = load_corpus(cfg)
        sentences, source = (corpus.dev if args.split == "dev" else corpus.test), f"the run's {args.split} split"
        if not sentences:
            raise DataError(f"{loaded.path}: the run has no {args.split} split; give --data FILE")
    predicted = predict_ensemble(members, sentences)
    predicted, scheme = in_gold_scheme(sentences, predicted)  # compare and write in the file's own scheme
    report = evaluate([s.tags for s in sentences], predicted)
    name = str(loaded.path) if len(members) == 1 else (f"ensemble of {len(members)} runs "
                                                       f"({', '.join(str(m.path) for m in members)})")
    print(f"{name} on {source} (tags in {scheme}):\n{format_table(report)}")
    unknown = loaded.vocabs.tags.report_unknown()
    if unknown:
        print(f"note: {unknown}; they are scored as the gold tags they are (never predicted)")
    if args.output:
        write_conll(args.output, sentences, predicted)
        print(f"wrote {args.output}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from ..errors import DataError
    from ..tasks.tagging.api import Tagger

    tagger = Tagger.load(args.run_path, args.propagate, args.propagate_confidence, args.propagate_support)
    # streamed: bounded blocks of lines in, sentences out, so memory does not grow with the file
    if args.input == "-":
        handle = sys.stdin
    else:
        try:
            handle = open(args.input, encoding="utf-8-sig", newline="")
        except OSError as e:
            raise DataError(f"{args.input}: cannot read the file ({e.strerror}); check the path") from None
    lineno = 0

    def lines():
        nonlocal lineno
        for lineno, line in enumerate(handle, 1):
            yield line

    try:
        for sentence in tagger.predict_stream(lines()):
            if args.format == "json":
                print(json.dumps(sentence, ensure_ascii=False))
            else:
                print("\n".join(f"{t['text']}\t{t['tag']}" for t in sentence["tokens"]) + "\n")
    except UnicodeDecodeError:
        raise DataError(f"{args.input}: line {lineno + 1} is not UTF-8; convert the file to UTF-8 "
                        f"(e.g. iconv -f latin1 -t utf-8)") from None
    finally:
        if handle is not sys.stdin:
            handle.close()
    return 0
