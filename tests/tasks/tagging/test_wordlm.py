"""The word-LM objective (Rei 2017, --word-lm-weight): the head against torch autograd (float64), alone
and inside the tagger's training objective; its gradcheck spec; the word classes; the task with it."""
import numpy as np
import pytest

from rnnlab import gradcheck
from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging.data import Sentence, convert_sentences
from rnnlab.tasks.tagging.model import TaggerModel, random_batch
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.task import TagConfig, TaggingTask, load_run, predict_tags
from rnnlab.tasks.tagging.vocab import build_vocabs
from rnnlab.tasks.tagging.wordlm import WordLMHead, word_classes
from rnnlab.train import run_task
from rnnlab.train.progress import MetricsLog, Progress
from rnnlab.train.runs import prepare_run_dir

QUIET = dict(log=lambda *a: None, progress=Progress(enabled=False))
SMALL = dict(word_dim=8, case_dim=3, char_dim=5, char_hidden=4, hidden_size=8, batch_size=8, eval_batch=16,
             max_minutes=0.0, schedule="constant")


def make_task(n=64, extra=(), **kw):
    """A task on generated sentences (``extra``: more training sentences, BIO)."""
    cfg = TagConfig(**{**SMALL, **kw})
    train = convert_sentences(synthetic_sentences(n, seed=1) + list(extra), "BIOES")
    dev = convert_sentences(synthetic_sentences(24, seed=2), "BIOES")
    return cfg, TaggingTask(cfg, build_vocabs(train, scheme="BIOES"), train, dev)

torch = pytest.importorskip("torch")


class TorchWordLM(torch.nn.Module):
    """Rei's objective written plainly in torch: a loop over sentences and positions, no gathering."""

    def __init__(self, head: WordLMHead, tt) -> None:
        super().__init__()
        self.H = head.hidden_size
        self.fh, self.fo = tt._linear_from(head.fwd_hidden), tt._linear_from(head.fwd_out)
        self.bh, self.bo = tt._linear_from(head.bwd_hidden), tt._linear_from(head.bwd_out)

    def forward(self, h, lengths, classes):
        total = h.new_zeros(())
        for b, n in enumerate(lengths):
            for t in range(int(n)):
                if t + 1 < n:
                    z = self.fo(torch.tanh(self.fh(h[b, t, :self.H])))
                    total = total - torch.log_softmax(z, -1)[int(classes[b, t + 1])]
                if t >= 1:
                    z = self.bo(torch.tanh(self.bh(h[b, t, self.H:])))
                    total = total - torch.log_softmax(z, -1)[int(classes[b, t - 1])]
        return total / len(lengths)

    def grads(self, prefix=""):
        return {f"{prefix}{name}.{p}": (lin.weight.grad.T if p == "W" else lin.bias.grad).detach().numpy()
                for name, lin in (("fwd_hidden", self.fh), ("fwd_out", self.fo), ("bwd_hidden", self.bh),
                                  ("bwd_out", self.bo)) for p in ("W", "b")}


@pytest.mark.parametrize("lengths", [[5, 1, 3, 5], [2], [1, 1]], ids=["mixed", "B=1,T=2", "all-length-1"])
def test_head_matches_torch_in_float64(torch_tagger, lengths):
    rng = np.random.default_rng(4)
    head = gradcheck.randomize(WordLMHead(4, 9, 3, seed=0), rng, scale=0.8)
    B, T = len(lengths), max(lengths)
    h = rng.standard_normal((B, T, 8))
    classes = rng.integers(0, 9, size=(B, T))
    loss, cache = head.forward(h, np.array(lengths), classes)
    head.zero_grad()
    dh = head.backward(0.7, cache)

    th = torch.tensor(h, requires_grad=True)
    tm = TorchWordLM(head, torch_tagger)
    loss_t = tm(th, lengths, classes)
    if loss_t.requires_grad:
        (0.7 * loss_t).backward()
    # float64, a sum of a few log-softmaxes of width 9: ~1e-15 relative; rel 1e-12.
    assert loss == pytest.approx(loss_t.item(), rel=1e-12, abs=1e-15)
    expected_dh = th.grad.numpy() if th.grad is not None else np.zeros_like(h)
    # float64 products of width <= 9 summed in another order: ~1e-15; rtol 1e-10, atol 1e-13 near 0.
    np.testing.assert_allclose(dh, expected_dh, rtol=1e-10, atol=1e-13)
    live = np.arange(T)[None, :] < np.array(lengths)[:, None]
    assert not dh[~live].any()     # padding gets exactly 0
    ours = {name: g for name, _, g in head.named_parameters()}
    theirs = {k: (v if v is not None else np.zeros_like(ours[k])) for k, v in tm.grads().items()} \
        if loss_t.requires_grad else {k: np.zeros_like(v) for k, v in ours.items()}
    for key in ours:
        # float64 gradients summed over a few positions: rtol 1e-10, atol 1e-13 for entries near 0.
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_tagger_objective_matches_torch_in_float64(torch_tagger, num_layers):
    """CRF loss + gamma x word-LM loss on the top BiLSTM layer: every parameter's gradient as torch's."""
    rng = np.random.default_rng(5)
    model = TaggerModel(9, 7, 5, 4, word_dim=5, case_dim=3, char_dim=4, char_hidden=3, hidden_size=6,
                        num_layers=num_layers, dropout=0.0, seed=2, word_lm_classes=6, word_lm_hidden=4)
    gradcheck.randomize(model, rng, scale=0.8)
    batch = random_batch(rng, [6, 1, 4, 6, 3], vocab=9, chars=7, cases=5, tags=4, max_chars=5, word_classes=6)
    gamma = 0.1
    tt = torch_tagger
    tm = tt.TorchTagger(model)
    lm = TorchWordLM(model.word_lm, tt)
    em_t = tm.emissions(batch)
    loss_t = tm.loss(em_t, batch) + gamma * lm(tm.h, batch.lengths, batch.word_classes)
    loss_t.backward()

    model.zero_grad()
    em, cache = model.forward(batch)
    loss, lcache = model.loss(em, batch)
    value, lmcache = model.word_lm.forward(cache.h, batch.lengths, batch.word_classes)
    model.backward(model.loss_backward(lcache), cache, model.word_lm.backward(gamma, lmcache))
    # float64 CRF and word-LM losses, means of log-sum-exps over a few sentences: rel 1e-12.
    assert loss + gamma * value == pytest.approx(loss_t.item(), rel=1e-12)
    theirs = {**tt.grads_as_rnnlab(tm, model), **lm.grads("word_lm.")}
    ours = {name: g for name, _, g in model.named_parameters()}
    assert ours.keys() == theirs.keys()
    for key in ours:
        # float64 gradients through the BiLSTM and char encoder, summed in another order than torch:
        # ~1e-13 relative for the smallest; rtol 1e-9 leaves 1e4x, atol 1e-12 for entries near 0.
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_gradcheck_specs_pass():
    for cls in (WordLMHead, TaggerModel):
        rows = gradcheck.check(cls)
        assert rows and all(r.passed for r in rows), gradcheck.format_table([r for r in rows if not r.passed])
    labels = {r.case for r in gradcheck.check(TaggerModel)}
    assert any("word-LM objective" in label for label in labels)


def test_word_classes_keep_the_most_frequent_words():
    # ids 0 (padding) and 1 (unknown) are never a class of their own
    ids = [np.array([2, 3, 3, 4, 4, 4, 1, 1, 1, 1]), np.array([5, 3, 4])]
    np.testing.assert_array_equal(word_classes(ids, 7, 2), [0, 0, 0, 2, 1, 0, 0])   # 4 (x4), 3 (x3); 2, 5 rare
    np.testing.assert_array_equal(word_classes(ids, 7, 10), [0, 0, 3, 2, 1, 4, 0])  # ties (2, 5: once) by id


def test_on_by_default_off_at_zero_and_checked():
    """The default weight (0.03) builds the head; weight 0 builds none: the model and its spec are what
    they were before the option."""
    from rnnlab.tasks.tagging.config import WORD_LM_WEIGHT

    _, task = make_task()
    assert WORD_LM_WEIGHT == 0.03 and task.cfg.word_lm_gamma() == 0.03
    assert task.build_model().word_lm is not None and task.word_class is not None
    _, task = make_task(word_lm_weight=0.0)
    model = task.build_model()
    assert model.word_lm is None and "word_lm_classes" not in model.spec and task.word_class is None
    assert not any(name.startswith("word_lm") for name, _, _ in model.named_parameters())
    with pytest.raises(ConfigError, match="word-lm-weight"):
        TagConfig(dataset="x", word_lm_weight=-0.1).validate()
    with pytest.raises(ConfigError, match="word-lm-vocab"):
        TagConfig(dataset="x", word_lm_weight=0.1, word_lm_vocab=0).validate()


def test_the_default_weight_gives_way_to_context_and_is_saved_as_a_number():
    """Left at its default, the weight is 0.03, or 0 under --context (which a weight given with it
    refuses); validate() writes the number, so a saved run holds what it trained with; a run saved
    before the option existed (no weight in its settings) trained without the word LM."""
    assert TagConfig(dataset="x").validate().word_lm_weight == 0.03
    assert TagConfig(dataset="x", context=1).validate().word_lm_weight == 0.0
    assert TagConfig(dataset="x", word_lm_weight=0.1).validate().word_lm_weight == 0.1
    with pytest.raises(ConfigError, match="--context and --word-lm-weight"):
        TagConfig(dataset="x", context=1, word_lm_weight=0.03).validate()
    saved = TagConfig(dataset="x").validate().__dict__
    assert TagConfig.from_dict(saved).word_lm_gamma() == 0.03
    old = {k: v for k, v in saved.items() if not k.startswith(("word_lm", "propagate"))}
    assert TagConfig.from_dict(old).word_lm_gamma() == 0.0
    assert TagConfig.from_dict(old).propagate == "off" and TagConfig.from_dict(saved).propagate == "auto"


def test_the_flag():
    """--word-lm-weight reads a number >= 0; left out, it stays unset (the config's default decides)."""
    import argparse

    from rnnlab.commands.configflags import add_config_flags, given_settings

    p = argparse.ArgumentParser()
    add_config_flags(p, TagConfig)
    assert given_settings(p.parse_args(["--word-lm-weight", "0.05"]), TagConfig) == {"word_lm_weight": 0.05}
    assert "word_lm_weight" not in given_settings(p.parse_args([]), TagConfig)
    assert "(default: 0.03; 0 with --context)" in " ".join(p.format_help().split())
    with pytest.raises(SystemExit):
        p.parse_args(["--word-lm-weight", "-1"])


def test_targets_are_the_words_before_word_unk():
    """The word LM predicts the sentence's own words, not the <unk> that word-unk put in their place."""
    rare = [Sentence((f"zz{i}", "with", "cancer", f"yy{i}"), ("O", "O", "B-Disease", "O"), (), f"rare:{i}")
            for i in range(40)]   # words seen once: word-unk 1.0 replaces every one of them
    _, task = make_task(n=64, extra=rare, word_lm_weight=0.1, word_lm_vocab=1000, word_unk=1.0)
    replaced = 0
    for _ in range(2 * len(task._batches())):   # two epochs, across the epoch boundary
        original = task._batches()[task.index]
        batch = task.next_batch()
        np.testing.assert_array_equal(batch.word_classes, task.word_class[original.words])
        replaced += int((batch.words != original.words).sum())
        assert not (batch.word_classes[batch.words != original.words] == 0).any()   # the rare words have classes
    assert replaced >= 2 * 80   # every rare word, both epochs


def test_trains_saves_and_predicts_with_the_objective(tmp_path):
    """End to end on generated sentences: the run learns the entities, its checkpoint holds the head
    (the spec rebuilds it), and prediction equals the same weights without the head."""
    cfg, task = make_task(n=200, max_steps=150, eval_every=50, lr=1e-2, schedule="constant", dropout=0.1,
                          word_lm_weight=0.1, word_lm_vocab=20)
    summary = run_task(task, cfg, prepare_run_dir(str(tmp_path / "run")), **QUIET)
    assert summary["best"] > 80.0
    loaded = load_run(tmp_path / "run")
    assert loaded.model.word_lm is not None and loaded.model.spec["word_lm_classes"] == 21
    plain = TaggerModel(**{k: v for k, v in loaded.model.spec.items() if not k.startswith("word_lm")}).eval()
    plain.load_state_dict({k: v for k, v in loaded.model.state_dict().items() if not k.startswith("word_lm.")})
    test = synthetic_sentences(40, seed=9)
    ours, _ = predict_tags(loaded.model, loaded.vocabs, test, loaded.scheme)
    assert ours == predict_tags(plain, loaded.vocabs, test, loaded.scheme)[0]


def test_the_objective_changes_training_and_its_loss_is_logged(tmp_path):
    """Same seed and batches, weight 0.5 against 0: the shared weights move differently, and the
    logged training loss is the joint objective (larger: it adds the word LM's nats)."""
    runs = {}
    for gamma in (0.0, 0.5):
        cfg, task = make_task(n=64, max_steps=6, eval_every=6, log_every=1, word_lm_weight=gamma,
                              word_lm_vocab=30, seed=1)
        run_task(task, cfg, prepare_run_dir(str(tmp_path / f"g{gamma}")), **QUIET)
        runs[gamma] = load_run(tmp_path / f"g{gamma}" / "last.npz").model.state_dict()
    assert not np.array_equal(runs[0.0]["out.W"], runs[0.5]["out.W"])
    train = {g: next(r["loss"] for r in MetricsLog(tmp_path / f"g{g}" / "metrics.jsonl").read()
                     if r["split"] == "train") for g in runs}
    assert train[0.5] > train[0.0] + 0.5   # 0.5 x (more than a nat per sentence of word-LM loss)


def test_resumes_exactly_with_the_objective(tmp_path):
    """Stopped at a random step and resumed: identical to one straight run (word-unk and dropout on)."""
    from rnnlab.train.verify import check_exact_resume

    kw = dict(max_steps=17, eval_every=5, log_every=1, schedule="cosine", guard="skip", dropout=0.3, word_unk=0.5,
              seed=3, word_lm_weight=0.2, word_lm_vocab=25)
    cfg, _ = make_task(**kw)
    check_exact_resume(lambda: make_task(**kw)[1], cfg, tmp_path, stop_at=int(np.random.default_rng(8).integers(1, 16)))


@pytest.mark.parametrize("options, said, saved", [({}, "word-LM objective 0.03 in training", 0.03),
                                                  ({"context": 1}, "no word-LM objective", 0.0)],
                         ids=["default", "context"])
def test_the_run_says_and_saves_the_weight(tmp_path, options, said, saved):
    """`tag train` / ``Tagger.fit``: the first line names the weight in use; config.json holds it."""
    import json

    from rnnlab.tasks.tagging import Tagger
    from rnnlab.tasks.tagging.data import write_conll

    for name, n, seed in (("train", 40, 1), ("dev", 12, 2)):
        write_conll(tmp_path / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    lines = []
    Tagger(word_dim=8, case_dim=3, char_dim=5, char_hidden=4, hidden_size=6, max_minutes=0.0, **options).fit(
        tmp_path / "train.tsv", tmp_path / "dev.tsv", out=str(tmp_path / "run"), max_steps=2, eval_every=2,
        log=lines.append)
    assert said in lines[0] and "(--word-lm-weight)" in lines[0]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["word_lm_weight"] == saved
