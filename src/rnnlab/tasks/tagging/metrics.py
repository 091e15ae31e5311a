"""Entity-level precision, recall and F1 with conlleval's semantics, and token accuracy.

A predicted entity (chunk) is correct only when a gold entity has the same type and the same
first and last token. Chunks are read by :func:`rnnlab.tasks.tagging.schemes.chunks`:
conlleval's start/end rules, extended to E- and S- as seqeval's default mode does, so an
ill-formed ``O I-X`` still yields an entity starting at I-X. Per type and overall (micro)::

    precision = correct / predicted     recall = correct / gold     F1 = 2 P R / (P + R)

each 0 when its denominator is 0 (as conlleval and seqeval report). Token accuracy is the
fraction of tokens whose predicted tag equals the gold tag, O included.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from .schemes import chunks


@dataclass(frozen=True)
class Score:
    gold: int       # entities in the gold tags (support)
    predicted: int  # entities predicted
    correct: int    # predicted entities matching a gold one exactly

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class EntityReport:
    """Entity scores per type (sorted by name) and overall, token accuracy and counts."""
    per_type: dict[str, Score] = field(default_factory=dict)
    overall: Score = field(default_factory=lambda: Score(0, 0, 0))
    token_accuracy: float = 0.0
    tokens: int = 0
    sentences: int = 0

    @property
    def precision(self) -> float:
        return self.overall.precision

    @property
    def recall(self) -> float:
        return self.overall.recall

    @property
    def f1(self) -> float:
        return self.overall.f1

    def as_dict(self) -> dict:
        """Plain numbers for a metrics.jsonl line."""
        row = lambda s: {"precision": s.precision, "recall": s.recall, "f1": s.f1,  # noqa: E731
                         "gold": s.gold, "predicted": s.predicted, "correct": s.correct}
        return {"f1": self.f1, "precision": self.precision, "recall": self.recall,
                "token_accuracy": self.token_accuracy, "tokens": self.tokens, "sentences": self.sentences,
                "per_type": {k: row(v) for k, v in self.per_type.items()}}


def evaluate(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> EntityReport:
    """Score predicted tag sequences against gold ones (one list of tag strings per sentence)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_correct: Counter[str] = Counter()
    tokens = same = 0
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        tokens += len(g)
        same += sum(a == b for a, b in zip(g, p))
        gold_chunks, pred_chunks = set(chunks(g)), set(chunks(p))
        n_gold.update(c.type for c in gold_chunks)
        n_pred.update(c.type for c in pred_chunks)
        n_correct.update(c.type for c in gold_chunks & pred_chunks)
    types = sorted(set(n_gold) | set(n_pred))
    per_type = {t: Score(n_gold[t], n_pred[t], n_correct[t]) for t in types}
    overall = Score(sum(n_gold.values()), sum(n_pred.values()), sum(n_correct.values()))
    return EntityReport(per_type, overall, same / tokens if tokens else 0.0, tokens, len(gold))


def format_table(report: EntityReport, digits: int = 2) -> str:
    """Per-type table (percentages) with an overall row and the token accuracy, like conlleval."""
    header = ("type", "precision", "recall", "F1", "gold", "predicted", "correct")
    pct = lambda x: f"{100 * x:.{digits}f}"  # noqa: E731
    rows = [(name, pct(s.precision), pct(s.recall), pct(s.f1), str(s.gold), str(s.predicted), str(s.correct))
            for name, s in list(report.per_type.items()) + [("overall", report.overall)]]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    out = [f"{report.sentences} sentences, {report.tokens} tokens; token accuracy {pct(report.token_accuracy)}%",
           line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[:-1]]
    out += ["  ".join("-" * w for w in widths), line(rows[-1])]
    return "\n".join(out)
