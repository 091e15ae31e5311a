"""--context: rows with neighbouring sentences, the sentences' spans, loss and decoding on the spans only."""
import json
from dataclasses import replace

import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging import Tagger
from rnnlab.tasks.tagging.api import evaluate_sentences
from rnnlab.tasks.tagging.context import (emissions_backward, extend, gather, neighbours, scatter,
                                          sentence_emissions, target_view, with_spans)
from rnnlab.tasks.tagging.data import Sentence, convert_sentences, read_conll
from rnnlab.tasks.tagging.ensemble import member_emissions, predict_ensemble
from rnnlab.tasks.tagging.model import TaggerModel, random_batch
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.task import TagConfig, TaggingTask, load_run, predict_tags
from rnnlab.tasks.tagging.vocab import Encoded, build_vocabs, encode
from rnnlab.train import run_task
from rnnlab.train.progress import Progress
from rnnlab.train.runs import prepare_run_dir
from rnnlab.train.verify import check_exact_resume

QUIET = dict(log=lambda *a: None, progress=Progress(enabled=False))
SMALL = dict(word_dim=8, case_dim=3, char_dim=5, char_hidden=4, hidden_size=8, batch_size=8, eval_batch=16,
             max_minutes=0.0, schedule="constant")


def test_read_conll_numbers_the_documents(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("-DOCSTART- O\n\na O\nb O\n\nc O\n\n-DOCSTART- O\n\nd O\n-DOCSTART- O\ne O\n\n")
    assert [(s.tokens, s.doc) for s in read_conll(path)] == [(("a", "b"), 0), (("c",), 0), (("d",), 1), (("e",), 2)]
    path.write_text("a O\n\n-DOCSTART- O\nb O\n")
    assert [s.doc for s in read_conll(path)] == [0, 1]


def test_neighbours_stay_in_their_document_and_list():
    assert neighbours([0, 0, 0, 1, 1], 1) == [([], [1]), ([0], [2]), ([1], []), ([], [4]), ([3], [])]
    assert neighbours([0, 0, 0, 0], 2)[1] == ([0], [2, 3])
    # two files' sentences (each numbering its documents from 0) never share a document
    assert neighbours([0, 1, 0], 1) == [([], []), ([], []), ([], [])]


def _fake(words):
    w = np.asarray(words, np.int64)
    T = len(w)
    return Encoded(w, np.tile(w[:, None], (1, 2)), np.full(T, 2), w % 3, np.zeros((T, 0), np.int64), w + 100)


def test_extend_builds_rows_and_cuts_context_never_the_sentence():
    enc = [_fake([1, 2]), _fake([3, 4, 5]), _fake([6]), _fake([7, 8, 9, 10])]
    rows, spans = extend(enc, [0, 0, 0, 0], 0)
    assert spans is None and all(r is e for r, e in zip(rows, enc))
    rows, spans = extend(enc, [0, 0, 0, 0], 1)
    assert [r.words.tolist() for r in rows] == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6], [3, 4, 5, 6, 7, 8, 9, 10],
                                                [6, 7, 8, 9, 10]]
    assert spans.tolist() == [[0, 2], [2, 3], [3, 1], [1, 4]]
    for r, (a, n), e in zip(rows, spans, enc):   # the sentence's own tags at its span, 0 at the context
        assert r.tags[a:a + n].tolist() == e.tags.tolist() and not r.tags[:a].any() and not r.tags[a + n:].any()
        assert r.chars[a:a + n].tolist() == e.chars.tolist()
    rows, spans = extend(enc, [0, 0, 1, 1], 2, max_len=4)   # budget 3 for sentence 2, [6] (doc 1): right only
    assert rows[2].words.tolist() == [6, 7, 8, 9] and spans[2].tolist() == [0, 1]
    assert rows[1].words.tolist() == [2, 3, 4, 5] and spans[1].tolist() == [1, 3]   # the nearest token kept
    assert rows[3].words.tolist() == [7, 8, 9, 10] and spans[3].tolist() == [0, 4]  # longer than the cap: itself
    rows, spans = extend(enc, [0, 0, 0, 0], 2, max_len=6)   # sentence 1: budget 3, left 2 / right 5 tokens
    assert rows[1].words.tolist() == [2, 3, 4, 5, 6, 7] and spans[1].tolist() == [1, 3]


def test_gather_and_scatter_are_adjoint():
    rng = np.random.default_rng(0)
    batch = with_spans(random_batch(rng, [5, 3, 4]), [(1, 3), (0, 3), (3, 1)])
    a, d = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 3, 2))
    g = gather(a, batch)
    assert g[2, 1:].sum() == 0 and np.array_equal(g[0, :3], a[0, 1:4])
    assert np.sum(g * d) == pytest.approx(np.sum(a * scatter(d * target_view(batch).mask[..., None], batch, 5)))


def test_context_tokens_get_no_emissions_in_the_loss_but_are_read():
    rng = np.random.default_rng(1)
    model = TaggerModel(9, 7, 5, 4, word_dim=5, char_dim=4, char_hidden=3, hidden_size=6, dropout=0.0, seed=2)
    batch = with_spans(random_batch(rng, [6, 3, 5], vocab=9, chars=7, cases=5, tags=4), [(2, 3), (0, 2), (1, 3)])
    em, cache, target = sentence_emissions(model, batch)
    loss, lcache = model.loss(em, target)
    d = emissions_backward(model.loss_backward(lcache), batch)
    context = batch.mask & ~scatter(target.mask, batch, batch.words.shape[1])
    assert context.sum() == 14 - 8 and not d[context].any() and d[~context & batch.mask].any()
    same_words = with_spans(random_batch(np.random.default_rng(1), [6, 3, 5], vocab=9, chars=7, cases=5, tags=4),
                            batch.span)
    same_words.tags[context] = (same_words.tags[context] + 1) % 4   # other tags at the context: the same loss
    assert model.loss(*sentence_emissions(model, same_words)[::2])[0] == loss
    changed = with_spans(random_batch(np.random.default_rng(1), [6, 3, 5], vocab=9, chars=7, cases=5, tags=4),
                         batch.span)
    changed.words[0, 0] = (changed.words[0, 0] % 8) + 1       # a context word of row 0: its sentence hears it
    em2 = sentence_emissions(model, changed)[0]
    assert not np.allclose(em2[0], em[0]) and np.array_equal(em2[1:], em[1:])


def test_context_rows_match_torch_in_float64(torch_tagger):
    torch = torch_tagger.torch
    rng = np.random.default_rng(3)
    model = TaggerModel(9, 7, 5, 4, word_dim=5, case_dim=3, char_dim=4, char_hidden=3, hidden_size=6, dropout=0.0,
                        seed=2)
    gradcheck.randomize(model, rng, scale=0.8)
    batch = with_spans(random_batch(rng, [6, 1, 4, 6], vocab=9, chars=7, cases=5, tags=4, max_chars=5),
                       [(2, 3), (0, 1), (0, 4), (5, 1)])
    target = target_view(batch)
    tm = torch_tagger.TorchTagger(model)
    em_rows = tm.emissions(batch)   # torch reads the same rows, then keeps the sentences' positions
    span = torch.from_numpy(batch.span)
    t = torch.arange(int(target.lengths.max()))
    live = t[None, :] < span[:, 1:]
    pos = torch.where(live, span[:, :1] + t[None, :], torch.zeros_like(t[None, :]))
    em_t = em_rows.gather(1, pos[..., None].expand(-1, -1, em_rows.shape[2])) * live[..., None]
    tm.loss(em_t, target).backward()
    model.zero_grad()
    em, cache, _ = sentence_emissions(model, batch)
    loss, lcache = model.loss(em, target)
    model.backward(emissions_backward(model.loss_backward(lcache), batch), cache)
    # tolerances as in test_model.py's parity test (same sizes, float64 on both sides)
    np.testing.assert_allclose(em, em_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(tm.loss(em_t, target).item(), rel=1e-12)
    theirs = torch_tagger.grads_as_rnnlab(tm, model)
    for name, _, g in model.named_parameters():
        np.testing.assert_allclose(g, theirs[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert model.decode(em, target.lengths) == tm.crf.decode(em_t.detach(), torch.from_numpy(target.lengths))


def test_the_tagger_spec_checks_context_rows():
    rows = gradcheck.check(TaggerModel)
    context = [r for r in rows if "context rows" in r.case]
    assert len({r.case for r in context}) == 2 and all(r.passed for r in context)


def make_task(n=64, **kw):
    cfg = TagConfig(**{**SMALL, "scheme": "BIOES", **kw})
    train = convert_sentences(synthetic_sentences(n, seed=1), "BIOES")
    dev = convert_sentences(synthetic_sentences(24, seed=2), "BIOES")
    return cfg, TaggingTask(cfg, build_vocabs(train, scheme="BIOES"), train, dev)


def test_context_zero_is_the_plain_tagger():
    cfg, task = make_task(context=0)
    assert task.spans is None and task.rows == task.encoded
    batch = task.next_batch()
    assert batch.span is None and target_view(batch) is batch
    _, task1 = make_task(context=1)
    b1 = task1.next_batch()
    assert b1.span is not None and (b1.span[:, 1] <= b1.lengths).all() and (b1.lengths > b1.span[:, 1]).any()


def test_training_with_context_resumes_exactly(tmp_path):
    kw = dict(max_steps=17, eval_every=5, log_every=1, schedule="cosine", guard="skip", dropout=0.3, word_unk=0.5,
              seed=3, context=1)
    cfg, _ = make_task(**kw)
    check_exact_resume(lambda: make_task(**kw)[1], cfg, tmp_path, stop_at=int(np.random.default_rng(8).integers(1, 16)))


def test_config_refuses_bad_context():
    with pytest.raises(ConfigError, match="--context"):
        TagConfig(dataset="x", context=-1).validate()
    with pytest.raises(ConfigError, match="--word-lm-weight"):
        TagConfig(dataset="x", context=1, word_lm_weight=0.1).validate()


def test_prediction_reads_the_context_it_was_trained_with(tmp_path):
    cfg, task = make_task(n=120, max_steps=3, eval_every=1, lr=1e-2, dropout=0.1, context=2, context_max_len=30)
    run_task(task, cfg, prepare_run_dir(str(tmp_path / "run")), **QUIET)
    loaded = load_run(tmp_path / "run")
    assert (loaded.context, loaded.context_max_len) == (2, 30)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    best = max(r["f1"] for r in rows if r.get("split") == "val")
    report = evaluate_sentences(loaded, task.dev)   # tag eval's path: the best checkpoint on the dev list
    assert 100 * report.f1 == pytest.approx(best, rel=1e-9)
    tagged, _ = predict_tags(loaded.model, loaded.vocabs, task.dev, "BIOES", 16, loaded.max_word_len,
                             context=2, context_max_len=30)
    assert predict_ensemble([loaded, loaded], task.dev) == tagged   # members' emissions with their context
    tagger = Tagger.load(tmp_path / "run")
    assert tagger.predict([list(s.tokens) for s in task.dev]) == tagged  # a list: its order is the context
    alone = [tagger.predict([list(s.tokens)])[0] for s in task.dev]
    plain, _ = predict_tags(loaded.model, loaded.vocabs, task.dev, "BIOES", 16, loaded.max_word_len)
    assert sum(a != b for a, b in zip(tagged, plain)) >= 3   # (so a path that ignored the context would fail above)
    ctx, none = member_emissions(loaded, task.dev), member_emissions(replace(loaded, context=0), task.dev)
    assert sum(not np.allclose(a, b) for a, b in zip(ctx, none)) > len(ctx) // 2
    assert alone == plain   # one sentence at a time has no neighbours: the same as no context
    docs = [Sentence(s.tokens, s.tags, doc=i) for i, s in enumerate(task.dev)]   # every sentence its own document
    assert predict_tags(loaded.model, loaded.vocabs, docs, "BIOES", 16, loaded.max_word_len, context=2,
                        context_max_len=30)[0] == plain


def test_predict_stream_reads_context_across_its_blocks(tmp_path, monkeypatch):
    cfg, task = make_task(n=120, max_steps=3, eval_every=1, lr=1e-2, dropout=0.1, context=2, context_max_len=30)
    run_task(task, cfg, prepare_run_dir(str(tmp_path / "run")), **QUIET)
    tagger = Tagger.load(tmp_path / "run")
    text = " ".join(" ".join((s.tokens[0].capitalize(), *s.tokens[1:])) + " ." for s in task.dev)
    whole = list(tagger.predict_stream([text], batch_sentences=10_000))
    tokens = [[t["text"] for t in s["tokens"]] for s in whole]
    assert len(tokens) > 12
    assert [[t["tag"] for t in s["tokens"]] for s in whole] == tagger.predict(tokens)
    calls = []
    real = Tagger.predict
    monkeypatch.setattr(Tagger, "predict", lambda self, items: calls.append(list(items)) or real(self, items))
    for size in (1, 2, 5):   # blocks of 1, 2, 5 sentences: each still reads 2 neighbours on each side
        calls.clear()
        assert list(tagger.predict_stream([text], batch_sentences=size)) == whole
        starts = [0] + [min(k * size, len(tokens)) for k in range(1, len(calls))]
        for k, (call, own) in enumerate(zip(calls, starts)):
            first = max(0, own - 2)
            assert call == tokens[first:first + len(call)]
            assert len(call) == min(own + size + 2, len(tokens)) - first


def test_the_command_line_trains_saves_and_evaluates_with_context(tmp_path, capsys):
    from rnnlab.cli import main
    from rnnlab.tasks.tagging.data import write_conll

    for name, n, seed in (("train", 60, 1), ("dev", 20, 2)):
        write_conll(tmp_path / f"{name}.tsv", synthetic_sentences(n, seed=seed))
        text = (tmp_path / f"{name}.tsv").read_text().split("\n\n")   # three documents
        (tmp_path / f"{name}.tsv").write_text("".join(("-DOCSTART- O\n\n" if i % 7 == 0 else "") + s + "\n\n"
                                                      for i, s in enumerate(text) if s.strip()))
    assert {s.doc for s in read_conll(tmp_path / "dev.tsv")} == {0, 1, 2}
    run = tmp_path / "run"
    assert main(["tag", "train", "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "dev.tsv"),
                 "--out", str(run), "--max-steps", "80", "--eval-every", "40", "--max-minutes", "0", "--hidden-size",
                 "8", "--char-hidden", "4", "--lr", "0.01", "--context", "1", "--context-max-len", "40",
                 "--propagate", "off"]) == 0   # eval below: the dev F1 of training, no pass after decoding
    assert json.loads((run / "config.json").read_text())["context"] == 1
    assert (load_run(run).context, load_run(run).context_max_len) == (1, 40)
    capsys.readouterr()
    assert main(["tag", "eval", str(run), "--split", "dev"]) == 0
    best = max(json.loads(line).get("f1", -1) for line in (run / "metrics.jsonl").read_text().splitlines())
    assert best > 20 and f" {best:.2f} " in capsys.readouterr().out.split("overall")[-1]   # dev F1 as in training
    assert main(["tag", "train", "--resume", str(run), "--context", "2"]) == 2   # a run keeps its context
