"""The opinion-target flow (aspect terms in product reviews, docs/tagging.md): one entity type,
multi-word targets, a plain BIO CoNLL file, and pretrained vectors, end to end through the CLI.
No review corpus is shipped, so the reviews are generated from templates."""
import json
import random

import pytest

from rnnlab.cli import main

ASPECTS = [["battery", "life"], ["screen", "resolution"], ["price"], ["customer", "service"], ["keyboard"],
           ["sound", "quality"], ["delivery", "time"]]
OPENINGS = [["the"], ["i", "think", "the"], ["honestly", "the"], ["overall", "the"]]
VERDICTS = [["is", "great"], ["was", "poor"], ["could", "be", "better"], ["is", "excellent"], ["is", "awful"]]


def reviews(n, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        aspect = rng.choice(ASPECTS)
        words = rng.choice(OPENINGS) + aspect + rng.choice(VERDICTS) + ["."]
        start = words.index(aspect[0])
        tags = ["O"] * len(words)
        tags[start] = "B-ASPECT"
        for k in range(1, len(aspect)):
            tags[start + k] = "I-ASPECT"
        lines += [f"{w}\t{t}" for w, t in zip(words, tags)] + [""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("opinion")
    for name, n, seed in (("train", 200, 1), ("dev", 40, 2)):
        (root / f"{name}.tsv").write_text(reviews(n, seed), encoding="utf-8")
    vocab = sorted({w for part in (ASPECTS + OPENINGS + VERDICTS) for w in part} | {"."})
    (root / "vectors.txt").write_text(  # GloVe text layout, 8 numbers a word (a few words only)
        "".join(f"{w} " + " ".join(f"{((i * 7 + k) % 11) / 10 - 0.5:.1f}" for k in range(8)) + "\n"
                for i, w in enumerate(vocab[:10])), encoding="utf-8")
    return root


def test_multi_word_aspect_terms_end_to_end(trained, capsys):
    out = trained / "run"
    code = main(["tag", "train", "--train", str(trained / "train.tsv"), "--dev", str(trained / "dev.tsv"),
                 "--vectors", str(trained / "vectors.txt"), "--word-dim", "8", "--char-dim", "5",
                 "--char-hidden", "4", "--hidden-size", "16", "--batch-size", "8", "--lr", "0.02",
                 "--dropout", "0.0", "--max-steps", "150", "--eval-every", "50", "--max-minutes", "0",
                 "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "--vectors: 10 of" in printed.out and "training words found" in printed.out
    config = json.loads((out / "config.json").read_text())
    assert config["scheme"] == "BIOES"   # trained in BIOES; the file's BIO is kept for eval and output
    assert main(["tag", "eval", str(out), "--data", str(trained / "dev.tsv")]) == 0
    report = capsys.readouterr().out
    assert "ASPECT" in report
    (trained / "new.txt").write_text("Honestly the customer service was poor.\nThe price is great.\n",
                                     encoding="utf-8")
    assert main(["tag", "predict", str(out), str(trained / "new.txt"), "--format", "json"]) == 0
    sentences = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    spans = [[(e["text"], e["type"]) for e in s["entities"]] for s in sentences]
    assert spans == [[("customer service", "ASPECT")], [("price", "ASPECT")]], spans
