"""``Tagger``: fit / evaluate / predict / save / load; the tokenizer; real data when it is there."""
from pathlib import Path

import pytest

from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging import Tagger
from rnnlab.tasks.tagging.data import Sentence, write_conll
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.tokenize import split_sentences, tokenize

SMALL = dict(word_dim=8, case_dim=3, char_dim=5, char_hidden=4, hidden_size=12, batch_size=8, lr=1e-2,
             dropout=0.1, max_minutes=0.0, schedule="constant")
DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    for name, n, seed in (("train", 200, 1), ("dev", 40, 2)):
        write_conll(root / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    tagger = Tagger(**SMALL, scheme="BIO").fit(root / "train.tsv", root / "dev.tsv", out=str(root / "run"),
                                               max_steps=150, eval_every=50)
    return tagger, root


def test_fit_evaluate_predict_save_load(trained, tmp_path):
    tagger, root = trained
    report = tagger.evaluate(root / "dev.tsv")
    raw = Tagger.load(root / "run", propagate="off").evaluate(root / "dev.tsv")
    # the summary stores 100 * f1 computed the same way: a few float64 ulps; approx default rel 1e-6.
    assert raw.f1 > 0.8 and tagger.summary["best"] == pytest.approx(100 * raw.f1)
    settled = tagger.summary["propagate"]   # --propagate auto, the default: decided on this dev split
    assert 100 * report.f1 == pytest.approx(settled["dev_f1_propagated"] if settled["kept"] else settled["dev_f1"])
    gold = synthetic_sentences(5, seed=9)
    assert tagger.evaluate([(s.tokens, s.tags) for s in gold]).sentences == 5
    tags = tagger.predict([["patients", "with", "Breast", "cancer", "."], "Risk of Wilms tumour is high.", []])
    assert len(tags[0]) == 5 and tags[0][2].startswith("B-") and tags[2] == []
    assert len(tags[1]) == len(tokenize("Risk of Wilms tumour is high."))
    saved = tagger.save(tmp_path / "t.npz")
    again = Tagger.load(saved)
    assert again.predict([["patients", "with", "Breast", "cancer", "."]])[0] == tags[0]
    assert Tagger.load(root / "run").options["scheme"] == "BIO"
    spans = again.predict_text("Nothing here. Patients with diabetes were treated.")
    assert len(spans) == 2 and all("entities" in s for s in spans)


def test_unknown_words_and_options():
    with pytest.raises(ConfigError, match="unknown Tagger options"):
        Tagger(hidden=3)
    with pytest.raises(ConfigError, match="not trained"):
        Tagger().predict([["a"]])


def test_unknown_words_never_crash(trained):
    tagger, _ = trained
    assert len(tagger.predict([["Zzyzx", "qwerty\u00e9\u4e2d", "with", "cancer"]])[0]) == 4


def test_tokenizer_rules_and_offsets():
    text = "BRCA1-associated (breast) cancer: 3.5% of 1,000 O'Brien's cases, e.g. in Fig. 2. Next one!"
    toks = tokenize(text)
    assert [t.text for t in toks][:6] == ["BRCA1", "-", "associated", "(", "breast", ")"]
    assert "3.5" in [t.text for t in toks] and "1,000" in [t.text for t in toks]
    assert [t.text for t in toks if t.text in ("O", "'", "Brien", "s")] == ["O", "'", "Brien", "'", "s"]
    assert all(text[t.start:t.end] == t.text for t in toks)
    sentences = split_sentences(text)
    assert len(sentences) == 2 and sentences[1][0].text == "Next"
    assert len(split_sentences("Dr. Smith met J. Doe. They talked.\n\nno stop here\nnor here")) == 3
    assert split_sentences("") == []


@pytest.mark.skipif(not (DATA / "tagging" / "ncbi-disease" / "train.tsv").is_file(),
                    reason="NCBI-disease not found in ../shared/data/tagging (real-data test)")
def test_ncbi_disease_trains_a_few_steps(tmp_path):
    tagger = Tagger(**{**SMALL, "hidden_size": 16}).fit("ncbi-disease", data_dir=str(DATA), out=str(tmp_path / "r"),
                                                        max_steps=4, eval_every=4)
    assert tagger.summary["steps"] == 4 and tagger.summary["test"].sentences == 940
    assert isinstance(tagger.loaded.vocabs.tags.itos[0], str)
    assert Sentence(("a",), ("O",)).tokens == ("a",)
