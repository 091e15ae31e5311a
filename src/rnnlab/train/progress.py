"""A dependency-free progress line and a metrics log.

On a terminal the line is redrawn in place (``\\r``); when output is a file or
a pipe (CI, ``nohup``) a full line is printed every ``every`` updates so logs
stay readable. Metrics go to ``metrics.jsonl`` in the run folder, one JSON
object per line, appended (a resumed run continues the same file).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO


def _fmt_rate(x: float) -> str:
    return f"{x / 1000:.1f}K" if x >= 1000 else f"{x:.0f}"


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, stream: TextIO | None = None, every: int = 50) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.count = 0

    def update(self, step: int, loss: float, chars_per_s: float, eta_s: float, extra: str = "") -> None:
        self.count += 1
        bpc = loss / math.log(2)
        line = (f"step {step:>6}  loss {loss:.3f}  {bpc:.3f} bits/char  {_fmt_rate(chars_per_s)} chars/s  "
                f"ETA {_fmt_time(eta_s)}{('  ' + extra) if extra else ''}")
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:140])
            self.stream.flush()
        elif self.count % self.every == 1 or self.every == 1:
            self.stream.write(line + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()


class MetricsLog:
    """Append-only JSONL file of training and evaluation metrics."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, **record: Any) -> None:
        record.setdefault("time", time.time())
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash mid-write; the rest is still good
        return rows

    def truncate_after(self, step: int) -> None:
        """On resume, drop records written after the checkpoint's step (they will be redone)."""
        rows = [r for r in self.read() if r.get("step", 0) <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(self.path)
