"""The tagging task in the one training loop: learning, exact resume, the guard, the run folder."""
import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint
from rnnlab.errors import ConfigError
from rnnlab.tasks.tagging.data import convert_sentences, write_conll
from rnnlab.tasks.tagging.synthetic import synthetic_sentences
from rnnlab.tasks.tagging.task import TagConfig, TaggingTask, load_run
from rnnlab.tasks.tagging.vocab import build_vocabs
from rnnlab.train import run_task
from rnnlab.train.guard import DivergenceError
from rnnlab.train.progress import MetricsLog, Progress
from rnnlab.train.runs import prepare_run_dir
from rnnlab.train.verify import check_exact_resume

QUIET = dict(log=lambda *a: None, progress=Progress(enabled=False))
SMALL = dict(word_dim=8, case_dim=3, char_dim=5, char_hidden=4, hidden_size=8, batch_size=8, eval_batch=16,
             max_minutes=0.0, schedule="constant")


def make_task(scheme="BIOES", n=64, **kw):
    cfg = TagConfig(**{**SMALL, "scheme": scheme, **kw})  # the task takes sentences: no dataset or files
    train = convert_sentences(synthetic_sentences(n, seed=1), scheme)
    dev = convert_sentences(synthetic_sentences(24, seed=2), scheme)
    return cfg, TaggingTask(cfg, build_vocabs(train, scheme=scheme), train, dev)


def test_learns_the_synthetic_entities(tmp_path):
    cfg, task = make_task(n=200, max_steps=150, eval_every=50, lr=1e-2, schedule="constant", dropout=0.1)
    summary = run_task(task, cfg, prepare_run_dir(str(tmp_path / "run")), **QUIET)
    assert summary["best"] > 80.0 and summary["selection"] == "f1"
    rows = MetricsLog(tmp_path / "run" / "metrics.jsonl").read()
    val = [r for r in rows if r["split"] == "val"]
    assert {"f1", "precision", "recall", "acc", "loss"} <= set(val[0])
    loaded = load_run(tmp_path / "run")
    assert loaded.scheme == "BIOES" and loaded.vocabs.tags.itos[0] == "O" and not loaded.model.training


@pytest.mark.parametrize("crf,average", [(True, 0.0), (False, 0.0), (True, 0.9)],
                         ids=["crf", "softmax", "crf-averaged"])
def test_tagging_task_resumes_exactly_after_an_interruption(tmp_path, crf, average):
    """Stop at a random step (a KeyboardInterrupt inside the step), resume: identical to one straight run
    (shuffled epochs, singleton-word replacement, dropout masks and the weight average included)."""
    kw = dict(max_steps=23, eval_every=5, log_every=1, schedule="cosine", guard="skip", dropout=0.3,
              word_unk=0.5, crf=crf, seed=3, average=average)
    cfg, _ = make_task(**kw)
    check_exact_resume(lambda: make_task(**kw)[1], cfg, tmp_path,
                       stop_at=int(np.random.default_rng(7).integers(1, 22)))


class PoisonedTask(TaggingTask):
    """Every step from ``bad`` on gets a NaN gradient (as a blown-up hidden state would)."""

    bad = {3, 4}
    seen = 0

    def forward_backward(self, model, batch, carry):
        out = super().forward_backward(model, batch, carry)
        self.seen += 1
        if self.seen in self.bad:
            model.out.grads["W"][0, 0] = np.nan
        return out


def test_the_guard_skips_poisoned_steps_and_aborts_with_an_explanation(tmp_path):
    cfg, _ = make_task(max_steps=8, eval_every=4, guard="skip")
    train, dev = synthetic_sentences(64, seed=1), synthetic_sentences(24, seed=2)
    task = PoisonedTask(cfg, build_vocabs(convert_sentences(train, "BIOES"), scheme="BIOES"),
                        convert_sentences(train, "BIOES"), convert_sentences(dev, "BIOES"))
    run_task(task, cfg, prepare_run_dir(str(tmp_path / "skip")), **QUIET)
    rows = MetricsLog(tmp_path / "skip" / "metrics.jsonl").read()
    assert [r["step"] for r in rows if r["split"] == "guard"] == [3, 4]
    weights = load_checkpoint(tmp_path / "skip" / "last.npz")[0]
    assert all(np.isfinite(v).all() for v in weights.values() if v.dtype.kind == "f")
    cfg.guard = "abort"
    task = PoisonedTask(cfg, task.vocabs, convert_sentences(train, "BIOES"), convert_sentences(dev, "BIOES"))
    with pytest.raises(DivergenceError, match="step 3"):
        run_task(task, cfg, prepare_run_dir(str(tmp_path / "abort")), **QUIET)


def test_config_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        TagConfig(dataset="ncbi-disease", train_file="a").validate()
    with pytest.raises(ConfigError, match="--dev"):
        TagConfig(train_file="a").validate()
    with pytest.raises(ConfigError, match="BIO or BIOES"):
        TagConfig(dataset="x", scheme="IOB1").validate()
    path = tmp_path / "t.tsv"
    write_conll(path, synthetic_sentences(3))
    assert TagConfig(train_file=str(path), dev_file=str(path)).validate().scheme == "BIOES"


def test_pretrained_vectors_initialise_the_word_embeddings(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("2 8\nCancer " + " ".join(["0.25"] * 8) + "\nnot-in-vocab " + " ".join(["1"] * 8) + "\n",
                    encoding="utf-8")
    cfg, task = make_task(vectors=str(path))
    model = task.build_model()
    np.testing.assert_array_equal(model.word.params["W"][task.vocabs.words.index("cancer")], 0.25)
    cfg.word_dim = 5
    with pytest.raises(ConfigError, match="--word-dim 8"):
        task.build_model()


def test_metrics_equal_seqeval_on_a_trained_models_output(tmp_path):
    """The entity F1 the task reports equals seqeval's on a trained tagger's predictions (not only random ones)."""
    seqeval = pytest.importorskip("seqeval.metrics")
    from rnnlab.tasks.tagging.metrics import evaluate
    from rnnlab.tasks.tagging.task import predict_tags

    cfg, task = make_task(scheme="BIO", n=120, max_steps=36, eval_every=18, lr=1e-2, dropout=0.1)
    run_task(task, cfg, prepare_run_dir(str(tmp_path / "run")), **QUIET)
    loaded = load_run(tmp_path / "run")
    test = synthetic_sentences(40, seed=9)
    predicted, _ = predict_tags(loaded.model, loaded.vocabs, test, loaded.scheme)
    gold = [list(s.tags) for s in test]
    ours = evaluate(gold, predicted)
    assert 0.0 < ours.f1 < 1.0   # a partly trained model: some entities right, some wrong
    # float64 ratios of integer counts, same formula as seqeval: a few ulps; abs 1e-12.
    assert ours.f1 == pytest.approx(seqeval.f1_score(gold, predicted), abs=1e-12)
    # float64 ratio of counts: abs 1e-12.
    assert ours.precision == pytest.approx(seqeval.precision_score(gold, predicted), abs=1e-12)
    # float64 ratio of counts: abs 1e-12.
    assert ours.recall == pytest.approx(seqeval.recall_score(gold, predicted), abs=1e-12)
