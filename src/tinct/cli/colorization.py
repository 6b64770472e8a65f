"""Colorization commands: ``tinct colorize``, ``tinct evaluate colorization``, ``tinct study colorization``
(``tinct export`` is in :mod:`tinct.cli.export`). Argument parsing only; each calls one function of
:mod:`tinct.colorization`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parsers", "run", "run_evaluate"]

MODEL_HELP = (
    "a colorization run directory, checkpoint (.ckpt), exported weights file (.pt) or ONNX graph (.onnx, from "
    "tinct export; run by onnxruntime); default: the pretrained colorizer shipped with tinct"
)

BACKEND_HELP = (
    "where the network runs: torch (default; an .onnx model: onnxruntime) or onnxruntime, on the CPU (another "
    "model is exported to ONNX in memory first, a few seconds; nothing is written)"
)


MAX_PIXELS_HELP = (
    "refuse (skip, by name) photos with more than N pixels, before decoding them; default: $TINCT_MAX_PIXELS "
    "or Pillow's decompression-bomb limit (about 179 million)"
)


HINTS_HELP = (
    "colour hints for a SIGGRAPH17 model (user-guided colorization), a JSON file: a list of points for the "
    'one photo, [{"x": 120, "y": 80, "ab": [20, -35]}, ...], or an object mapping photo names (or stems) to '
    "such lists. x, y: pixel column and row of the upright photo from the top-left; the colour: exactly one "
    'of "ab" (CIELAB a*, b* in [-110, 110]), "rgb" (8-bit sRGB) or "hex" ("#ff7800"); optional "radius" '
    "(default 1: a 3 x 3 patch of the network's grid). ECCV16 models take no hints"
)


BOXES_HELP = (
    "object boxes for an instance-aware model: a YOLO folder (<stem>.txt, or a dataset folder with labels/), "
    "a COCO JSON file, or per-image JSON of [x0, y0, x1, y1, score] (a file mapping photo names to lists, or "
    "a folder of <stem>.json); the boxes scoring above 0.7, at most 8 per photo, are used"
)


def add_parsers(sub: Any, study: Any) -> None:
    """Add ``colorize`` to the command subparsers and ``colorization`` / ``instance`` to ``study``'s."""
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
    c.add_argument("--hints", metavar="FILE.json", help=HINTS_HELP)
    c.add_argument(
        "--instances",
        action="store_true",
        help="instance-aware colorization (InstColorization) with the fused model shipped with tinct "
        "(with --model: that model, which must be a fusion run or its exported file); needs --boxes or "
        "--detector, else each photo is colorized by the full-image network alone",
    )
    c.add_argument("--boxes", metavar="DIR|FILE", help=BOXES_HELP)
    c.add_argument(
        "--detector",
        metavar="NAME",
        help="find the boxes with this torchvision detector (e.g. fasterrcnn_resnet50_fpn_v2, "
        "maskrcnn_resnet50_fpn_v2, retinanet_resnet50_fpn_v2, fasterrcnn_mobilenet_v3_large_fpn), run on the "
        "gray photo, with the weights of --detector-weights",
    )
    c.add_argument(
        "--detector-weights", metavar="FILE", help="local weights file of --detector (nothing is downloaded)"
    )
    c.add_argument("--backend", choices=("torch", "onnxruntime"), help=BACKEND_HELP)
    c.add_argument(
        "--device",
        default="cpu",
        help="torch device of the colorizer and the detector: cpu (default), cuda, cuda:1 ... (onnxruntime: cpu)",
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

    i = study.add_parser(
        "instance",
        help="instance-aware fusion vs the full-image network at the same budget (Su et al. 2020)",
        description="Trains InstColorization's three stages (configs/colorization/instance_{full,instance,"
        "fusion}.yaml) and the full-image network for the epochs of stages 1 + 3, scores them, the stages' "
        "initial SIGGRAPH17 colorizer and the shipped ECCV16 one on the held-out photos, on the whole image "
        "and inside the boxes, with the per-photo margins of fusion, and writes study.md / study.csv / "
        "study.json, figures/metrics.png and figures/examples.png. Rerun with the same --out to resume.",
    )
    i.add_argument(
        "--out", default="runs/study-instance", help="output folder (default: runs/study-instance)"
    )
    i.add_argument("--data", help="folder of photos with boxes (default: the configs' COCO128)")
    i.add_argument("--boxes", help="box source (default: <data>/labels)")
    i.add_argument("--init", help="SIGGRAPH17 weights or run stage 1 starts from (default: the config's)")
    i.add_argument(
        "--epochs", type=int, nargs=3, metavar=("FULL", "INSTANCE", "FUSION"), help="epochs of the stages"
    )
    i.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    """Rows model / gray / original, one section for whole photos and one inside the boxes; a column per
    metric (the 13 of whole + boxes side by side do not fit a terminal)."""
    from rich.console import Console
    from rich.table import Table

    from tinct.colorization.evaluation import EVALUATION_KEYS

    regions = [("", metrics.get("whole", metrics))]
    boxes = metrics.get("boxes")
    if boxes is not None and boxes.get("n_images"):
        regions.append((", in boxes", boxes))
    keys = [k for k in EVALUATION_KEYS if any(k in r["model"] for _, r in regions)]
    table = Table(
        title=title, caption="lpips, fid: lower is better" if {"lpips", "fid"} & set(keys) else None
    )
    table.add_column("")
    for key in keys:
        table.add_column(key, justify="right")
    for n, (suffix, region) in enumerate(regions):
        if n:
            table.add_section()
        for name in ("model", "gray"):
            table.add_row(
                f"{name}{suffix}", *(f"{region[name][k]:.4f}" if k in region[name] else "" for k in keys)
            )
        cf = f"{region['original']['colorfulness']:.4f}"
        table.add_row(f"original{suffix}", *(cf if k == "colorfulness" else "" for k in keys))
    Console().print(table)


def run_evaluate(args: argparse.Namespace) -> int:
    """``tinct evaluate colorization --model M --data DIR [--boxes DIR|FILE] [--lpips-weights FILE]
    [--fid-weights FILE] [--backend torch|onnxruntime] [--device DEVICE]``."""
    from tinct.colorization.evaluation import LPIPS_FID_NOTE, evaluate_colorization
    from tinct.core.exceptions import TinctError

    if not args.data:
        raise TinctError("tinct evaluate colorization needs --data DIR (a folder of colour photos)")
    out = args.out or "colorization_metrics.json"
    lpips_weights = getattr(args, "lpips_weights", None)
    fid_weights = getattr(args, "fid_weights", None)
    try:
        metrics = evaluate_colorization(
            args.model,
            args.data,
            out,
            temperature=args.temperature,
            progress=True,
            max_pixels=getattr(args, "max_pixels", None),
            boxes=getattr(args, "boxes", None),
            lpips_weights=lpips_weights,
            fid_weights=fid_weights,
            backend=getattr(args, "backend", None),
            device=getattr(args, "device", None) or "cpu",
        )
    except KeyboardInterrupt:
        print("tinct evaluate colorization: interrupted; no metrics written", file=sys.stderr)
        return 130
    missing = [name for name, weights in (("LPIPS", lpips_weights), ("FID", fid_weights)) if weights is None]
    if len(missing) == 2:
        print(LPIPS_FID_NOTE, file=sys.stderr)
    elif missing:
        flag = f"--{missing[0].lower()}-weights"
        print(f"tinct: {missing[0]} needs local backbone weights ({flag}); not computed", file=sys.stderr)
    title = f"colorization on {args.data} ({metrics['n_images']} photos, {metrics['model_source']})"
    boxes = metrics.get("boxes")
    if boxes is not None:
        title += (
            f"; boxes in {boxes['n_images']} photos ({100 * boxes['pixel_fraction']:.1f} % of their pixels), "
            f"{boxes['n_without_boxes']} without, {len(boxes['skipped'])} unreadable"
        )
    _print_metrics(metrics, title)
    print(f"tinct evaluate colorization: wrote {out}")
    return 0


def _boxes(args: argparse.Namespace) -> Any:
    """The box source of ``--boxes`` / ``--detector``; with ``--instances`` and no ``--model``, the shipped
    fused model becomes the model."""
    from tinct.core.exceptions import ConfigError

    if args.detector and args.boxes:
        raise ConfigError("give either --boxes or --detector, not both")
    if bool(args.detector) != bool(args.detector_weights):
        raise ConfigError(
            "--detector NAME needs --detector-weights FILE (a local file), and the other way round"
        )
    if args.instances and not args.model:
        from tinct.colorization.pretrained import INSTANCE_COLORIZER

        args.model = str(INSTANCE_COLORIZER.path())
    if args.detector:
        from tinct.colorization.detector import detector_source

        return detector_source(args.detector, args.detector_weights, device=args.device)
    return args.boxes


def run(args: argparse.Namespace) -> int:
    if args.command == "colorize":
        from tinct.colorization.colorize import ColorizeInterrupted, colorize

        boxes = _boxes(args)  # first: --instances picks the model
        try:
            rows = colorize(
                args.inputs,
                args.out,
                args.model,
                temperature=args.temperature,
                panel=not args.no_panel,
                max_pixels=args.max_pixels,
                hints=args.hints,
                boxes=boxes,
                backend=args.backend,
                device=args.device,
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
    if args.study_task == "instance":
        from tinct.colorization.instance_study import study_instance

        table = study_instance(
            args.out,
            data=args.data,
            boxes=args.boxes,
            init=args.init,
            epochs=args.epochs,
            overrides=args.overrides,
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        print(f"tinct study instance: table, figures and runs in {args.out}")
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
