"""``--lm-text``: train the forward/backward char-LM pair of the tagger's LM features first.

The pair is trained through the one training loop (:func:`rnnlab.tasks.charlm.api.train`), each
with its own budget (``--lm-minutes``, ``--lm-steps``), on the training split's own sentences
written as the LM features read them (tokens joined by spaces, one sentence a line) followed by
the unlabelled text files given. Both live inside the tagger's run folder::

    RUN/lm-text.txt   the LM corpus (written once, atomically)
    RUN/lm-fwd/       a char-LM run (``rnnlab train``), reading left to right
    RUN/lm-bwd/       the same, ``--reverse``

Stopped and restarted (Ctrl-C, a kill, ``--resume``, or the same command again on a run that never
saved a tagger checkpoint), an LM that saved a checkpoint is resumed exactly; a finished one is
reused as it is. ``--force`` starts them again. Dev and test sentences are never read here.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from ...errors import DataError, InputWarning
from ...io import atomic_write
from .data import Sentence

LM_TEXT, LM_DIRS = "lm-text.txt", (("lm-fwd", False), ("lm-bwd", True))


def lm_corpus(train: Sequence[Sentence], files: Sequence[str]) -> str:
    """The training sentences as the LM features read them, then each unlabelled file's text."""
    parts = ["\n".join(" ".join(s.tokens) for s in train)]
    for name in files:
        try:
            data = Path(name).read_bytes()
        except OSError as e:
            raise DataError(f"--lm-text {name}: cannot read it ({e.strerror}); check the path") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"--lm-text {name}: not UTF-8 text (byte {e.start}); convert it first, "
                            f"e.g. iconv -f LATIN1 -t UTF-8") from None
        if "\x00" in text:
            raise DataError(f"--lm-text {name}: holds NUL bytes, so it looks binary; give plain text")
        if not text.strip():
            warnings.warn(f"--lm-text {name}: the file is empty; the char-LM pair learns from the training "
                          "sentences alone", InputWarning, stacklevel=2)
        parts.append(text.strip("\n"))
    return "\n".join(p for p in parts if p) + "\n"


def forget(run_dir: Path) -> None:
    """Remove an earlier LM pair (``--force``)."""
    for name, _ in LM_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    (run_dir / LM_TEXT).unlink(missing_ok=True)


def pretrain_pair(cfg: Any, train: Sequence[Sentence], run_dir: Path, log: Callable[[str], None],
                  progress_factory: Callable[[], Any] | None = None) -> tuple[str, int]:
    """Train (or resume, or reuse) the LM pair; returns ``("FWD,BWD", exit_code)``. A non-zero exit
    code (Ctrl-C, SIGTERM) means the caller stops too: the LM's checkpoint is kept for next time."""
    from ..charlm.api import train as train_lm
    from ..charlm.config import TrainConfig

    files = [f.strip() for f in cfg.lm_text.split(",") if f.strip() not in ("", "-")]
    text_path = run_dir / LM_TEXT
    if not text_path.exists():
        text = lm_corpus(train, files)
        with atomic_write(text_path) as handle:
            handle.write(text.encode("utf-8"))
        log(f"--lm-text: {len(text):,} characters for the char-LM pair ({len(train):,} training sentences"
            f"{' + ' + ', '.join(files) if files else ''}) in {text_path}")
    paths = []
    for name, reverse in LM_DIRS:
        out = run_dir / name
        def prefixed(line: str, name: str = name) -> None:
            log("\n".join(f"[{name}] {part}" for part in str(line).splitlines()))
        progress = progress_factory() if progress_factory else None
        if (out / "last.npz").exists():   # resumed exactly; a finished one adds nothing
            summary = train_lm(None, resume=str(out), log=prefixed, progress=progress, given={})
        else:
            lm_cfg = TrainConfig(corpus=str(text_path), reverse=reverse, hidden_size=cfg.lm_hidden_size,
                                 num_layers=1, max_minutes=cfg.lm_minutes, max_steps=cfg.lm_steps,
                                 eval_every=200, eval_chars=200_000, seed=cfg.seed)
            summary = train_lm(lm_cfg, out=str(out), force=True, log=prefixed, progress=progress)
        if summary.get("exit_code"):
            return "", int(summary["exit_code"])
        paths.append(str(out.resolve()))
    latest = run_dir / "latest"   # the LM runs' own "latest" link inside the tagger's folder
    if latest.is_symlink():
        latest.unlink()
    return ",".join(paths), 0
