"""``rnnlab eval``: numbers equal a direct computation and the trainer's own validation."""
import json
import math

import numpy as np

from rnnlab.api import load_run
from rnnlab.cli import main
from rnnlab.layers.losses import log_softmax
from rnnlab.train.progress import MetricsLog


def _eval(capsys, *args):
    code = main(["eval", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_eval_text_matches_a_direct_forward_pass(tiny_run, tmp_path, capsys, make_text):
    text = make_text(300, seed=5)
    path = tmp_path / "held_out.txt"
    path.write_text(text, encoding="utf-8")
    code, scores, _ = _eval(capsys, tiny_run, "--text", path, "--batch-size", 1)
    assert code == 0
    loaded = load_run(tiny_run)
    ids = loaded.vocab.encode(text).astype(np.int64)
    (logits, _), _ = loaded.model.forward(ids[None, :-1])
    logp = log_softmax(logits.astype(np.float64))[0]
    nats = -logp[np.arange(len(ids) - 1), ids[1:]].mean()
    assert scores["chars"] == len(text) - 1 and scores["batch_size"] == 1
    # float32 model (logits rounded to 2^-24 ~ 6e-8 relative); the eval's float64 log-softmax and mean over
    # 299 chars vs this one: ~1e-7 relative from the float32 logits' order of summation; rel 1e-5 ~100x.
    assert math.isclose(scores["nats_per_char"], nats, rel_tol=1e-5)
    # same quantity divided by log 2: rel 1e-5 as above.
    assert math.isclose(scores["bits_per_char"], nats / math.log(2), rel_tol=1e-5)
    # exp of a mean of ~1-4 nats: relative error ~ nats * 1e-7; rel 1e-5 as above.
    assert math.isclose(scores["perplexity"], math.exp(nats), rel_tol=1e-5)


def test_eval_split_reproduces_the_logged_best_validation(tiny_run, capsys):
    code, scores, _ = _eval(capsys, tiny_run, "--split", "val")
    assert code == 0
    best = min(r["bpc"] for r in MetricsLog(tiny_run / "metrics.jsonl").read() if r["split"] == "val")
    # the streams' part is the trainer's validation layout; the few characters past them are scored too
    assert math.isclose(scores["stream_nats_per_char"] / math.log(2), best, rel_tol=1e-9)
    assert scores["chars"] == scores["stream_chars"] + scores["remainder"]
    code, test_scores, _ = _eval(capsys, tiny_run, "--split", "test")
    assert code == 0 and test_scores["chars"] > 0


def test_unknown_characters_in_the_text_are_named(tiny_run, tmp_path, capsys):
    path = tmp_path / "odd.txt"
    path.write_text("the cat sat ∑ on Ω the mat\n", encoding="utf-8")
    code = main(["eval", str(tiny_run), "--text", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "'∑'" in err and "'Ω'" in err


def test_plain_output_has_bits_and_perplexity(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "bits/char" in out and "perplexity" in out
