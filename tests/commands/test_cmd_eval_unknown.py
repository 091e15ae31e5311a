"""``eval``/``sample --unknown error|skip|map``, and ``eval`` scoring every character of a text."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnlab import generate
from rnnlab.api import load_run, save_model
from rnnlab.cli import main
from rnnlab.data import Vocab
from rnnlab.data.vocab import UNKNOWN_SYMBOL
from rnnlab.errors import DataError
from rnnlab.layers.losses import log_softmax
from rnnlab.models import CharRNN, ModelConfig
from rnnlab.scoring import score_ids, stream_layout


def _eval_json(capsys, *args):
    code = main(["eval", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def _direct_nats(model, ids: np.ndarray, pieces: list[tuple[int, int]]) -> float:
    """Mean NLL of ids[a+1:b] given ids[a:b-1] for each piece, each from a zero state."""
    total, count = 0.0, 0
    for a, b in pieces:
        seg = ids[a:b].astype(np.int64)
        (logits, _), _ = model.forward(seg[None, :-1])
        logp = log_softmax(logits.astype(np.float64))[0]
        total += -logp[np.arange(len(seg) - 1), seg[1:]].sum()
        count += len(seg) - 1
    return total / count


# -- every character is scored ---------------------------------------------------------------------------
@pytest.mark.parametrize("n_chars, batch_size", [(1003, 8), (1000, 7), (1001, 8), (5, 8)])
def test_eval_scores_every_character(tiny_run, tmp_path, capsys, make_text, n_chars, batch_size):
    text = make_text(400, seed=9)[:n_chars]
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    code, scores, _ = _eval_json(capsys, tiny_run, "--text", path, "--batch-size", batch_size, "--seq-len", 16)
    assert code == 0
    assert scores["chars"] == n_chars - 1
    loaded = load_run(tiny_run)
    ids = loaded.vocab.encode(text)
    streams, per, rest = stream_layout(len(ids), batch_size, 16)
    assert scores["batch_size"] == streams and scores["remainder"] == rest
    assert scores["stream_chars"] == streams * per
    # each stream from a zero state; the last one runs on to the end of the text
    pieces = [(b * per, (b + 1) * per + 1) for b in range(streams - 1)] + [((streams - 1) * per, len(ids))]
    # float32 model, streamed in batches vs one stream per piece: the float32 products group rows
    # differently (~H*2^-24 per step); the mean of ~1e3 log-probabilities carries ~1e-7 relative; rel 1e-5.
    assert math.isclose(scores["nats_per_char"], _direct_nats(loaded.model, ids, pieces), rel_tol=1e-5)


def test_two_hundred_thousand_characters_all_scored(tiny_run, tmp_path, capsys, make_text):
    text = (make_text(60_000, seed=3) * 2)[:200_000]
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    code, scores, _ = _eval_json(capsys, tiny_run, "--text", path, "--batch-size", 64, "--seq-len", 100)
    assert code == 0 and scores["chars"] == 199_999 and scores["batch_size"] == 64
    assert scores["stream_chars"] == 199_936 and scores["remainder"] == 63
    assert main(["eval", str(tiny_run), "--text", str(path), "--batch-size", "64"]) == 0
    assert "199,999 characters scored in 64 stream(s), the last 63 continuing the last stream" in \
        capsys.readouterr().out


def test_score_ids_streams_part_is_the_plain_stream_layout(tiny_run, make_text):
    from rnnlab.data.batching import eval_batches
    from rnnlab.layers.losses import SoftmaxCrossEntropy

    loaded = load_run(tiny_run)
    ids = loaded.vocab.encode(make_text(300, seed=2))
    scores = score_ids(loaded.model, ids, 5, 16)
    total, count, states = 0.0, 0, None
    for batch in eval_batches(ids, 5, 16):
        (logits, states), _ = loaded.model.forward(batch.x, states)
        loss, _ = SoftmaxCrossEntropy().forward(logits, batch.y)
        total, count = total + loss * batch.y.size, count + batch.y.size
    assert scores["stream_nats_per_char"] == total / count and scores["stream_chars"] == count
    assert scores["chars"] == len(ids) - 1 and not loaded.model.training


def test_score_ids_needs_two_characters(tiny_run):
    with pytest.raises(DataError, match="at least 2 characters"):
        score_ids(load_run(tiny_run).model, np.zeros(1, dtype=np.uint8))


# -- characters outside the vocabulary ---------------------------------------------------------------------------
ODD = "the cat sat ∑ on Ω the mat ∑\n" * 3


def test_unknown_error_is_the_default_and_names_the_option(tiny_run, tmp_path, capsys):
    path = tmp_path / "odd.txt"
    path.write_text(ODD, encoding="utf-8")
    assert main(["eval", str(tiny_run), "--text", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'∑'" in err and "'Ω'" in err and "--unknown skip" in err and err.count("\n") == 1


def test_unknown_skip_scores_the_rest_and_reports_the_count(tiny_run, tmp_path, capsys):
    path = tmp_path / "odd.txt"
    path.write_text(ODD, encoding="utf-8")
    code, scores, err = _eval_json(capsys, tiny_run, "--text", path, "--unknown", "skip", "--batch-size", 1)
    assert code == 0 and scores["unknown_chars"] == 9 and scores["unknown_policy"] == "skip"
    assert "9 character(s) not in the model's vocabulary (2 distinct: 'Ω', '∑') left out" in err
    clean = ODD.replace("∑", "").replace("Ω", "")
    assert scores["chars"] == len(clean) - 1
    loaded = load_run(tiny_run)
    expected = score_ids(loaded.model, loaded.vocab.encode(clean), 1, 16)
    # the same function on the same ids with the same batch: bit-identical in practice; rel 1e-12 only
    # allows for reordered float64 sums of the nats.
    assert math.isclose(scores["nats_per_char"], expected["nats_per_char"], rel_tol=1e-12)


def test_unknown_map_without_a_symbol_advises_skip(tiny_run, tmp_path, capsys):
    path = tmp_path / "odd.txt"
    path.write_text(ODD, encoding="utf-8")
    assert main(["eval", str(tiny_run), "--text", str(path), "--unknown", "map"]) == 2
    err = capsys.readouterr().err
    assert "no symbol for unknown characters (U+FFFD)" in err and "use --unknown skip" in err
    assert err.count("\n") == 1


@pytest.fixture(name="fffd_model")
def fffd_model_fixture(tmp_path):
    vocab = Vocab.from_text("abc \n" + UNKNOWN_SYMBOL)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), hidden_size=8, num_layers=1, embedding_size=4))
    return save_model(tmp_path / "fffd.npz", model, vocab, {"batch_size": 2, "seq_len": 8})


def test_unknown_map_uses_the_replacement_character(fffd_model, tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("abc xyz cab\nab", encoding="utf-8")
    code, scores, err = _eval_json(capsys, fffd_model, "--text", path, "--unknown", "map")
    assert code == 0 and scores["unknown_chars"] == 3 and scores["chars"] == len("abc xyz cab\nab") - 1
    assert f"3 character(s) not in the model's vocabulary (3 distinct: 'x', 'y', 'z') replaced by " \
           f"{UNKNOWN_SYMBOL!r}" in err
    loaded = load_run(fffd_model)
    expected = score_ids(loaded.model, loaded.vocab.encode("abc \ufffd\ufffd\ufffd cab\nab"), 2, 8)
    assert scores["nats_per_char"] == expected["nats_per_char"]


def test_sample_prime_unknown_policies(tiny_run, fffd_model, capsys):
    assert main(["sample", str(tiny_run), "--prime", "hé∑!", "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: prime text") and "'é'" in err and "--unknown skip" in err
    assert main(["sample", str(tiny_run), "--prime", "the é", "--length", "20", "--seed", "4",
                 "--unknown", "skip"]) == 0
    out, err = capsys.readouterr()
    loaded = load_run(tiny_run)
    assert out == "the " + generate.sample(loaded.model, loaded.vocab, "the ", 20, seed=4)
    assert "note: prime text: 1 character(s)" in err and "left out" in err
    assert main(["sample", str(tiny_run), "--prime", "the é", "--unknown", "map"]) == 2
    assert "use --unknown skip" in capsys.readouterr().err
    assert main(["sample", str(fffd_model), "--prime", "abz", "--length", "3", "--unknown", "map", "--seed", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ab" + UNKNOWN_SYMBOL) and len(out) == 6 and "replaced by" in err


def test_vocab_resolve_unknown():
    vocab = Vocab.from_text("abc ")
    assert vocab.resolve_unknown("abc", "skip") == ("abc", (("skip", 0, (), -1)))
    text, report = vocab.resolve_unknown("a\U0001f600b x", "skip")
    assert text == "ab " and report.count == 2 and report.distinct == ("x", "\U0001f600") and report.first == 1
    with pytest.raises(DataError, match="not in the vocabulary"):
        vocab.resolve_unknown("axb", "error")
    with pytest.raises(DataError, match="policy must be one of error, skip, map"):
        vocab.resolve_unknown("a", "ignore")
    assert vocab.unknown_symbol is None and Vocab.from_text("a\ufffd").unknown_symbol == "\ufffd"
    # long texts are handled in chunks
    big = ("ab x" * 2_000_000)
    text, report = vocab.resolve_unknown(big, "skip")
    assert report.count == 2_000_000 and len(text) == 6_000_000


def test_overflowing_weights_are_an_error_not_nan(tmp_path, capsys):
    vocab = Vocab.from_text("abc \n")
    model = CharRNN(ModelConfig(vocab_size=len(vocab), hidden_size=8, num_layers=1, embedding_size=4))
    model.out.params["W"][...] = 3e38  # finite, but the logits overflow to inf
    model.out.params["b"][...] = 3e38
    path = save_model(tmp_path / "best.npz", model, vocab, {"batch_size": 2, "seq_len": 8})
    text = tmp_path / "t.txt"
    text.write_text("abc abc\nab")
    assert main(["eval", str(path), "--text", str(text)]) == 2
    err = capsys.readouterr().err
    assert "predictions on" in err and "not finite" in err and "Traceback" not in err


def test_a_hopeless_model_has_an_infinite_perplexity_not_an_overflow(tmp_path):
    vocab = Vocab.from_text("ab")
    model = CharRNN(ModelConfig(vocab_size=2, hidden_size=4, num_layers=1, embedding_size=2))
    model.out.params["W"][...] = 0.0
    model.out.params["b"][...] = [2000.0, -2000.0]  # certain of 'a', always wrong on 'b'
    scores = score_ids(model, vocab.encode("bbbbbb"), 1, 4)
    assert scores["nats_per_char"] > 700 and scores["perplexity"] == math.inf
