"""A seed ensemble at prediction time: one run is that run; several average their scores, then Viterbi."""
import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.module import no_grad
from rnnlab.tasks.tagging.api import Tagger
from rnnlab.tasks.tagging.data import convert_sentences, write_conll
from rnnlab.tasks.tagging.ensemble import load_members, predict_ensemble
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.task import TagConfig, TaggingTask, constraints_for, predict_tags
from rnnlab.tasks.tagging.vocab import build_vocabs, encode, make_batches
from rnnlab.train import run_task
from rnnlab.train.progress import Progress
from rnnlab.train.runs import prepare_run_dir

SMALL = dict(word_dim=8, case_dim=3, char_dim=5, char_hidden=4, hidden_size=8, batch_size=8, eval_batch=16,
             max_minutes=0.0, schedule="constant", max_steps=40, eval_every=20, lr=1e-2, dropout=0.1)


def _train(root, seed, crf=True, n=120):
    cfg = TagConfig(**{**SMALL, "seed": seed, "crf": crf})
    train = convert_sentences(synthetic_sentences(n, seed=1), "BIOES")
    dev = convert_sentences(synthetic_sentences(24, seed=2), "BIOES")
    run = prepare_run_dir(str(root / f"s{seed}{'' if crf else '-softmax'}"))
    run_task(TaggingTask(cfg, build_vocabs(train, scheme="BIOES"), train, dev), cfg, run,
             log=lambda *a: None, progress=Progress(enabled=False))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    return [_train(root, seed) for seed in (0, 1)] + [_train(root, 2, crf=False)]


@pytest.fixture(scope="module")
def sentences():
    return synthetic_sentences(30, seed=5)


def test_one_run_is_that_run(runs, sentences):
    member = load_members(str(runs[0]))[0]
    alone, _ = predict_tags(member.model, member.vocabs, sentences, member.scheme, max_word_len=member.max_word_len)
    assert predict_ensemble([member], sentences) == alone


def _one_sentence_emissions(member, sentence):
    batch = make_batches(encode([sentence], member.vocabs, member.max_word_len), 1)[0]
    with no_grad():
        em, _ = member.model.forward(batch)
    return np.asarray(em[0], np.float64)


def test_two_runs_decode_the_mean_scores(runs, sentences):
    members = load_members(f"{runs[0]},{runs[1]}")
    got = predict_ensemble(members, sentences, batch_size=7)   # batching differs from the reference's
    crf = members[0].model.crf
    saved = {k: v.copy() for k, v in crf.params.items()}
    try:
        for key in ("transitions", "start", "end"):
            crf.params[key] = (members[0].model.crf.params[key].astype(np.float64)
                               + members[1].model.crf.params[key].astype(np.float64)) / 2
        constraints = constraints_for(members[0].model, members[0].vocabs, members[0].scheme)
        for s, tags in zip(sentences, got):
            mean = (_one_sentence_emissions(members[0], s) + _one_sentence_emissions(members[1], s)) / 2
            path = crf.decode(mean[None], np.array([len(s.tokens)]), constraints)[0]
            assert members[0].vocabs.tags.decode(path) == tags
    finally:
        crf.params.update(saved)
    singles = [predict_ensemble([m], sentences) for m in members]
    assert singles[0] != singles[1] or got == singles[0]   # two different models (or all agree)


def test_runs_that_predict_differently_are_refused(runs):
    with pytest.raises(ConfigError, match="ensemble: .*--crf"):
        load_members(f"{runs[0]},{runs[2]}")


def test_eval_and_predict_take_several_runs(runs, sentences, tmp_path, capsys):
    gold = tmp_path / "gold.tsv"
    write_conll(gold, sentences)
    assert main(["tag", "eval", f"{runs[0]},{runs[1]}", "--data", str(gold)]) == 0
    assert "ensemble of 2 runs" in capsys.readouterr().out
    text = tmp_path / "in.txt"
    text.write_text("The patient had breast cancer .\n", encoding="utf-8")
    assert main(["tag", "predict", f"{runs[0]},{runs[1]}", str(text)]) == 0
    assert "cancer\t" in capsys.readouterr().out
    tagger = Tagger.load(f"{runs[0]},{runs[1]}")
    assert len(tagger.members) == 2 and tagger.evaluate(sentences).f1 >= 0.0
