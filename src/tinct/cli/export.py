"""``tinct export``: a trained model as one file, in tinct's own format, ONNX or TorchScript.

Argument parsing only: colorizers go to :func:`tinct.colorization.pretrained.export_colorizer` (tinct
format) or :func:`tinct.colorization.export.export_colorizer_graph`, illuminant estimators to
:func:`tinct.constancy.export.export_illuminant_graph`, patch models to
:func:`tinct.patch.export.export_patch_graph`, and any run's tinct model file to
:func:`tinct.engine.modelfile.export_model`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "add_parsers", "format_of", "run"]

#: ``--format`` choices.
FORMATS = ("tinct", "onnx", "torchscript")
_SUFFIXES = {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript"}
#: ``RUN_OR_WEIGHTS`` naming the default colorizer shipped with tinct.
SHIPPED = "shipped"


def add_parsers(sub: Any) -> None:
    """Add ``export`` to the ``tinct`` command's subparsers."""
    x = sub.add_parser(
        "export",
        help="write a trained model as one file: tinct's format (.pt), ONNX (.onnx) or TorchScript (.ts)",
        description="Exports a colorization, illuminant or patch model. --format tinct (default for .pt): a "
        "colorizer's compact weights file with its model card (.json beside it), or any run's tinct model file. "
        "--format onnx (default for .onnx) or torchscript (.ts, .torchscript): the network as a graph that "
        "runs without tinct (batch, and for colorizers and illuminant estimators height and width, left "
        "free), with the run's config in its metadata; the graph is checked against torch on an input of "
        "another size (largest difference printed; more than 1e-4 of the output's scale fails, and nothing is "
        "written). A colorizer's graph is its network step (normalised L, SIGGRAPH17 also hint ab and mask -> "
        "ab; tinct colorize --model FILE.onnx runs it with onnxruntime); an instance-aware model exports its "
        "full-image network. An illuminant graph maps linear RGB (B, 3, H, W) to the unit illuminant (B, 3); "
        "a patch graph image, meta, meta_mask, camera, stats to Lab (B, 3).",
    )
    x.add_argument(
        "source",
        metavar="RUN_OR_WEIGHTS",
        help="a run directory, checkpoint (.ckpt), tinct model or colorizer file (.pt), or 'shipped' (the "
        "default colorizer shipped with tinct)",
    )
    x.add_argument("--out", required=True, help="file to write (.pt, .onnx, .ts)")
    x.add_argument(
        "--format",
        choices=FORMATS,
        help="tinct, onnx or torchscript (default: from --out's suffix: .onnx onnx, .ts / .torchscript "
        "torchscript, else tinct)",
    )
    x.add_argument("--card", help="(colorizer, tinct format) JSON file with extra model-card entries")
    x.add_argument(
        "--evaluate",
        action="store_true",
        help="(colorizer, tinct format) score the exported weights on the run's held-out test photos",
    )
    x.add_argument(
        "--temperature",
        type=float,
        help="(ECCV16 colorizer graphs) annealed-mean temperature decoded inside the graph (default: the "
        "model's, 0.38); the graph then refuses any other",
    )


def format_of(out: str | Path, fmt: str | None = None) -> str:
    """``fmt``, or the format that ``out``'s suffix stands for.

    Example:
        >>> format_of("model.onnx"), format_of("m.TS"), format_of("colorizer.pt"), format_of("x.pt", "onnx")
        ('onnx', 'torchscript', 'tinct', 'onnx')
    """
    return fmt or _SUFFIXES.get(Path(out).suffix.lower(), "tinct")


def _kind(source: str) -> str:
    """``"colorizer"`` (colorization runs, checkpoints and colorizer files) or ``"model"`` (any other task's
    run, checkpoint or model file).

    Raises:
        RunDirError: the source does not exist or cannot be read.
        ConfigError: the source is already an exported graph.
    """
    import torch

    from tinct.colorization.pretrained import COLORIZER_TASKS, FORMAT
    from tinct.core.exceptions import ConfigError, RunDirError

    if source == SHIPPED:
        return "colorizer"
    p = Path(source)
    if p.suffix.lower() in _SUFFIXES:
        raise ConfigError(f"{p}: already an exported graph; export the run or model file it was made from")
    if p.is_dir():
        from tinct.engine.run_dir import RunDir

        task = RunDir(p).config().task
    elif p.suffix == ".ckpt":
        from tinct.engine.run_dir import read_checkpoint

        task = (read_checkpoint(p).get("tinct_config") or {}).get("task")
    elif p.is_file():
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for foreign or corrupt files
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            raise RunDirError(f"{p}: truncated or not a tinct model file ({reason})") from err
        return "colorizer" if isinstance(blob, dict) and blob.get("format") == FORMAT else "model"
    else:
        raise RunDirError(f"{p}: no such run directory or model file")
    return "colorizer" if task in COLORIZER_TASKS else "model"


def _check_flags(args: argparse.Namespace, kind: str, fmt: str) -> None:
    from tinct.core.exceptions import ConfigError

    if (args.card or args.evaluate) and (kind != "colorizer" or fmt != "tinct"):
        raise ConfigError("--card and --evaluate are for a colorizer's weights file (--format tinct)")
    if args.temperature is not None and (kind != "colorizer" or fmt == "tinct"):
        raise ConfigError(
            "--temperature is for colorizer graphs (--format onnx or torchscript); a tinct colorizer file keeps "
            "the model's (tinct colorize --temperature T overrides it)"
        )


def _report(out: Path, fmt: str, exported: Any) -> None:
    for note in exported.notes:
        print(f"tinct export: note: {note}", file=sys.stderr)
    engine = "onnxruntime" if fmt == "onnx" else "TorchScript"
    print(f"tinct export: wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {fmt})")
    print(f"tinct export: {engine} vs torch: {exported.parity}")


def run(args: argparse.Namespace) -> int:
    """``tinct export RUN_OR_WEIGHTS --out FILE [--format tinct|onnx|torchscript] [--card JSON] [--evaluate]
    [--temperature T]``."""
    from tinct.core.exceptions import ConfigError

    out = Path(args.out)
    fmt = format_of(out, args.format)
    kind = _kind(args.source)
    _check_flags(args, kind, fmt)
    if kind == "colorizer":
        if fmt == "tinct":
            from tinct.colorization.pretrained import DEFAULT_COLORIZER, export_colorizer

            card = json.loads(Path(args.card).read_text()) if args.card else None
            source = DEFAULT_COLORIZER.path() if args.source == SHIPPED else args.source
            path = export_colorizer(source, out, card, evaluate=args.evaluate)
            print(
                f"tinct export: wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {path.with_suffix('.json')}"
            )
            return 0
        from tinct.colorization.colorize import load_colorizer
        from tinct.colorization.export import export_colorizer_graph

        colorizer, info = load_colorizer(None if args.source == SHIPPED else args.source)
        exported = export_colorizer_graph(colorizer, info, out, format=fmt, temperature=args.temperature)
        _report(out, fmt, exported)
        return 0
    if fmt == "tinct":
        from tinct.engine.modelfile import export_model

        path = export_model(args.source, out)
        print(f"tinct export: wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    from tinct.engine.modelfile import load_model

    task = load_model(args.source)
    name = task.cfg.task
    if name == "illuminant":
        from tinct.constancy.export import export_illuminant_graph

        exported = export_illuminant_graph(task, out, format=fmt, source=str(args.source))
    elif name == "patch":
        from tinct.patch.export import export_patch_graph

        exported = export_patch_graph(task, out, format=fmt, source=str(args.source))
    else:
        raise ConfigError(
            f"{args.source}: a {name!r} model; --format {fmt} exports colorizers, illuminant estimators "
            "(task illuminant) and patch models (--format tinct writes any model)"
        )
    _report(out, fmt, exported)
    return 0
