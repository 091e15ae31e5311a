"""The pieces fit: CoNLL file -> vocabularies -> batches -> CRF loss, gradient, constrained decode -> metrics."""
import numpy as np

from rnnlab.layers import CRF
from rnnlab.tasks.tagging.schemes import tag_constraints
from rnnlab.tasks.tagging.data import convert_sentences, read_conll
from rnnlab.tasks.tagging.metrics import evaluate
from rnnlab.tasks.tagging.schemes import ill_formed
from rnnlab.tasks.tagging.vocab import build_vocabs, encode, make_batches


def test_file_to_metrics(tmp_path, rng):
    types, lines = ["A", "B"], []
    for _ in range(40):
        for _ in range(int(rng.integers(1, 12))):
            kind = rng.integers(0, 3)
            if kind == 0:
                lines.append(f"w{rng.integers(0, 9)}\tO")
            else:
                t = types[kind - 1]
                lines += [f"W{rng.integers(0, 9)}\tB-{t}"] + [f"x\tI-{t}"] * int(rng.integers(0, 3))
        lines.append("")
    (tmp_path / "train.tsv").write_text("\n".join(lines), encoding="utf-8")
    sents = convert_sentences(read_conll(tmp_path / "train.tsv", "BIO"), "BIOES")
    vocabs = build_vocabs(sents, scheme="BIOES")
    K = len(vocabs.tags)
    crf = CRF(K, seed=0)
    constraints = tag_constraints(vocabs.tags.itos, "BIOES")
    predicted = [None] * len(sents)
    for batch in make_batches(encode(sents, vocabs), 8, shuffle=True, seed=0):
        emissions = rng.standard_normal(batch.tags.shape + (K,)).astype(np.float32)
        loss, cache = crf.forward(emissions, batch.tags, batch.mask)
        demissions = crf.backward(1.0, cache)
        assert np.isfinite(loss) and demissions.shape == emissions.shape
        for row, path in zip(batch.index, crf.decode(emissions, batch.lengths, constraints)):
            predicted[row] = vocabs.tags.decode(path)
    assert all(ill_formed(p, "BIOES") == [] for p in predicted)
    report = evaluate([s.tags for s in sents], predicted)
    assert 0.0 <= report.f1 <= 1.0 and report.tokens == sum(len(s) for s in sents)
    assert evaluate([s.tags for s in sents], [list(s.tags) for s in sents]).f1 == 1.0
