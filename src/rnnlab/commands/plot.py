"""``rnnlab plot RUN``: training curves from a run's metrics.jsonl, as a PNG."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plot a run's training curves",
                       description="Plot train/validation bits per character against the step, guard events "
                                   "and logged diagnostics (needs matplotlib).")
    p.add_argument("run_path", metavar="RUN", help="run folder, runs/latest, or its metrics.jsonl")
    p.add_argument("--out", metavar="FILE.png", help="image to write (default: RUN/metrics.png)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, DataError
    from ..plotting import plot_metrics, require_matplotlib
    from ..train.progress import MetricsLog
    from ..train.runs import METRICS

    require_matplotlib()  # say so before reading anything
    path = Path(args.run_path)
    metrics = path if path.is_file() else path / METRICS
    if not metrics.is_file():
        raise DataError(f"no {METRICS} in {path}; is it a run folder?")
    out = _image_path(args.out) if args.out else metrics.parent / "metrics.png"
    try:
        rows = MetricsLog(metrics).read()
        if not rows and metrics.stat().st_size:  # an empty one: a run that has logged nothing yet
            raise DataError(f"{metrics}: no metrics records in it (one JSON object a line); give a run folder "
                            f"or its {METRICS}")
        plot_metrics(rows, out, title=str(metrics.parent.resolve().name))
    except RecursionError:
        raise DataError(f"{metrics}: a record is nested too deeply to read (a damaged file?)") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{metrics}: not UTF-8 text ({exc.reason} at byte {exc.start}; a damaged file?)") from None
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write the image: {exc.strerror or exc}") from None
    print(f"wrote {out}")
    return 0


def _image_path(out: str) -> Path:
    """``--out`` checked before any work: a file (not a folder) with an image suffix matplotlib writes;
    a name without a suffix gets ``.png`` (as matplotlib itself would, so the line printed names the file)."""
    from matplotlib.backend_bases import FigureCanvasBase

    from ..errors import ConfigError
    from ..train.runs import check_out_file

    path = check_out_file(out, "--out")
    if not path.suffix:
        return check_out_file(path.with_suffix(".png"), "--out")
    kinds = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in kinds:
        raise ConfigError(f"--out {path}: matplotlib cannot write '{path.suffix}' images; use one of "
                          f"{', '.join('.' + k for k in sorted(kinds))}")
    return path
