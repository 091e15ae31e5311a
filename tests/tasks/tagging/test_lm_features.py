"""``rnnlab tag train --lm FWD,BWD``: frozen features of two tiny char LMs (one ``--reverse``)."""
import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging.data import write_conll
from rnnlab.tasks.tagging.lm import LMFeatures, _states, load_charlm
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


def test_backward_lm_reads_the_text_backwards(lms):
    fwd, bwd = load_charlm(lms / "fwd"), load_charlm(lms / "bwd")
    assert not fwd.reverse and bwd.reverse
    text = " patients with cancer "
    h = _states(bwd, [text, text + "xx"])  # padding after the text never changes a backward state of it
    # the backward LM's state at position i has read text[i:] from the end: equal to a forward pass
    # of the same weights over the reversed string
    rev = bwd._replace(reverse=False)
    h_rev = _states(rev, [text[::-1]])[0][::-1]
    # float32 LM (the char-LM's dtype): backward LM vs forward pass over the reversed string, the same products
    # in another layout, ~22 steps of width H: ~1e-6 relative; rtol 1e-5, atol 1e-6.
    np.testing.assert_allclose(h[0, :len(text)], h_rev, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="--reverse"):
        LMFeatures(lms / "bwd", lms / "fwd")


def test_features_are_fwd_at_last_and_bwd_at_first_character(lms):
    feats = LMFeatures(lms / "fwd", lms / "bwd")
    tokens = ("Breast", "cancer", ".")
    (f,) = feats([tokens])
    text = " Breast cancer . "
    hf, hb = _states(feats.fwd, [text])[0], _states(feats.bwd, [text])[0]
    H = hf.shape[1]
    assert f.shape == (3, feats.dim) == (3, 2 * H)
    np.testing.assert_allclose(f[0, :H], hf[6], rtol=1e-6)      # 'Breast' ends at 6
    np.testing.assert_allclose(f[1, H:], hb[8], rtol=1e-6)      # 'cancer' starts at 8
    assert feats([tokens])[0] is f                                # cached per sentence


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
