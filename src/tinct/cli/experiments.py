"""Experiment-engine commands: ``tinct sweep``, ``tinct summarize``, ``tinct plot``, ``tinct report``.

Argument parsing only; each calls one function of :mod:`tinct.engine.sweep`, :mod:`tinct.engine.summary`
or :mod:`tinct.engine.report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("sweep", "summarize", "plot", "report")


def add_parsers(sub: Any) -> None:
    s = sub.add_parser(
        "sweep",
        help="run a sweep file (grid or random axes over any config key) as resumable Optuna trials",
        description="Every point of the sweep is a trial and a run directory under OUT/runs. Trials are kept "
        "in an Optuna study (OUT/sweep.db, or --storage URL shared by workers on several machines): running "
        "the same command again resumes (finished trials are never rerun, an interrupted one continues from "
        "its last checkpoint, failed ones are listed and rerun with --retry-failed). Runs are not tested; "
        "--eval-winners K tests the best K by the validation metric.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  tinct sweep configs/illuminant/input_space.sweep.yaml --auto-summary --analysis --eval-winners 2\n"
        "  tinct sweep SWEEP.yaml --workers 4 --only-full\n"
        "  tinct sweep SWEEP.yaml --storage postgresql+psycopg://user:pw@db/tinct --out /shared/sweeps/x",
    )
    s.add_argument("sweep_file", metavar="SWEEP.yaml")
    s.add_argument("--out", help="sweep folder (default: runs/sweeps/<name>); an existing one is resumed")
    s.add_argument(
        "--workers", type=int, default=1, help="local worker processes (default 1: in this process)"
    )
    s.add_argument("--storage", help="SQLAlchemy URL of the Optuna storage (default: sqlite in OUT)")
    s.add_argument("--only-full", action="store_true", help="skip the combinations marked optional")
    s.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    s.add_argument(
        "--test-split",
        choices=["auto"],
        help="auto: the splits are written once to OUT/split.json and reused by every trial",
    )
    s.add_argument("--auto-summary", action="store_true", help="write OUT/results.csv (one row per trial)")
    s.add_argument(
        "--analysis", action="store_true", help="also figures: metric by axis, learning curves, errors"
    )
    s.add_argument(
        "--eval-winners", type=int, default=0, metavar="K", help="test the best K trials (winners.csv)"
    )
    s.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value of every trial (added to the sweep's set section)",
    )
    s.add_argument(
        "--stale-after",
        type=float,
        default=600.0,
        metavar="S",
        help="a running trial without a heartbeat for S seconds (its machine is gone) is queued again "
        "(default 600)",
    )
    s.add_argument("--quiet", action="store_true", help="no line per trial")

    m = sub.add_parser("summarize", help="one row per run directory under RUNS_DIR -> CSV")
    m.add_argument("runs_dir")
    m.add_argument("--out", default="results.csv", help="CSV to write (default: results.csv)")

    p = sub.add_parser("plot", help="figures from a results CSV: metric by axis, learning curves, errors")
    p.add_argument("results", help="results.csv of tinct summarize or tinct sweep")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--metric", help="metric to plot (default: the task's validation metric)")
    p.add_argument("--root", help="folder the 'run' column is relative to (default: the CSV's folder)")

    r = sub.add_parser(
        "report",
        help="a self-contained HTML (or Markdown) report of every run, study and sweep under RUNS_DIR",
    )
    r.add_argument("runs_dir")
    r.add_argument("--out", help="report file (default: RUNS_DIR/report.html or .md)")
    r.add_argument("--format", choices=["html", "md"], help="default: from --out's suffix, else html")
    r.add_argument("--title", help="report title")


def run(args: argparse.Namespace) -> int:
    if args.command == "sweep":
        from tinct.core.config import parse_overrides
        from tinct.engine.sweep import run_sweep

        results = run_sweep(
            args.sweep_file,
            args.out,
            workers=args.workers,
            storage=args.storage,
            only_full=args.only_full,
            retry_failed=args.retry_failed,
            test_split=args.test_split,
            auto_summary=args.auto_summary,
            analysis=args.analysis,
            eval_winners_k=args.eval_winners,
            overrides=parse_overrides(args.overrides),
            stale_after=args.stale_after,
            progress=not args.quiet,
        )
        failed = int((results["state"] == "FAIL").sum())
        if failed:
            print(
                f"tinct sweep: {failed} trial(s) failed (errors in results.csv / the study)", file=sys.stderr
            )
        return 1 if failed else 0
    if args.command == "summarize":
        from tinct.engine.summary import summarize_runs

        table = summarize_runs(args.runs_dir, out=args.out)
        print(f"{len(table)} runs -> {args.out}")
        return 0
    if args.command == "plot":
        from tinct.engine.results_plots import plot_results

        root = args.root or str(Path(args.results).resolve().parent)
        paths = plot_results(args.results, args.out, metric=args.metric, root=root)
        for path in paths:
            print(path)
        return 0
    from tinct.engine.report import write_report

    fmt = args.format or ("md" if args.out and Path(args.out).suffix.lower() == ".md" else "html")
    out = args.out or str(Path(args.runs_dir) / f"report.{fmt}")
    path = write_report(args.runs_dir, out, fmt=fmt, title=args.title)
    print(path)
    return 0
