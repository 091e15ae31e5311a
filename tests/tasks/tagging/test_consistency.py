"""Label consistency after decoding (``--propagate``): the rules on hand-made sentences, then the option
through ``tag train`` / ``tag eval`` / ``tag predict`` / ``Tagger`` and the saved run."""
import json

import numpy as np
import pytest

from rnnlab.checkpoint import read_checkpoint_meta
from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging.api import Tagger
from rnnlab.tasks.tagging.consistency import (AUTO_WINDOW, OFF, Propagation, from_config, is_abbreviation,
                                              parse_window, propagate)
from rnnlab.tasks.tagging.data import read_conll, write_conll
from rnnlab.tasks.tagging.schemes import chunks
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.task import in_gold_scheme, load_run, predict_tags

FILL = ["the", "study", "shows", "that", "risk", "is", "high", "."]


def _tag(words, spans):
    """BIO tags of ``words`` with entities {(start, end): type}."""
    tags = ["O"] * len(words)
    for (a, b), kind in spans.items():
        tags[a:b] = [f"B-{kind}"] + [f"I-{kind}"] * (b - a - 1)
    return tags


def _run(sentences, setting, docs=None, scheme="BIO", **kw):
    tokens = [s[0] for s in sentences]
    return propagate(tokens, [s[1] for s in sentences], scheme, setting, docs, **kw)


NO_VOTE = dict(abbreviations=False, vote=False)


def test_a_tagged_string_is_tagged_where_it_recurs_within_the_window():
    tagged = ("patients with Wilms tumour .".split(), _tag("patients with Wilms tumour .".split(), {(2, 4): "D"}))
    later = "Wilms tumour is rare .".split()
    sents = [tagged] + [(FILL, ["O"] * len(FILL))] * 2 + [(later, ["O"] * 5)]
    assert _run(sents, Propagation(2, **NO_VOTE))[3] == ["O"] * 5          # three sentences away: outside
    assert _run(sents, Propagation(3, **NO_VOTE))[3] == ["B-D", "I-D", "O", "O", "O"]
    assert _run(sents, Propagation(None, **NO_VOTE))[3] == ["B-D", "I-D", "O", "O", "O"]   # the whole document
    assert _run(sents, Propagation(None, **NO_VOTE), docs=[0, 0, 0, 1])[3] == ["O"] * 5   # never across documents
    assert _run(sents, OFF) == [list(s[1]) for s in sents]
    assert _run(sents, Propagation(3, **NO_VOTE), scheme="BIOES")[3] == ["B-D", "E-D", "O", "O", "O"]


def test_window_zero_is_the_sentence_itself_and_case_counts():
    words = "Wilms tumour and Wilms tumour and wilms tumour".split()
    got = _run([(words, _tag(words, {(0, 2): "D"}))], Propagation(0, **NO_VOTE))[0]
    assert [(c.start, c.end) for c in chunks(got)] == [(0, 2), (3, 5)]


def test_never_overlaps_or_cuts_a_predicted_entity_and_longest_first():
    src = "Breast cancer and cancer .".split()
    src_tags = _tag(src, {(0, 2): "D", (3, 4): "D"})
    target = "Breast cancer in familial cancer syndrome".split()
    predicted = _tag(target, {(3, 6): "D"})   # "familial cancer syndrome": "cancer" inside it stays
    got = _run([(src, src_tags), (target, predicted)], Propagation(1, **NO_VOTE))
    assert chunks(got[1]) == [chunks(["B-D", "I-D"])[0], *chunks(predicted)]   # "Breast cancer", one entity
    assert set(chunks(predicted)) <= set(chunks(got[1])) and got[0] == src_tags


def test_a_hyphenated_word_is_another_word():
    src = ("deficiency of PAH .".split(), ["O", "O", "B-D", "O"])
    target = "PAH - deficient mice , PAH".split()
    got = _run([src, (target, ["O"] * 6)], Propagation(1, **NO_VOTE))[1]
    assert got == ["O"] * 5 + ["B-D"]
    assert _run([src, (target, ["O"] * 6)], Propagation(1, **NO_VOTE), compounds=False)[1][0] == "B-D"


def test_types_the_majority_and_ties_alone():
    a = ("x AB y".split(), ["O", "B-P", "O"])
    b = ("AB z".split(), ["B-Q", "O"])
    free = ("then AB".split(), ["O", "O"])
    assert _run([a, b, free], Propagation(None, **NO_VOTE))[2] == ["O", "O"]                 # P once, Q once
    assert _run([a, a, b, free], Propagation(None, **NO_VOTE))[3] == ["O", "B-P"]
    assert _run([("- -".split(), ["B-P", "O"]), ("- x".split(), ["O", "O"])],
                Propagation(None, **NO_VOTE))[1] == ["O", "O"]                                # no letter: never


def test_abbreviations():
    assert is_abbreviation("APC", "adenomatous polyposis coli".split())
    assert is_abbreviation("DMD", "Duchenne muscular dystrophy".split())
    assert is_abbreviation("HD", "Huntington disease".split())
    assert not is_abbreviation("DM", "myotonic dystrophy".split())     # letters out of order
    assert not is_abbreviation("XY", "breast cancer".split())
    assert not is_abbreviation("(", "breast cancer".split()) and not is_abbreviation("A", "ataxia".split())
    words = "adenomatous polyposis coli ( APC ) is inherited .".split()
    first = (words, _tag(words, {(0, 3): "D"}))
    later = ("Mutations of APC .".split(), ["O"] * 4)
    plain = _run([first, later], Propagation(1, abbreviations=False, vote=False))
    assert plain[1] == ["O"] * 4 and plain[0] == first[1]
    got = _run([first, later], Propagation(1, abbreviations=True, vote=True))   # exempt from the vote
    assert got[0][4] == "B-D" and got[1] == ["O", "O", "B-D", "O"]


def test_the_vote():
    one = ("with ataxia .".split(), ["O", "B-D", "O"])
    free = ("ataxia here , ataxia there".split(), ["O"] * 5)
    assert _run([one, free], Propagation(1, abbreviations=False, vote=True))[1] == ["O"] * 5   # 1 tagged, 2 not
    assert _run([one, one, free], Propagation(1, abbreviations=False, vote=True))[2] == ["O"] * 5   # window 1
    assert _run([one, one, free], Propagation(2, abbreviations=False, vote=True))[2][0] == "B-D"   # 2 against 2
    assert _run([one, free], Propagation(1, abbreviations=False, vote=False))[1][3] == "B-D"


def test_a_fixed_point_idempotent_and_deterministic():
    words = "APC here .".split()
    chain = [(words, _tag(words, {(0, 1): "D"}))] + [(words, ["O"] * 3)] * 3
    once = _run(chain, Propagation(1, **NO_VOTE), rounds=1)
    assert [t[0] for t in once] == ["B-D", "B-D", "O", "O"]
    assert [t[0] for t in _run(chain, Propagation(1, **NO_VOTE))] == ["B-D"] * 4
    rng = np.random.default_rng(0)
    gold = synthetic_sentences(80, seed=3)
    tags = [[t if t == "O" or rng.random() < 0.6 else "O" for t in s.tags] for s in gold]   # misses, some ill-formed
    tokens = [s.tokens for s in gold]
    for setting in (Propagation(0), Propagation(1), Propagation(3, vote=False), Propagation(None, abbreviations=False)):
        out = propagate(tokens, tags, "BIO", setting)
        assert out == propagate(tokens, tags, "BIO", setting)
        assert propagate(tokens, out, "BIO", setting) == out
        for old, new in zip(tags, out):   # untouched sentences keep their tags, ill-formed ones included
            assert new == old or set(chunks(old)) < set(chunks(new))
    assert propagate(tokens, tags, "BIO", Propagation(3, vote=False)) != tags


def test_the_sliding_window_counts_what_a_fresh_count_of_each_window_gives():
    """The pass keeps running counts over windows that slide along a file (one document, as NCBI-disease's
    files are read, so the strings that leave a window are forgotten); one round must equal counting
    every sentence's window from scratch."""
    from collections import Counter

    from rnnlab.tasks.tagging.consistency import _new_chunks, _sources, _table, _untagged, _windows
    from rnnlab.tasks.tagging.schemes import chunks_to_tags

    rng = np.random.default_rng(1)
    gold = synthetic_sentences(300, seed=5)
    tags = [[t if t == "O" or rng.random() < 0.7 else "O" for t in s.tags] for s in gold]
    tokens = [s.tokens for s in gold]
    found = [chunks(t) for t in tags]
    for window in (1, 4, 10):
        setting = Propagation(window)   # abbreviations and the vote on
        sources = [_sources(tokens[i], found[i], True) for i in range(len(tokens))]
        wanted = {w for src in sources for (w, _) in src}
        longest = max(len(w) for w in wanted)
        prefixes = {w[:k] for w in wanted for k in range(1, len(w) + 1)}
        free = [_untagged(tokens[i], found[i], longest, wanted, prefixes) for i in range(len(tokens))]
        expect = []
        for i, (a, b) in enumerate(_windows(len(tokens), None, window)):
            table = _table(sum(sources[a:b], Counter()), sum(free[a:b], Counter()))
            lengths = sorted({len(w) for w in table}, reverse=True)
            new = _new_chunks(tokens[i], found[i], table, lengths)
            expect.append(chunks_to_tags(sorted(found[i] + new, key=lambda c: c.start), len(tokens[i]), "BIO")
                          if new else list(tags[i]))
        got = propagate(tokens, tags, "BIO", setting, rounds=1)
        assert got == expect
        assert got != tags   # the pass did add entities here


def test_settings_and_their_messages():
    assert [parse_window(v) for v in ("off", "0", "3", "doc")] == [-1, 0, 3, None]
    for bad in ("-1", "x", "1.5", "auto"):
        with pytest.raises(ConfigError, match="--propagate takes off, doc"):
            parse_window(bad)
    assert from_config({}) == OFF   # a run older than the option
    assert from_config({"propagate": "2", "propagate_vote": False}) == Propagation(2, True, False)
    assert from_config({"propagate": "auto"}) == OFF   # undecided
    assert from_config({"propagate": "auto"}, {"window": 3, "kept": True}) == Propagation(3)
    assert from_config({"propagate": "auto"}, {"window": 3, "kept": False}) == OFF
    assert from_config({"propagate": "2"}, window="off") == OFF


def test_off_is_todays_output_byte_for_byte(tiny_train, files, tmp_path, capsys):
    run = tmp_path / "run"
    assert tiny_train(run, "--propagate", "off") == 0
    loaded = load_run(run)
    assert loaded.propagation == OFF and json.loads((run / "config.json").read_text())["propagate"] == "off"
    assert "propagate" not in read_checkpoint_meta(loaded.path)
    dev = read_conll(files / "dev.tsv", "auto")
    before, _ = predict_tags(loaded.model, loaded.vocabs, dev, loaded.scheme, max_word_len=loaded.max_word_len)
    write_conll(tmp_path / "reference.tsv", dev, in_gold_scheme(dev, before)[0])
    for flags in ([], ["--propagate", "off"]):
        assert main(["tag", "eval", str(run), "--data", str(files / "dev.tsv"), "--output", str(tmp_path / "o.tsv"),
                     *flags]) == 0
        assert (tmp_path / "o.tsv").read_bytes() == (tmp_path / "reference.tsv").read_bytes()
    text = tmp_path / "text.txt"
    text.write_text("Patients with Wilms tumour were treated. Wilms tumour is rare.\n")
    capsys.readouterr()
    assert main(["tag", "predict", str(run), str(text)]) == 0
    plain = capsys.readouterr().out
    assert main(["tag", "predict", str(run), str(text), "--propagate", "off"]) == 0
    assert capsys.readouterr().out == plain


def test_the_option_is_saved_in_the_run_and_replaced_at_prediction(tiny_train, files, tmp_path, capsys):
    run = tmp_path / "run"
    assert tiny_train(run, "--propagate", "2", "--no-propagate-vote", "--propagate-support", "0") == 0   # ungated
    out = capsys.readouterr().out
    assert "--propagate 2 (2 sentence(s) on each side, abbreviations): validation F1" in out
    assert load_run(run).propagation == Propagation(2, True, False)
    tagger = Tagger.load(run)
    assert tagger.loaded.propagation == Propagation(2, True, False)
    assert Tagger.load(run, propagate="off").loaded.propagation == OFF
    dev = read_conll(files / "dev.tsv", "auto")
    plain = Tagger.load(run, propagate="off").predict([s.tokens for s in dev])
    assert tagger.predict([s.tokens for s in dev]) == propagate([s.tokens for s in dev], plain, "BIOES",
                                                                 Propagation(2, True, False))
    assert main(["tag", "eval", str(run), "--data", str(files / "dev.tsv"), "--propagate", "x"]) == 2
    assert "--propagate takes off, doc" in capsys.readouterr().err
    assert tiny_train(tmp_path / "bad", "--propagate", "-2") == 2
    assert main(["tag", "train", "--resume", str(run), "--propagate", "1"]) == 2   # a run keeps its setting
    with pytest.raises(ConfigError, match="--propagate"):
        Tagger(propagate="twice", max_steps=1).fit(files / "train.tsv", files / "dev.tsv", out=str(tmp_path / "t"))


def test_auto_decides_on_the_dev_split_and_saves_the_decision(tiny_train, files, tmp_path, capsys):
    run = tmp_path / "run"
    assert tiny_train(run) == 0   # auto: the default
    assert f"--propagate auto ({AUTO_WINDOW} sentence(s) on each side" in capsys.readouterr().out
    decided = read_checkpoint_meta(load_run(run).path)["propagate"]
    assert decided["window"] == AUTO_WINDOW and decided["kept"] == (decided["dev_f1_propagated"] > decided["dev_f1"])
    best = max(json.loads(line).get("f1", -1) for line in (run / "metrics.jsonl").read_text().splitlines())
    assert decided["dev_f1"] == pytest.approx(best)   # the pass never touched the selection
    gate = Propagation(AUTO_WINDOW, source=0.0, target=0.001)   # the default confidence gate
    assert load_run(run).propagation == (gate if decided["kept"] else OFF) and decided["support"] == 0.001
