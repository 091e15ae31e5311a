"""The confidence gate of ``--propagate`` (``--propagate-confidence``, ``--propagate-support``): the rules on
hand-made sentences and confidences, thresholds 0 as the ungated pass byte for byte, then the options
through the model's marginals, ``tag train`` / ``tag eval`` / ``tag predict`` / ``Tagger`` and saved runs."""
import json

import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging.api import Tagger
from rnnlab.tasks.tagging.config import TagConfig
from rnnlab.tasks.tagging.consistency import (AUTO_WINDOW, OFF, Confidence, Propagation, confidence_of,
                                              from_config, propagate)
from rnnlab.tasks.tagging.data import read_conll, write_conll
from rnnlab.tasks.tagging.ensemble import load_members, predict_ensemble, tag_with_confidence
from rnnlab.tasks.tagging.schemes import chunks
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.task import in_gold_scheme, load_run, predict_tags


def _conf(tags, sure=0.99, entity=None, **at):
    """A Confidence for BIO ``tags``: ``sure`` everywhere; ``entity`` (default: sure on tagged
    tokens, 1 - sure on O); ``at``: {"s3": value} or {"e3": value} overrides at token 3."""
    s = [sure] * len(tags)
    e = [sure if t != "O" else 1 - sure for t in tags] if entity is None else [entity] * len(tags)
    for key, v in at.items():
        (s if key[0] == "s" else e)[int(key[1:])] = v
    return Confidence(s, e)


SRC = "patients with Wilms tumour .".split()
SRC_TAGS = ["O", "O", "B-D", "I-D", "O"]
LATER = "Wilms tumour is rare .".split()


def _gate(source=0.0, target=0.0, **kw):
    return Propagation(2, **{"abbreviations": False, "vote": False, **kw}, source=source, target=target)


def test_a_source_the_model_doubts_spreads_nothing():
    tokens, tags = [SRC, LATER], [SRC_TAGS, ["O"] * 5]
    sure = [_conf(SRC_TAGS, s3=0.6), _conf(["O"] * 5, entity=0.3)]
    assert propagate(tokens, tags, "BIO", _gate(0.5), confidence=sure)[1][:2] == ["B-D", "I-D"]
    assert propagate(tokens, tags, "BIO", _gate(0.7), confidence=sure)[1] == ["O"] * 5   # min over its tokens
    assert propagate(tokens, tags, "BIO", _gate(0.7), confidence=sure)[0] == SRC_TAGS    # kept as predicted


def test_a_recurrence_the_model_ruled_out_stays_untagged():
    tokens, tags = [SRC, LATER], [SRC_TAGS, ["O"] * 5]
    conf = [_conf(SRC_TAGS), _conf(["O"] * 5, entity=0.3, e1=0.02)]
    assert propagate(tokens, tags, "BIO", _gate(target=0.01), confidence=conf)[1][:2] == ["B-D", "I-D"]
    assert propagate(tokens, tags, "BIO", _gate(target=0.05), confidence=conf)[1] == ["O"] * 5   # token 1: 0.02
    both = [SRC, LATER, LATER]    # per place: the third sentence's occurrence is believed
    conf3 = conf + [_conf(["O"] * 5, entity=0.3)]
    got = propagate(both, [SRC_TAGS, ["O"] * 5, ["O"] * 5], "BIO", _gate(target=0.05), confidence=conf3)
    assert got[1] == ["O"] * 5 and got[2][:2] == ["B-D", "I-D"]


def test_the_gate_in_the_vote_and_the_abbreviation_rule():
    one = ("with ataxia .".split(), ["O", "B-D", "O"])
    free = ("ataxia here".split(), ["O", "O"])
    doubted = ("ataxia again".split(), ["B-D", "O"])
    tokens, tags = [one[0], doubted[0], free[0]], [one[1], doubted[1], free[1]]
    conf = [_conf(one[1]), _conf(doubted[1], s0=0.4), _conf(free[1], entity=0.5)]
    vote = Propagation(2, abbreviations=False, vote=True, source=0.0, target=0.0)
    assert propagate(tokens, tags, "BIO", vote, confidence=conf)[2][0] == "B-D"         # 2 tagged against 1
    gated = Propagation(2, abbreviations=False, vote=True, source=0.5, target=0.0)
    assert propagate(tokens, tags, "BIO", gated, confidence=conf)[2][0] == "B-D"        # 1 trusted against 1
    conf[0] = _conf(one[1], s1=0.4)
    assert propagate(tokens, tags, "BIO", gated, confidence=conf)[2] == ["O", "O"]      # no trusted source
    words = "adenomatous polyposis coli ( APC ) is inherited .".split()
    defined = ["B-D", "I-D", "I-D"] + ["O"] * 6
    later = "Mutations of APC .".split()
    abbr = Propagation(1, abbreviations=True, vote=True, source=0.9, target=0.0)
    sure = [_conf(defined), _conf(["O"] * 4, entity=0.5)]
    assert propagate([words, later], [defined, ["O"] * 4], "BIO", abbr, confidence=sure)[1][2] == "B-D"
    sure[0] = _conf(defined, s2=0.8)   # the long form is doubted: it defines nothing
    assert propagate([words, later], [defined, ["O"] * 4], "BIO", abbr, confidence=sure) == [defined, ["O"] * 4]


def test_thresholds_zero_are_the_ungated_pass_byte_for_byte():
    rng = np.random.default_rng(0)
    gold = synthetic_sentences(120, seed=4)
    tags = [[t if t == "O" or rng.random() < 0.6 else "O" for t in s.tags] for s in gold]
    tokens = [s.tokens for s in gold]
    conf = [Confidence(rng.random(len(t)).tolist(), rng.random(len(t)).tolist()) for t in tags]
    for window, abbr, vote in ((0, True, True), (3, True, False), (10, True, True), (None, False, True)):
        plain = propagate(tokens, tags, "BIO", Propagation(window, abbr, vote))
        assert propagate(tokens, tags, "BIO", Propagation(window, abbr, vote, 0.0, 0.0), confidence=conf) == plain
        assert propagate(tokens, tags, "BIO", Propagation(window, abbr, vote, 0.0, 0.0)) == plain
        assert plain != tags or window == 0
        strict = propagate(tokens, tags, "BIO", Propagation(window, abbr, vote, 0.0, 1.0), confidence=conf)
        assert strict == tags   # no token is sure to be an entity here: nothing is added
    assert not Propagation(3).gated and Propagation(3, source=0.1).gated and not Propagation(-1, source=0.1).gated
    with pytest.raises(ValueError, match="confidence gate needs"):
        propagate(tokens, tags, "BIO", Propagation(3, source=0.5))


def test_confidence_of_reads_the_marginals():
    names = ["O", "B-D", "I-D"]
    m = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    c = confidence_of(["O", "I-D"], m, names)
    assert c.sure == pytest.approx([0.7, 0.6]) and c.entity == pytest.approx([0.3, 0.9])


def test_settings_old_runs_and_messages():
    assert (TagConfig().propagate_confidence, TagConfig().propagate_support) == (0.0, 0.001)   # the defaults
    assert from_config({"propagate": "2"}) == Propagation(2)   # a run older than the gate: ungated
    assert TagConfig.from_dict({"dataset": "x"}).propagate_confidence == 0.0
    assert TagConfig.from_dict({"dataset": "x"}).propagate_support == 0.0
    cfg = {"propagate": "2", "propagate_confidence": 0.8, "propagate_support": 0.01}
    assert from_config(cfg) == Propagation(2, source=0.8, target=0.01)
    assert from_config(cfg, confidence=0, support=0.2) == Propagation(2, source=0.0, target=0.2)
    assert from_config({**cfg, "propagate": "auto"}, {"window": 5, "kept": True}) == Propagation(5, source=0.8,
                                                                                               target=0.01)
    assert from_config({**cfg, "propagate": "auto"}, {"window": 5, "kept": False}) == OFF
    with pytest.raises(ConfigError, match="--propagate-support must be a number from 0 to 1"):
        from_config(cfg, support=1.5)
    with pytest.raises(ConfigError, match="--propagate-confidence must be a number from 0 to 1"):
        TagConfig(dataset="x", propagate_confidence=-0.1).validate()
    with pytest.raises(ConfigError, match="--propagate-confidence must be a number from 0 to 1"):
        Propagation(2, source=float("nan"))   # however a setting is made (Tagger.load's overrides: replace())
    assert "confidence 0.8, support 0.01" in from_config(cfg).describe()
    assert "confidence" not in Propagation(2).describe()


@pytest.fixture(scope="module")
def gated_run(tiny_train, files, tmp_path_factory):
    run = tmp_path_factory.mktemp("gated") / "run"
    assert tiny_train(run, "--propagate", "2", "--propagate-confidence", "0.6", "--propagate-support", "0.05") == 0
    return run


def test_the_marginals_of_prediction(gated_run, files):
    loaded = load_run(gated_run)
    dev = read_conll(files / "dev.tsv", "auto")
    marginals = []
    tags, _ = predict_tags(loaded.model, loaded.vocabs, dev, loaded.scheme, 7, loaded.max_word_len,
                           marginals=marginals)
    assert tags == predict_tags(loaded.model, loaded.vocabs, dev, loaded.scheme, 7, loaded.max_word_len)[0]
    names = loaded.vocabs.tags.itos
    for s, t, m in zip(dev, tags, marginals):
        assert m.shape == (len(s.tokens), len(names)) and m.dtype == np.float64
        np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-9)   # float64 forward-backward over <= 30 tokens
        starts = [k for k, n in enumerate(names) if n.startswith(("I-", "E-"))]
        assert np.all(m[0, starts] == 0.0)   # the decoding's constraints: no sentence starts inside an entity
    assert tag_with_confidence([loaded], dev, 7, confidence=False)[1] is None
    _, conf = tag_with_confidence([loaded], dev, 7)
    for k in (0, 5, 17):   # alone in its batch, straight from the model's marginals
        one = []
        predict_tags(loaded.model, loaded.vocabs, dev[k:k + 1], loaded.scheme, 1, loaded.max_word_len, marginals=one)
        np.testing.assert_allclose(one[0], marginals[k], atol=1e-6)   # float32 emissions batched otherwise: ~1e-7
        assert conf[k] == confidence_of(tags[k], marginals[k], names)


def test_the_gate_is_saved_in_the_run_and_replaced_at_prediction(gated_run, files, tmp_path, capsys):
    setting = Propagation(2, source=0.6, target=0.05)
    assert load_run(gated_run).propagation == setting
    saved = json.loads((gated_run / "config.json").read_text())
    assert saved["propagate_confidence"] == 0.6 and saved["propagate_support"] == 0.05
    dev = read_conll(files / "dev.tsv", "auto")
    loaded = load_run(gated_run)
    tags, conf = tag_with_confidence([loaded], dev)
    expect = propagate([s.tokens for s in dev], tags, loaded.scheme, setting, confidence=conf)
    assert Tagger.load(gated_run).predict([s.tokens for s in dev]) == expect
    ungated = propagate([s.tokens for s in dev], tags, loaded.scheme, Propagation(2))
    tagger = Tagger.load(gated_run, propagate_confidence=0, propagate_support=0)
    assert tagger.loaded.propagation == Propagation(2) and tagger.predict([s.tokens for s in dev]) == ungated
    assert Tagger.load(gated_run, propagate="off", propagate_support=0.5).loaded.propagation == OFF
    assert load_members(str(gated_run), None, None, 0.2)[0].propagation == Propagation(2, source=0.6, target=0.2)
    # tag eval: thresholds 0 give the ungated pass's output byte for byte; the run's own gate its own output
    write_conll(tmp_path / "ungated.tsv", dev, in_gold_scheme(dev, ungated)[0])
    write_conll(tmp_path / "gated.tsv", dev, in_gold_scheme(dev, expect)[0])
    for flags, reference in ((["--propagate-confidence", "0", "--propagate-support", "0"], "ungated.tsv"),
                             ([], "gated.tsv")):
        assert main(["tag", "eval", str(gated_run), "--data", str(files / "dev.tsv"), "--output",
                     str(tmp_path / "o.tsv"), *flags]) == 0
        assert (tmp_path / "o.tsv").read_bytes() == (tmp_path / reference).read_bytes()
    text = tmp_path / "text.txt"
    text.write_text("Patients with Wilms tumour were treated. Wilms tumour is rare.\n")
    capsys.readouterr()
    assert main(["tag", "predict", str(gated_run), str(text), "--propagate-support", "0.3"]) == 0
    assert "\t" in capsys.readouterr().out
    for args in (["tag", "eval", str(gated_run), "--data", str(files / "dev.tsv"), "--propagate-confidence", "2"],
                 ["tag", "train", "--train", str(files / "train.tsv"), "--dev", str(files / "dev.tsv"),
                  "--propagate-support", "-1"]):
        with pytest.raises(SystemExit) as stop:
            main(args)
        assert stop.value.code == 2 and "must be a number from 0 to 1" in capsys.readouterr().err
    assert main(["tag", "train", "--resume", str(gated_run), "--propagate-confidence", "0.1"]) == 2


def test_an_ensemble_gates_on_its_averaged_marginals(tiny_train, gated_run, files, tmp_path):
    other = tmp_path / "other"
    assert tiny_train(other, "--propagate", "2", "--seed", "1") == 0
    dev = read_conll(files / "dev.tsv", "auto")
    members = load_members(f"{gated_run},{other}")
    tags, conf = tag_with_confidence(members, dev)
    assert tags == predict_ensemble(members, dev, propagation=OFF) and len(conf) == len(dev)
    assert all(0.0 <= p <= 1.0 + 1e-9 for c in conf for p in c.sure)
    setting = Propagation(2, source=0.6, target=0.05)   # the first member's
    assert predict_ensemble(members, dev) == propagate([s.tokens for s in dev], tags, members[0].scheme, setting,
                                                       confidence=conf)


def test_auto_decides_with_the_gate_and_an_old_run_loads_ungated(tiny_train, files, tmp_path, capsys):
    run = tmp_path / "run"
    assert tiny_train(run, "--propagate-confidence", "0.7", "--propagate-support", "0.02") == 0
    assert f"--propagate auto ({AUTO_WINDOW} sentence(s) on each side, abbreviations, majority vote, confidence " \
           "0.7, support 0.02)" in capsys.readouterr().out
    path = load_run(run).path
    decided = read_checkpoint_meta(path)["propagate"]
    assert decided["confidence"] == 0.7 and decided["support"] == 0.02
    gate = Propagation(AUTO_WINDOW, source=0.7, target=0.02)
    assert load_run(run).propagation == (gate if decided["kept"] else OFF)
    arrays, meta = load_checkpoint(path)   # as saved before the gate existed: no thresholds anywhere
    meta["config"] = {k: v for k, v in meta["config"].items() if k not in ("propagate_confidence", "propagate_support")}
    meta["propagate"] = {"window": AUTO_WINDOW, "dev_f1": 1.0, "dev_f1_propagated": 2.0, "kept": True}
    save_checkpoint(path, arrays, meta)
    assert load_run(run).propagation == Propagation(AUTO_WINDOW)
