"""Per-group NAB scores and the leave-one-group-out check.

NAB's files come in groups of one kind of stream (``artificialNoAnomaly``, ``realAdExchange``,
``realAWSCloudwatch``, ...). A threshold optimised over a whole corpus can hide that a detector
wins on one kind and loses on another, and that a threshold tuned on some kinds does not carry
to a new one. So, for each detector:

* **per group**: each group's files scored at the threshold optimised over the whole corpus,
  normalised over that group (its own null and perfect scores);
* **leave-one-group-out (LOGO)**: each group scored at the threshold optimised on the *other*
  groups; the overall LOGO figure sums the groups' raw scores and normalises over the corpus, as
  the leave-one-file-out score does with files. This is the figure a user deploying on a new
  kind of stream can expect.

A group of ``artificialNoAnomaly`` has no windows: its normalised score is undefined (0 / 0), so
the table shows its false positives' cost (the raw score, 0 when no alarm) instead.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ...errors import DataError
from .nab import PROFILES, NabCorpus, Profile, normalized_score, optimize_threshold, score_corpus


def split_groups(corpus: NabCorpus) -> dict[str, NabCorpus]:
    """The corpus's files by group (the part of the key before ``/``), in corpus order."""
    out: dict[str, dict] = {}
    for key, f in corpus.files.items():
        out.setdefault(key.split("/", 1)[0] if "/" in key else "", {})[key] = f
    return {g: NabCorpus(files, corpus.root) for g, files in out.items()}


def _group_value(score: float, group: NabCorpus, profile: Profile) -> float:
    """Normalised over the group, or the raw score (FP cost) for a group without windows."""
    return normalized_score(score, group, profile) if group.n_windows else score


def group_scores(scores: Mapping[str, np.ndarray], corpus: NabCorpus, profile: Profile = PROFILES["standard"],
                 logo: bool = True) -> dict[str, dict]:
    """``{group: {"in_sample", "logo", "threshold", "logo_threshold"}}`` and, under ``"all"``, the
    corpus figures (``logo``: the leave-one-group-out score of the whole corpus). ``logo`` needs
    at least two groups; with one it is left out."""
    groups = split_groups(corpus)
    logo = logo and len(groups) > 1
    t_all, s_all = optimize_threshold(scores, corpus, profile)
    out: dict[str, dict] = {}
    total_logo = 0.0
    for g, part in groups.items():
        row = {"files": len(part), "windows": part.n_windows, "threshold": t_all,
               "in_sample": _group_value(score_corpus(scores, part, profile, t_all).total.score, part, profile)}
        if logo:
            rest = NabCorpus({k: f for k, f in corpus.files.items() if k not in part.files}, corpus.root)
            t = optimize_threshold(scores, rest, profile)[0]
            raw = score_corpus(scores, part, profile, t).total.score
            total_logo += raw
            row.update(logo=_group_value(raw, part, profile), logo_threshold=t)
        out[g] = row
    out["all"] = {"files": len(corpus), "windows": corpus.n_windows, "threshold": t_all,
                  "in_sample": normalized_score(s_all, corpus, profile)}
    if logo:
        out["all"]["logo"] = normalized_score(total_logo, corpus, profile)
    return out


def leave_one_group_out(scores: Mapping[str, np.ndarray], corpus: NabCorpus, profile: Profile) -> float:
    """The corpus's normalised leave-one-group-out score (:func:`group_scores`)."""
    if len(split_groups(corpus)) < 2:
        raise DataError("leave-one-group-out needs at least two groups")
    return group_scores(scores, corpus, profile)["all"]["logo"]


def format_group_table(corpus: NabCorpus, entries: Mapping[str, list], profile: Profile = PROFILES["standard"]) -> str:
    """A Markdown table: a row per group (and "all"), a column per entry (``name -> [scores dict or
    DetectorRun, one per seed]``) with the in-sample score and the LOGO score, means over seeds."""
    per: dict[str, list[dict]] = {}
    for name, items in entries.items():
        per[name] = [group_scores(getattr(item, "scores", item), corpus, profile) for item in items]
    groups = list(split_groups(corpus)) + ["all"]
    logo = any("logo" in runs[0]["all"] for runs in per.values())
    head = "| group | files | windows | " + " | ".join(f"{n}" + (f" | {n} LOGO" if logo else "") for n in per) + " |"
    lines = [head, "| --- | ---: | ---: |" + " ---: |" * (len(per) * (2 if logo else 1))]
    for g in groups:
        first = next(iter(per.values()))[0][g]
        cells = []
        for runs in per.values():
            cells.append(f"{np.mean([r[g]['in_sample'] for r in runs]):.1f}")
            if logo:
                cells.append(f"{np.mean([r[g]['logo'] for r in runs]):.1f}")
        lines.append(f"| {g} | {first['files']} | {first['windows']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
