"""Entity metrics equal seqeval's default (conlleval-compatible) mode, ill-formed sequences included."""
import warnings

import numpy as np
import pytest

from rnnlab.tasks.tagging.metrics import Score, evaluate, format_table
from rnnlab.tasks.tagging.schemes import bio_to_bioes

seqeval = pytest.importorskip("seqeval")
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score  # noqa: E402
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support  # noqa: E402


def random_tags(rng, n, prefixes, types=("PER", "LOC", "ORG"), p_o=0.4):
    out = []
    for _ in range(n):
        if rng.random() < p_o:
            out.append("O")
        else:
            out.append(f"{rng.choice(list(prefixes))}-{rng.choice(types)}")
    return out


def perturb(rng, gold, prefixes, rate):
    """A prediction: gold tags with some replaced at random (ill-formed sequences arise)."""
    return [t if rng.random() > rate else random_tags(rng, 1, prefixes)[0] for t in gold]


def assert_equal_to_seqeval(gold, pred):
    report = evaluate(gold, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # ratios of small integer counts in float64, same formula as seqeval: a few ulps; abs 1e-12.
        assert report.precision == pytest.approx(precision_score(gold, pred), abs=1e-12)
        # float64 ratio of counts: abs 1e-12.
        assert report.recall == pytest.approx(recall_score(gold, pred), abs=1e-12)
        # float64 harmonic mean of two ratios: a few ulps; abs 1e-12.
        assert report.f1 == pytest.approx(f1_score(gold, pred), abs=1e-12)
        # float64 ratio of counts: abs 1e-12.
        assert report.token_accuracy == pytest.approx(accuracy_score(gold, pred), abs=1e-12)
        p, r, f, support = precision_recall_fscore_support(gold, pred, average=None)
    types = list(report.per_type)
    assert len(types) == len(p)
    for i, t in enumerate(types):
        s = report.per_type[t]
        # float64 ratios of counts per type: abs 1e-12.
        assert (s.precision, s.recall, s.f1) == pytest.approx((p[i], r[i], f[i]), abs=1e-12), t
        assert s.gold == support[i], t
    return report


# (scheme, seed): BIO with seeds 0..29, BIOES with seeds 1000..1019
@pytest.mark.parametrize("scheme, seed", [("BI", s) for s in range(30)] + [("BIES", 1000 + s) for s in range(20)])
def test_random_predictions_equal_seqeval(scheme, seed):
    rng = np.random.default_rng(seed)
    gold = [random_tags(rng, int(rng.integers(1, 15)), scheme) for _ in range(int(rng.integers(1, 20)))]
    pred = [perturb(rng, g, scheme, rate=rng.uniform(0.05, 0.6)) for g in gold]
    assert_equal_to_seqeval(gold, pred)


@pytest.mark.parametrize("seed", range(10))
def test_well_formed_bioes_converted_from_bio_equal_seqeval(seed):
    rng = np.random.default_rng(2000 + seed)
    gold = [bio_to_bioes(random_tags(rng, int(rng.integers(1, 12)), "BI")) for _ in range(15)]
    pred = [bio_to_bioes(perturb(rng, g, "BI", 0.3)) for g in gold]
    assert_equal_to_seqeval(gold, pred)


def test_conlleval_boundary_rules():
    # I-X after O starts an entity; B-X I-Y is two entities; both boundaries and the type must match
    gold = [["O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"]]
    pred = [["O", "I-PER", "I-PER", "O", "B-LOC", "I-ORG"]]
    r = assert_equal_to_seqeval(gold, pred)
    assert r.per_type["PER"] == Score(1, 1, 1)
    assert r.per_type["LOC"] == Score(1, 1, 0)
    assert r.per_type["ORG"] == Score(0, 1, 0)
    assert r.overall == Score(2, 3, 1) and r.token_accuracy == 4 / 6


def test_perfect_and_empty_cases():
    gold = [["B-X", "I-X", "O"], ["O"]]
    r = evaluate(gold, gold)
    assert r.f1 == 1.0 and r.token_accuracy == 1.0
    r = evaluate([["O", "O"]], [["O", "O"]])
    assert r.f1 == 0.0 and r.per_type == {} and r.token_accuracy == 1.0
    with pytest.raises(ValueError):
        evaluate([["O"]], [["O", "O"]])
    with pytest.raises(ValueError):
        evaluate([["O"]], [])


def test_format_table_lists_every_type_and_overall():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    text = format_table(evaluate(gold, pred))
    lines = text.splitlines()
    assert "token accuracy 75.00%" in lines[0]
    assert [ln.split()[0] for ln in lines[3:6]] == ["LOC", "ORG", "PER"]
    assert lines[-1].split()[:4] == ["overall", "50.00", "50.00", "50.00"]
    assert evaluate(gold, pred).as_dict()["per_type"]["PER"]["f1"] == 1.0
