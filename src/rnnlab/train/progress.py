"""Progress for long work, and the metrics log.

On a terminal, training shows a progress bar with percentage, rate and ETA
(tqdm, an optional extra, when installed; a line redrawn in place otherwise),
and validation shows its own bar. When output is a file or a pipe (CI,
``nohup``) a plain line is printed every ``every_s`` seconds and at each
evaluation, so logs stay readable and never go silent for long. Metrics go to
``metrics.jsonl`` in the run folder, one JSON object per line, appended; the
rewrite on resume is atomic.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from ..io.atomic import atomic_write


def _fmt_rate(x: float) -> str:
    return f"{x / 1000:.1f}K" if x >= 1000 else f"{x:.0f}"


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """Training and validation progress; ``Progress(stream=io.StringIO())`` or ``Progress(enabled=False)``
    silences it."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 30.0, enabled: bool = True,
                 loss_label: Callable[[float], str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s = every_s
        self.loss_label = loss_label or (lambda loss: f"loss {loss:.4f}")
        self._bar: Any = None
        self._eval_bar: Any = None
        self._last_line = -math.inf
        self.max_steps = 0
        self.max_seconds = 0.0
        self.unit = "items"

    # -- training ---------------------------------------------------------------------------
    def start(self, step: int, max_steps: int, elapsed: float, max_seconds: float, unit: str) -> None:
        self.max_steps, self.max_seconds, self.unit = max_steps, max_seconds, unit
        self._last_line = time.monotonic()
        tqdm = _tqdm() if self.tty else None
        if tqdm is not None:
            total = max_steps or None
            self._bar = tqdm(total=total, initial=step, file=self.stream, unit="step", dynamic_ncols=True,
                             leave=False, desc="train")

    def eta(self, step: int, rate_steps: float, elapsed: float) -> float:
        left = []
        if self.max_steps and rate_steps > 0:
            left.append((self.max_steps - step) / rate_steps)
        if self.max_seconds:
            left.append(self.max_seconds - elapsed)
        return max(min(left), 0.0) if left else math.inf

    def update(self, step: int, loss: float, rate: float, elapsed: float) -> None:
        if not self.enabled:
            return
        text = f"{self.loss_label(loss)}  {_fmt_rate(rate)} {self.unit}/s"
        if self._bar is not None:
            self._bar.n = step
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.refresh()
            return
        now = time.monotonic()
        rate_steps = step / max(elapsed, 1e-9)
        pct = ""
        if self.max_steps:
            pct = f" ({100 * step / self.max_steps:.0f}%)"
        elif self.max_seconds:
            pct = f" ({100 * min(elapsed / self.max_seconds, 1):.0f}%)"
        line = f"step {step:>6}{pct}  {text}  ETA {_fmt_time(self.eta(step, rate_steps, elapsed))}"
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:140])
            self.stream.flush()
        elif now - self._last_line >= self.every_s:
            self._last_line = now
            self.stream.write(line + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
            return
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_line = time.monotonic()

    # -- validation ---------------------------------------------------------------------------
    def eval_update(self, done: int, total: int) -> None:
        """Validation progress (``done`` of ``total`` items); a bar on a terminal only."""
        if not self.tty:
            return
        tqdm = _tqdm()
        if tqdm is not None:
            if self._eval_bar is None:
                self._eval_bar = tqdm(total=total, file=self.stream, desc="validation", leave=False,
                                      unit=self.unit, unit_scale=True, dynamic_ncols=True)
            self._eval_bar.n = done
            self._eval_bar.refresh()
        else:
            self.stream.write(f"\rvalidation {100 * done / max(total, 1):3.0f}%".ljust(40))
            self.stream.flush()

    def eval_done(self) -> None:
        if self._eval_bar is not None:
            self._eval_bar.close()
            self._eval_bar = None

    def close(self) -> None:
        self.eval_done()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


class WorkProgress:
    """Progress over a known amount of work that is not training steps (rows scored, files):
    ``advance(n)`` as it goes, ``close()`` at the end. A tqdm bar on a terminal; in logs a plain
    line with percentage and ETA every ``every_s`` seconds and at the end (``every_s=None``: no
    lines, for callers that log each item themselves when ``on_terminal`` is False); nothing when
    disabled."""

    def __init__(self, total: int, desc: str = "", unit: str = "rows", *, stream: TextIO | None = None,
                 every_s: float | None = 30.0, enabled: bool = True) -> None:
        self.total, self.desc, self.unit = max(int(total), 1), desc, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.every_s = every_s
        self.done = 0
        self._t0 = self._last = time.monotonic()
        tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        tqdm = _tqdm() if tty else None
        self._bar = tqdm(total=self.total, file=self.stream, desc=desc, unit=unit,
                         dynamic_ncols=True, leave=False) if tqdm is not None else None

    def advance(self, n: int) -> None:
        self.done = min(self.done + int(n), self.total)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(int(n))
            return
        if self.every_s is None:
            return
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            spent = now - self._t0
            eta = spent * (self.total - self.done) / self.done if self.done else math.inf
            self.stream.write(f"{self.desc}: {100 * self.done / self.total:.0f}% of {self.total:,} {self.unit}, "
                              f"{_fmt_time(spent)} spent, ETA {_fmt_time(eta)}\n")
            self.stream.flush()

    @property
    def on_terminal(self) -> bool:
        """True while a bar is shown (tqdm installed, enabled, on a terminal)."""
        return self._bar is not None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class MetricsLog:
    """Append-only JSONL file of training and evaluation metrics."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, **record: Any) -> None:
        record.setdefault("time", time.time())
        line = json.dumps(record) + "\n"
        # One write() of a whole line on an O_APPEND file: a crash leaves at most a cut last line,
        # which read() skips.
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash mid-write; the rest is still good
                if isinstance(row, dict):
                    rows.append(row)
        return rows

    def truncate_after(self, step: int, drop: Callable[[dict], bool] | None = None) -> None:
        """On resume, drop records written after the checkpoint's step (they will be redone), atomically."""
        rows = [r for r in self.read() if isinstance(r.get("step", 0), (int, float)) and r.get("step", 0) <= step
                and not (drop is not None and drop(r))]
        with atomic_write(self.path) as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
