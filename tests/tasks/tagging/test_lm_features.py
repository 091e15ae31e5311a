"""``rnnlab tag train --lm FWD,BWD``: frozen features of two tiny char LMs (one ``--reverse``)."""
import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging.data import write_conll
from rnnlab.module import no_grad
from rnnlab.tasks.tagging.lm import LMFeatures, _states, boundaries, load_charlm
from rnnlab.tasks.tagging.synthetic import synthetic_sentences

LM = ["--hidden-size", "8", "--num-layers", "1", "--embedding-size", "4", "--batch-size", "4", "--seq-len", "16",
      "--max-steps", "3", "--eval-every", "3", "--max-minutes", "0"]


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    text = root / "text.txt"
    text.write_text("\n".join(" ".join(s.tokens) for s in synthetic_sentences(80, seed=5)) + "\n", encoding="utf-8")
    assert main(["train", str(text), "--out", str(root / "fwd"), *LM]) == 0
    assert main(["train", str(text), "--out", str(root / "bwd"), "--reverse", *LM]) == 0
    return root


def alone(lm, text: str) -> np.ndarray:
    """Reference: the LM over one text by itself (no batch, no padding, no lengths), every
    character, states back in the text's order (position i: after reading text[i] in the LM's
    direction)."""
    ids = np.array([[lm.stoi.get(ch, lm.fallback) for ch in (text[::-1] if lm.reverse else text)]])
    with no_grad():
        (h, _), _ = lm.model.rnn.forward(lm.model.embed.forward(ids)[0], None)
    h = np.asarray(h)[0]
    return h[::-1] if lm.reverse else h


def test_backward_lm_reads_the_text_backwards(lms):
    fwd, bwd = load_charlm(lms / "fwd"), load_charlm(lms / "bwd")
    assert not fwd.reverse and bwd.reverse
    text = " patients with cancer "
    # reading order: row 0 of the backward LM has read text[::-1]; a longer row beside it (packed,
    # so row 0 never steps over padding) changes nothing, and the forward pass of the same weights
    # over the reversed string is the same computation
    n = len(text)
    h = _states(bwd, [text, "xx" + text], [n, n + 2], np.zeros(n, np.int64), np.arange(n))
    np.testing.assert_allclose(h, alone(bwd._replace(reverse=False), text[::-1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h[::-1], alone(bwd, text), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="--reverse"):
        LMFeatures(lms / "bwd", lms / "fwd")


@pytest.mark.parametrize("layers", [1, 2])
def test_states_read_in_place_equal_the_scattered_outputs(lms, layers, tmp_path):
    """_states picks the requested states from the top layer's step-major array: the same bits as
    the stack's (B, L, H) outputs at those positions (one layer, and two: the lower one's outputs
    are scattered as before)."""
    run = lms / "fwd"
    if layers == 2:
        run = tmp_path / "fwd2"
        assert main(["train", str(lms / "text.txt"), "--out", str(run), *LM[:2], "--num-layers", "2", *LM[4:]]) == 0
    lm = load_charlm(run)
    assert len(lm.model.rnn.layers) == layers
    texts = [" patients with cancer ", " a ", " Wilms tumour of the ATM gene , rare "]
    lengths = np.array([len(t) for t in texts]) - np.array([0, 1, 3])
    rows = np.array([0, 0, 1, 2, 2, 2, 0])
    positions = np.array([0, 21, 1, 5, 33, 0, 7])
    got = _states(lm, texts, lengths, rows, positions)
    ids = np.full((3, lengths.max()), lm.fallback)
    for b, t in enumerate(texts):
        ids[b, :lengths[b]] = [lm.stoi.get(ch, lm.fallback) for ch in t[:lengths[b]]]
    with no_grad():
        model = lm.model
        x = model.embed.tokens(ids) if model.fuse_input(ids) else model.embed.forward(ids)[0]
        (h, _), _ = model.rnn.forward(x, None, lengths)
    assert np.array_equal(got, np.asarray(h)[rows, positions])


def test_features_are_fwd_at_last_and_bwd_at_first_character(lms):
    feats = LMFeatures(lms / "fwd", lms / "bwd")
    tokens = ("Breast", "cancer", ".")
    (f,) = feats([tokens])
    text = " Breast cancer . "
    assert boundaries(tokens)[0] == text
    hf, hb = alone(feats.fwd, text), alone(feats.bwd, text)
    H = hf.shape[1]
    assert f.shape == (3, feats.dim) == (3, 2 * H) and f.dtype == np.float32
    # float32 LM, ~17 steps of width 8: the packed batch and the lone pass agree to ~1e-7
    np.testing.assert_allclose(f[0, :H], hf[6], rtol=1e-5, atol=1e-6)      # 'Breast' ends at 6
    np.testing.assert_allclose(f[1, H:], hb[8], rtol=1e-5, atol=1e-6)      # 'cancer' starts at 8
    assert feats([tokens])[0] is f                                # cached per sentence


@pytest.mark.parametrize("batch, max_positions", [(128, 1 << 16), (3, 1 << 16), (64, 40)])
def test_grouped_features_equal_each_sentence_alone(lms, batch, max_positions):
    """Sentences of many lengths, read in length-sorted groups of packed rows (several groups,
    and groups cut by their size in characters), with unseen characters and repeats: each
    sentence's features equal the LMs run over that sentence alone, at its words' boundaries."""
    feats = LMFeatures(lms / "fwd", lms / "bwd", batch=batch, max_positions=max_positions)
    sentences = [s.tokens for s in synthetic_sentences(12, seed=3)]
    sentences += [("x",), ("Ω", "é", "cancer"), ("a", "bb", "a"), sentences[0], ("longer",) * 9]
    got = feats(sentences)
    assert len(feats.cache) == len(set(sentences)) and got[0] is got[15]
    for tokens, f in zip(sentences, got):
        text, starts, ends = boundaries(tokens)
        want = np.concatenate([alone(feats.fwd, text)[ends], alone(feats.bwd, text)[starts]], axis=1)
        # float32, up to ~80 steps: packed, grouped products against the lone one, ~1e-7 apart
        np.testing.assert_allclose(f, want, rtol=1e-5, atol=1e-6)
    groups = feats.groups(sorted(set(sentences), key=lambda s: sum(map(len, s)) + len(s)))
    assert sum(map(len, groups)) == len(set(sentences)) and max(map(len, groups)) <= batch
    assert all(len(g) == 1 or len(g) * (sum(map(len, g[-1])) + len(g[-1]) + 1) <= max_positions for g in groups)


def test_tag_train_with_lm_features_end_to_end(lms, tmp_path, capsys):
    for name, n, seed in (("train", 60, 1), ("dev", 20, 2)):
        write_conll(tmp_path / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    out = tmp_path / "run"
    code = main(["tag", "train", "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "dev.tsv"),
                 "--out", str(out), "--lm", f"{lms / 'fwd'},{lms / 'bwd'}", "--max-steps", "4", "--eval-every", "4",
                 "--word-dim", "6", "--hidden-size", "6", "--char-hidden", "3", "--char-dim", "3",
                 "--max-minutes", "0"])
    assert code == 0
    capsys.readouterr()
    assert main(["tag", "eval", str(out), "--data", str(tmp_path / "dev.tsv")]) == 0
    assert "overall" in capsys.readouterr().out
    path = tmp_path / "in.txt"
    path.write_text("Patients with breast cancer were treated.\n", encoding="utf-8")
    assert main(["tag", "predict", str(out), str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split("\t")[0] == "Patients"
    bad = main(["tag", "train", "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "dev.tsv"),
                "--out", str(tmp_path / "r2"), "--lm", str(lms / "fwd")])
    assert bad != 0 and "FWD_RUN,BWD_RUN" in capsys.readouterr().err
