"""Colorization commands: ``tinct colorize``, ``tinct evaluate colorization``, ``tinct export``,
``tinct study colorization``. Argument parsing only; each calls one function of :mod:`tinct.colorization`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parsers", "run", "run_evaluate"]

MODEL_HELP = (
    "a colorization run directory, checkpoint (.ckpt) or exported weights file (.pt); "
    "default: the pretrained colorizer shipped with tinct"
)


MAX_PIXELS_HELP = (
    "refuse (skip, by name) photos with more than N pixels, before decoding them; default: $TINCT_MAX_PIXELS "
    "or Pillow's decompression-bomb limit (about 179 million)"
)


def add_parsers(sub: Any, study: Any) -> None:
    """Add ``colorize`` and ``export`` to the command subparsers and ``colorization`` to ``study``'s."""
    c = sub.add_parser(
        "colorize",
        help="colorize photos (files or folders, any size) with a trained or the shipped model",
        description="Each photo is colorized at full resolution: the network predicts ab from L at a short "
        "side of 256 pixels, which is upsampled and joined with the photo's own full-resolution L. Writes "
        "<stem>_color.png, a <stem>_panel.png (grayscale / predicted / original) for colour inputs, and "
        "colorize.csv, one row added as each photo finishes. Photos with equal names going to one folder are "
        "told apart as <stem>_<ext> (then -2, -3 ...). Grayscale, palette and RGBA files are converted (with a "
        "note); unreadable files and photos above --max-pixels are reported by name and skipped. Memory is "
        "bounded: a 12000 x 9000 photo needs about 1.5 GB.",
    )
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="photo files or folders (searched recursively)")
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--model", help=MODEL_HELP)
    c.add_argument(
        "--temperature",
        type=float,
        help="annealed-mean temperature T (0: mode, 1: mean; default: the model's, 0.38)",
    )
    c.add_argument("--no-panel", action="store_true", help="write only the colorized images")
    c.add_argument("--max-pixels", type=int, metavar="N", help=MAX_PIXELS_HELP)

    x = sub.add_parser("export", help="write a colorization run as a compact weights file (+ model card)")
    x.add_argument("run_dir", help="colorization run directory or checkpoint")
    x.add_argument(
        "--out", required=True, help="weights file to write (.pt); the card goes beside it (.json)"
    )
    x.add_argument("--card", help="JSON file with extra model-card entries (recipe, notes)")
    x.add_argument(
        "--evaluate", action="store_true", help="score the exported weights on the run's held-out test photos"
    )

    s = study.add_parser(
        "colorization",
        help="classification + rebalancing vs classification vs L2 regression (Zhang et al. 2016)",
        description="Trains the three variants with the same architecture, data and budget, scores each on "
        "the held-out test photos at full resolution (raw / rebalanced AuC, PSNR, colourfulness) beside the "
        "grayscale baseline, and writes study.md / study.csv / study.json, figures/metrics.png and "
        "figures/examples.png. Rerun with the same --out to resume.",
    )
    s.add_argument(
        "--out", default="runs/study-colorization", help="output folder (default: runs/study-colorization)"
    )
    s.add_argument(
        "--config",
        help="base colorization YAML (default: the sweep file's, configs/colorization/eccv16_photos.yaml)",
    )
    s.add_argument(
        "--sweep",
        default="configs/colorization/study.sweep.yaml",
        help="sweep file whose points are the variants (default: configs/colorization/study.sweep.yaml)",
    )
    s.add_argument("--data", help="photo folder (default: the base config's data.root)")
    s.add_argument("--epochs", type=int, help="training epochs of every variant")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from tinct.colorization.colorize import METRIC_KEYS

    table = Table(title=title)
    table.add_column("")
    for key in METRIC_KEYS:
        table.add_column(key, justify="right")
    for name in ("model", "gray"):
        table.add_row(name, *(f"{metrics[name][k]:.4f}" for k in METRIC_KEYS))
    table.add_row("original", "", "", "", f"{metrics['original']['colorfulness']:.4f}")
    Console().print(table)


def run_evaluate(args: argparse.Namespace) -> int:
    """``tinct evaluate colorization --model M --data DIR``."""
    from tinct.colorization.colorize import evaluate_colorization
    from tinct.core.exceptions import TinctError

    if not args.data:
        raise TinctError("tinct evaluate colorization needs --data DIR (a folder of colour photos)")
    out = args.out or "colorization_metrics.json"
    try:
        metrics = evaluate_colorization(
            args.model,
            args.data,
            out,
            temperature=args.temperature,
            progress=True,
            max_pixels=getattr(args, "max_pixels", None),
        )
    except KeyboardInterrupt:
        print("tinct evaluate colorization: interrupted; no metrics written", file=sys.stderr)
        return 130
    _print_metrics(
        metrics, f"colorization on {args.data} ({metrics['n_images']} photos, {metrics['model_source']})"
    )
    print(f"tinct evaluate colorization: wrote {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "colorize":
        from tinct.colorization.colorize import ColorizeInterrupted, colorize

        try:
            rows = colorize(
                args.inputs,
                args.out,
                args.model,
                temperature=args.temperature,
                panel=not args.no_panel,
                max_pixels=args.max_pixels,
            )
        except ColorizeInterrupted as err:
            print(
                f"tinct colorize: interrupted; {err.done} of {err.total} photos colorized, listed in {err.table} "
                "(a rerun colorizes them all again)",
                file=sys.stderr,
            )
            return 130
        failed = sum("error" in r for r in rows)
        print(
            f"tinct colorize: {len(rows) - failed} colorized into {args.out}, {failed} skipped",
            file=sys.stderr,
        )
        return 1 if failed else 0  # every photo is tried; one skipped fails the job at the end, as predict
    if args.command == "export":
        from tinct.colorization.pretrained import export_colorizer

        card = json.loads(open(args.card).read()) if args.card else None
        path = export_colorizer(args.run_dir, args.out, card, evaluate=args.evaluate)
        print(
            f"tinct export: wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {path.with_suffix('.json')}"
        )
        return 0
    from tinct.colorization.study import study_colorization

    table = study_colorization(
        args.out,
        args.config,
        data=args.data,
        epochs=args.epochs,
        overrides=args.overrides,
        progress=True,
        sweep=args.sweep,
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"tinct study colorization: table, figures and runs in {args.out}")
    return 0
