"""``--propagate`` at the end of training: the best checkpoint's validation F1 without and with the
label-consistency pass (:mod:`.consistency`), logged; with ``--propagate auto`` the pass (window
``AUTO_WINDOW``, with the run's confidence gate) is kept only where it raises that F1, and the
decision is saved in the checkpoint's metadata (``"propagate"``), so the run (``tag eval``, ``tag predict``, ``Tagger.load``) applies it
or not on its own. The training itself, and the validation F1 that picks the best checkpoint, never
see the pass."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ...checkpoint import load_checkpoint, save_checkpoint
from .config import TagConfig
from .consistency import AUTO_WINDOW, Propagation, propagate
from .data import Sentence
from .ensemble import tag_with_confidence
from .metrics import evaluate
from .task import load_run


def settle_propagation(cfg: TagConfig, run_dir: str | Path, dev: Sequence[Sentence],
                       log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Score the best checkpoint of ``run_dir`` on ``dev`` without and with the pass; for ``auto``,
    decide and save. Returns what was measured (None with ``--propagate off``)."""
    value = str(cfg.propagate).strip().lower()
    if value == "off" or not dev:
        return None
    loaded = load_run(run_dir)
    auto = value == "auto"
    setting = (Propagation(AUTO_WINDOW, cfg.propagate_abbreviations, cfg.propagate_vote, cfg.propagate_confidence,
                           cfg.propagate_support) if auto else loaded.propagation)
    raw, confidence = tag_with_confidence([loaded], dev, confidence=setting.gated)
    passed = propagate([s.tokens for s in dev], raw, loaded.scheme, setting, [s.doc for s in dev],
                       confidence=confidence)
    gold = [s.tags for s in dev]
    before, after = 100 * evaluate(gold, raw).f1, 100 * evaluate(gold, passed).f1
    result = {"window": setting.window, "dev_f1": before, "dev_f1_propagated": after, "kept": not auto or after > before}
    if setting.gated:
        result.update(confidence=setting.source, support=setting.target)
    if auto:
        arrays, meta = load_checkpoint(loaded.path)
        meta["propagate"] = result
        save_checkpoint(loaded.path, arrays, meta)
    verdict = ("kept" if result["kept"] else "not kept: the run tags without it") if auto else "applied"
    log(f"--propagate {value} ({setting.describe()}): validation F1 of the best checkpoint {before:.2f} without the "
        f"pass, {after:.2f} with it; {verdict}")
    return result
