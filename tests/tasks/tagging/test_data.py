"""CoNLL reading, its one-line errors, named datasets, vocabularies and length-bucketed batches."""
from pathlib import Path

import numpy as np
import pytest

from rnnlab.errors import DataError
from rnnlab.tasks.tagging.data import (Sentence, carve_dev, convert_sentences, load_dataset, read_conll, stats,
                                       write_conll)
from rnnlab.tasks.tagging.vocab import (CASES, TagVocab, Vocab, Vocabs, build_vocabs, case_feature, encode,
                                        make_batches)

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def write(tmp_path, text, name="f.txt", raw=None):
    p = tmp_path / name
    p.write_bytes(raw if raw is not None else text.encode("utf-8"))
    return p


def test_reads_columns_docstart_blank_lines_crlf_and_bom(tmp_path):
    text = ("\ufeff-DOCSTART- -X- O\n\nThe DT B-NP\ndog NN I-NP\r\nbarks VBZ B-VP\n\n\n\n"
            "-DOCSTART- -X- O\nÉté NNP B-NP\n")
    s = read_conll(write(tmp_path, text))
    assert [x.tokens for x in s] == [("The", "dog", "barks"), ("Été",)]
    assert s[0].tags == ("B-NP", "I-NP", "B-VP") and s[0].features == (("DT",), ("NN",), ("VBZ",))
    assert s[1].source.endswith("f.txt:10") and len(s[0]) == 3
    tabs = read_conll(write(tmp_path, "a b\tO\nc\tB-Disease\n", "t.tsv"))  # tab-separated: spaces kept in tokens
    assert tabs[0].tokens == ("a b", "c") and tabs[0].features == ()


@pytest.mark.parametrize("content,where,what", [
    ("a DT O\nb NN O\nc O\n", ":3:", "columns"),
    ("a O\n\nb B-X I-X O\n", ":3:", "columns"),
    ("", "", "no sentences"),
    ("\n\n-DOCSTART- O\n\n", "", "no sentences"),
    ("a O\nb E-X\n", ":2:", "not a BIO tag"),
    ("a O\nb X-Y\n", ":2:", "not a BIO tag"),
    ("solo\n", ":1:", "one column"),
])
def test_bad_input_is_one_line_naming_file_and_line(tmp_path, content, where, what):
    p = write(tmp_path, content)
    with pytest.raises(DataError) as err:
        read_conll(p)
    msg = str(err.value)
    assert "\n" not in msg and f"{p}{where}" in msg and what in msg


def test_non_utf8_bytes_name_the_line(tmp_path):
    p = write(tmp_path, None, raw="a O\nb O\n\ncaf".encode() + b"\xe9 O\n")
    with pytest.raises(DataError, match=r"f\.txt:4: byte 0xe9 is not UTF-8"):
        read_conll(p)
    with pytest.raises(DataError, match="cannot read"):
        read_conll(tmp_path / "missing.txt")


def test_bioes_files_and_any_scheme(tmp_path):
    p = write(tmp_path, "a S-X\nb B-X\nc E-X\n")
    assert read_conll(p, "BIOES")[0].tags == ("S-X", "B-X", "E-X")
    assert read_conll(write(tmp_path, "a weird-tag\n", "g.txt"), None)[0].tags == ("weird-tag",)
    bio = convert_sentences(read_conll(p, "BIOES"), "BIO")
    assert bio[0].tags == ("B-X", "B-X", "I-X")


def test_write_and_read_back(tmp_path):
    sents = [Sentence(("x", "y"), ("B-A", "I-A"), (("p",), ("q",))), Sentence(("z",), ("O",), (("r",),))]
    write_conll(tmp_path / "out.txt", sents)
    back = read_conll(tmp_path / "out.txt")
    assert [(s.tokens, s.tags, s.features) for s in back] == [(s.tokens, s.tags, s.features) for s in sents]
    write_conll(tmp_path / "pred.txt", sents, predicted=[["B-A", "O"], ["O"]])
    assert (tmp_path / "pred.txt").read_text().splitlines()[1] == "y\tq\tI-A\tO"


def test_carve_dev_is_every_tenth_sentence():
    sents = [Sentence((str(i),), ("O",)) for i in range(25)]
    train, dev = carve_dev(sents)
    assert [s.tokens[0] for s in dev] == ["9", "19"] and len(train) == 23
    assert carve_dev(sents) == (train, dev)


def test_unknown_or_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="unknown tagging dataset"):
        load_dataset("conll2003", tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_dataset("conll2000", tmp_path)


# -- the real files (in ../shared/data, never copied into the repository) ------------------------
@pytest.mark.skipif(not (SHARED / "tagging" / "ncbi-disease" / "train.tsv").is_file(),
                    reason="ncbi-disease files not in ../shared/data (see SOURCES-apps.md)")
def test_real_ncbi_disease_counts():
    c = load_dataset("ncbi-disease", SHARED)
    got = {k: tuple(v) for k, v in ((k, (s.sentences, s.tokens, s.mentions)) for k, s in c.stats().items())}
    assert got == {"train": (5424, 135701, 5134), "dev": (923, 23969, 787), "test": (940, 24497, 960)}
    assert c["devel"] is c.dev and {t for s in c.train for t in s.tags} == {"O", "B-Disease", "I-Disease"}


@pytest.mark.skipif(not (SHARED / "tagging" / "conll2000" / "train.txt").is_file(),
                    reason="conll2000 files not in ../shared/data (see SOURCES-apps.md)")
def test_real_conll2000_counts_and_dev_split():
    c = load_dataset("conll2000", SHARED)
    st = c.stats()
    whole = stats(c.train + c.dev)
    assert (whole.sentences, whole.tokens, whole.mentions) == (8936, 211727, 106978)
    assert (st["test"].sentences, st["test"].tokens, st["test"].mentions) == (2012, 47377, 23852)
    assert (st["train"].sentences, st["dev"].sentences) == (8043, 893)
    assert c.train[0].features[0] == ("NN",)
    v = build_vocabs(c.train)
    assert len(v.features) == 1 and len(v.tags) == 1 + 2 * 11
    bioes = load_dataset("conll2000", SHARED, scheme="BIOES")
    assert stats(bioes.test) == st["test"] and bioes.scheme == "BIOES"


# -- vocabularies -------------------------------------------------------------------------------
def corpus():
    return [Sentence(("The", "DNA", "of", "Smith", "in", "1999", ",", "p53", "McDonald", "the"),
                     ("O", "B-X", "O", "B-PER", "O", "O", "O", "B-X", "I-X", "O")),
            Sentence(("the", "end"), ("O", "O"))]


def test_case_features():
    got = [case_feature(t) for t in ("the", "DNA", "Smith", "1999", ",", "p53", "McDonald", "A", "--", "é")]
    assert got == ["lower", "upper", "title", "numeric", "punct", "has_digit", "mixed", "upper", "punct", "lower"]
    assert set(got) <= set(CASES)


def test_vocabularies_lowercase_cutoff_unknown_and_round_trip():
    v = build_vocabs(corpus(), min_word_count=2)
    assert v.words.itos == ["<pad>", "<unk>", "the"]  # "the" x3 (lower-cased); the rest once
    assert v.words.index("unseen") == 1 and v.chars.index("€") == v.chars.unk_index == 1
    assert v.cases.itos[0] == "<pad>" and len(v.cases) == 1 + len(CASES)
    assert v.tags.itos == ["O", "B-PER", "I-PER", "B-X", "I-X"]  # complete: I-PER added
    ids = v.tags.encode(["O", "B-UCP", "B-UCP", "I-X"])
    assert list(ids) == [0, 0, 0, 4] and v.tags.unknown == {"B-UCP": 2}
    assert "2 tags not seen in training" in v.tags.report_unknown() and "B-UCP x2" in v.tags.report_unknown()
    again = Vocabs.from_dict(v.to_dict())
    assert again.words.itos == v.words.itos and again.tags.itos == v.tags.itos and again.lower
    assert Vocab.from_counts({"a": 3, "b": 3, "c": 5}, pad=False, unk=False).itos == ["c", "a", "b"]
    assert TagVocab.build(["B-X"], "BIOES").itos == ["O", "B-X", "I-X", "E-X", "S-X"]
    with pytest.raises(KeyError):
        Vocab(["a"], unk=False).index("b")


def random_corpus(rng, n, max_len=40, long=()):
    words = ["Alpha", "beta", "GAMMA", "d3lta", "e", ",", "42"]
    lengths = list(rng.integers(1, max_len, size=n)) + list(long)
    return [Sentence(tuple(rng.choice(words, size=L)), tuple(rng.choice(["O", "B-A", "I-A"], size=L)),
                     tuple((str(rng.choice(["NN", "VB"])),) for _ in range(L))) for L in lengths]


def test_batches_pad_mask_and_cover_every_sentence(rng):
    sents = random_corpus(rng, 97, long=(450, 300))
    v = build_vocabs(sents)
    enc = encode(sents, v)
    for shuffle in (False, True):
        batches = make_batches(enc, 16, shuffle=shuffle, seed=3)
        assert sorted(i for b in batches for i in b.index) == list(range(len(sents)))
        for b in batches:
            assert b.mask.shape == b.words.shape == b.tags.shape == b.cases.shape == b.features.shape[:2]
            assert np.array_equal(b.mask, np.arange(b.words.shape[1]) < b.lengths[:, None])
            assert b.lengths.max() == b.words.shape[1] and b.size <= 16
            assert not b.words[~b.mask].any() and not b.tags[~b.mask].any() and not b.chars[~b.mask].any()
            for k, i in enumerate(b.index):
                L = len(sents[i])
                assert b.lengths[k] == L and np.array_equal(b.words[k, :L], enc[i].words)
                assert np.array_equal(b.tags[k, :L], v.tags.encode(sents[i].tags))
                assert b.char_lengths[k, :L].tolist() == [len(t) for t in sents[i].tokens]
    plain = make_batches(enc, 16)
    assert [b.lengths.tolist() for b in plain] == [sorted(b.lengths.tolist()) for b in plain]
    assert max(b.words.shape[1] for b in plain) == 450


def test_batches_are_deterministic_given_a_seed_and_bucketed(rng):
    enc = encode(sents := random_corpus(rng, 400), build_vocabs(sents))
    a = [b.index.tolist() for b in make_batches(enc, 8, shuffle=True, seed=1)]
    b = [b.index.tolist() for b in make_batches(enc, 8, shuffle=True, seed=1)]
    c = [b.index.tolist() for b in make_batches(enc, 8, shuffle=True, seed=2)]
    assert a == b and a != c
    padded = sum(x.words.size for x in make_batches(enc, 8, shuffle=True, seed=1))
    unbucketed = sum(8 * max(len(sents[i]) for i in idx) for idx in np.array_split(np.arange(400), 50))
    assert padded < 0.8 * unbucketed


def test_max_tokens_caps_batch_area(rng):
    enc = encode(sents := random_corpus(rng, 120, long=(500,)), build_vocabs(sents))
    batches = make_batches(enc, 64, max_tokens=600)
    assert all(b.words.size <= 600 or b.size == 1 for b in batches)
    assert sum(b.size for b in batches) == 121
    with pytest.raises(ValueError):
        make_batches(enc, 0)


def test_a_file_without_blank_lines_between_sentences_is_named_in_a_warning(tmp_path):
    from rnnlab.errors import InputWarning
    from rnnlab.tasks.tagging.data import LONG_SENTENCE

    path = write(tmp_path, "".join(f"w{i}\tO\n" for i in range(LONG_SENTENCE + 1)))
    with pytest.warns(InputWarning, match=rf"{path}:1: a sentence of {LONG_SENTENCE + 1} tokens .*blank lines"):
        assert len(read_conll(path)) == 1
    ordinary = write(tmp_path, "a\tO\nb\tB-X\n\nc\tO\n", name="ok.txt")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_conll(ordinary)) == 2
