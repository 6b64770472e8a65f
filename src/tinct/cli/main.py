"""``tinct`` command line: argument parsing only; every command calls a function of the engine or of a domain."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tinct.core.exceptions import TinctError

__all__ = ["build_parser", "main"]

# tinct.cli.patch.DATA_COMMANDS, spelled out so dispatch needs no import.
PATCH_DATA_COMMANDS = ("synth-patches", "crop")

EPILOG = """examples:
  tinct quickstart
  tinct train configs/illuminant/mondrian_small_cnn.yaml --set optim.lr=3e-4 --set trainer.max_epochs=20
  tinct train configs/illuminant/mondrian_small_cnn.yaml --accelerator gpu --devices 4 --strategy ddp
  tinct train --resume runs/mondrian-20261123-101500 --set trainer.max_epochs=40
  tinct evaluate runs/mondrian-20261123-101500 --data path/to/folder
  tinct predict runs/mondrian-20261123-101500 image1.png folder/
  tinct data synth-constancy --out data/synth --n 1000 --camera nikon_d5100
  tinct baselines constancy --data data/synth --out results/
  tinct crossval configs/constancy/thumbnails.yaml --data thumbs64/ --folds 3
  tinct study constancy --out runs/study
  tinct colorize photo.jpg folder/ --out colorized/ [--model RUN_DIR_OR_WEIGHTS] [--temperature 0.38]
  tinct evaluate colorization --data photos/ [--model RUN_DIR_OR_WEIGHTS] [--boxes DIR|FILE]
  tinct study colorization --out runs/study-colorization
  tinct study instance --out runs/study-instance
  tinct train configs/transfer/flowers.yaml && tinct probe colorizer.pt --data flowers/ --out runs/probe
  tinct study transfer --out runs/study-transfer
  tinct data synth-patches --out data/patches --n 2000 && tinct data crop data/patches crops/ --context 16
  tinct train configs/patch/cross_attention.yaml && tinct evaluate RUN_DIR --data data/other_patches
  tinct study patch --out runs/study-patch
  tinct export runs/study-colorization/classification_rebalanced --out colorizer.pt --evaluate
  tinct export runs/thumbnails-20261123-101500 --out estimator.onnx
  tinct import-weights eccv16 colorization_release_v2-9b330a0b.pth --out eccv16.pt
  tinct colorize photos/ --out colored/ --model eccv16.pt --device cuda
  tinct serve --port 7860
  tinct sweep configs/illuminant/input_space.sweep.yaml --auto-summary --analysis --eval-winners 2
  tinct summarize runs/ --out results.csv && tinct plot results.csv --out figures/
  tinct report runs/ --out report.html
"""


def _add_trainer_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hardware (passed to Lightning; override the config's trainer section)")
    g.add_argument("--accelerator", help="cpu | gpu | cuda | mps | auto")
    g.add_argument("--devices", help="number of devices, a list like 0,1, or 'auto'")
    g.add_argument("--num-nodes", type=int, help="number of nodes (multi-node DDP)")
    g.add_argument("--strategy", help="auto | ddp | ddp_spawn | fsdp ...")


def _devices(value: str | None) -> int | str | list[int] | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    return value


def build_parser() -> argparse.ArgumentParser:
    from tinct import __version__

    parser = argparse.ArgumentParser(
        prog="tinct",
        description="Learning colour from images: colour science, colour constancy, colorization, patch colour.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    q = sub.add_parser(
        "quickstart", help="check the colour core and train a tiny model end to end (CPU, ~1 min)"
    )
    q.add_argument("--out", default="runs", help="folder for the quickstart run directory (default: runs)")
    q.add_argument("--epochs", type=int, default=4, help="training epochs of the tiny run (default: 4)")

    t = sub.add_parser("train", help="train from a YAML config (or resume a run)")
    t.add_argument("config", nargs="?", help="experiment YAML file")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.backbone=mobilenet_v2 (repeatable)",
    )
    t.add_argument("--run-dir", help="run directory (default: <output_dir>/<name>-<timestamp>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    _add_trainer_flags(t)

    e = sub.add_parser(
        "evaluate",
        help="test a trained run on its test split or on a data folder; or: evaluate colorization --model M --data DIR",
        description="tinct evaluate RUN_DIR [--data DIR]: the run's task metrics. tinct evaluate colorization "
        "[--model RUN_DIR_OR_WEIGHTS] --data DIR: a colorizer (default: the shipped one) on every photo of DIR "
        "at full resolution, beside the grayscale baseline; writes colorization_metrics.json (auc_raw, "
        "auc_rebalanced, psnr, ssim, colorfulness for the model, and the same under 'gray'; 'whole' and, with "
        "--boxes, 'boxes': the same inside the object boxes; lpips and fid with --lpips-weights / --fid-weights).",
    )
    e.add_argument("run_dir", metavar="RUN_DIR | colorization")
    e.add_argument("--data", help="folder to evaluate on (the task's folder layout)")
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.add_argument(
        "--accelerator", default="cpu", help="Lightning accelerator of a run's evaluation (cpu, gpu, auto)"
    )
    e.add_argument(
        "--device",
        help="device to run on: cpu (default), cuda, cuda:1, mps; for a run, the same as --accelerator "
        "(cuda:1 picks the GPU)",
    )
    e.add_argument(
        "--out",
        help="write the metrics JSON here (default: inside the run directory; colorization: "
        "./colorization_metrics.json, and a copy in a --model run directory)",
    )
    e.add_argument(
        "--model", help="(colorization) run directory, checkpoint or weights file; default: shipped"
    )
    e.add_argument("--temperature", type=float, help="(colorization) annealed-mean temperature")
    e.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        help="(colorization) run the network with torch (default) or onnxruntime (CPU; an .onnx --model "
        "always runs in onnxruntime)",
    )
    e.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        help="(colorization) skip photos of more than N pixels (default: $TINCT_MAX_PIXELS, else about 179 MP)",
    )
    e.add_argument(
        "--boxes",
        metavar="DIR|FILE",
        help="(colorization) object boxes (a YOLO label folder, a COCO JSON file or per-image JSON files): "
        "every metric is also reported inside the boxes (score > 0.7, at most 8 a photo); an instance-aware "
        "model is given them",
    )
    e.add_argument(
        "--lpips-weights",
        metavar="FILE",
        help="(colorization) local torchvision AlexNet or VGG-16 weights (.pth) for LPIPS; never downloaded",
    )
    e.add_argument(
        "--fid-weights",
        metavar="FILE",
        help="(colorization) local FID Inception weights (pt_inception-2015-12-05-6726825d.pth) for FID; "
        "needs torch-fidelity; never downloaded",
    )

    p = sub.add_parser("predict", help="run a trained model on image files or folders")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--out", help="output folder (default: RUN_DIR/predictions)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument(
        "--device", default="cpu", help="device to run the model on: cpu (default), cuda, cuda:1, mps"
    )

    c = sub.add_parser("config", help="validate a config and print it fully resolved")
    c.add_argument("config")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("info", help="versions and the registered tasks and backbones")

    from tinct.cli import colorization, constancy, experiments, export, patch, serve, transfer, weights

    data, study = constancy.add_parsers(sub)
    colorization.add_parsers(sub, study)
    export.add_parsers(sub)
    weights.add_parsers(sub)
    serve.add_parsers(sub)
    transfer.add_parsers(sub, study)
    patch.add_parsers(data, study)
    experiments.add_parsers(sub)
    return parser


def _end_distributed() -> None:
    """Destroy the process group a distributed ``tinct train`` made (Lightning leaves it up), so that each
    process exits cleanly: left to the interpreter's shutdown, its communication threads are torn down in no
    particular order and a rank can abort ("terminate called without an active exception") after its work
    is done, which a launcher such as torchrun reports as a failed run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _cmd_train(args: argparse.Namespace) -> int:
    try:
        return _train(args)
    except SystemExit as exit_:
        # Lightning turns Ctrl-C during fit into sys.exit(1) after its own shutdown (its one exit call in
        # training), which would end tinct silently: report it as the interrupt it was.
        if exit_.code == 1:
            raise KeyboardInterrupt from exit_
        raise
    finally:
        _end_distributed()


def _train(args: argparse.Namespace) -> int:
    from tinct.core.config import parse_overrides
    from tinct.engine.config import load_config
    from tinct.engine.run_dir import RunDir
    from tinct.engine.train import train

    hw = {
        "accelerator": args.accelerator,
        "devices": _devices(args.devices),
        "num_nodes": args.num_nodes,
        "strategy": args.strategy,
    }
    if args.resume:
        if args.config:
            raise TinctError(
                "give either CONFIG or --resume RUN_DIR, not both (a resumed run keeps its config)"
            )
        cfg = RunDir(args.resume).config(parse_overrides(args.overrides))
        train(cfg, run_dir=args.resume, resume=True, **hw)
        return 0
    if not args.config:
        raise TinctError("tinct train needs a CONFIG file (or --resume RUN_DIR)")
    cfg = load_config(args.config, args.overrides)
    train(cfg, run_dir=args.run_dir, **hw)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tinct.engine.evaluate import evaluate

    if args.run_dir == "colorization" and not (Path(args.run_dir) / "config.yaml").is_file():
        from tinct.cli.colorization import run_evaluate

        return run_evaluate(args)
    colorization_only = (
        args.boxes, args.lpips_weights, args.fid_weights, args.temperature, args.max_pixels, args.backend,
    )  # fmt: skip
    if args.model or any(v is not None for v in colorization_only):
        raise TinctError(
            "--model, --temperature, --max-pixels, --boxes, --backend, --lpips-weights and --fid-weights belong "
            "to 'tinct evaluate colorization'"
        )

    accelerator, devices = _accelerator(args.device, args.accelerator)
    metrics = evaluate(
        args.run_dir,
        args.data,
        checkpoint=args.checkpoint,
        accelerator=accelerator,
        devices=devices,
        out=args.out,
    )
    _print_table("evaluation: " + (args.data or "test split"), metrics)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from tinct.engine.evaluate import predict

    rows = predict(args.run_dir, args.inputs, args.out, checkpoint=args.checkpoint, device=args.device)
    for row in rows:
        print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    failed = sum("error" in r for r in rows)
    print(f"tinct: {len(rows) - failed} predicted, {failed} failed", file=sys.stderr)
    return 1 if failed else 0  # as colorize: every file is tried, and a skipped one fails the job at the end


def _accelerator(device: str | None, accelerator: str) -> tuple[str, int | list[int]]:
    """Lightning's accelerator and devices for ``--device`` (cpu, cuda, cuda:N, mps), else ``--accelerator``.

    Raises:
        TinctError: not a device name; ConfigError: a device this machine does not have.

    Example:
        >>> _accelerator(None, "gpu"), _accelerator("cpu", "gpu")
        (('gpu', 1), ('cpu', 1))
    """
    if device is None:
        return accelerator, 1
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "gpu", "mps") or (index and not index.isdigit()):
        raise TinctError(f"--device {device}: expected cpu, cuda, cuda:N or mps")
    if kind == "cpu":
        return "cpu", 1
    from tinct.core.checks import check_device

    check_device(device.replace("gpu", "cuda"))  # one line now, not Lightning's accelerator error later
    return ("mps" if kind == "mps" else "gpu"), ([int(index)] if index else 1)


def _print_table(title: str, metrics: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    Console().print(table)


def _cmd_info(_: argparse.Namespace) -> int:
    from tinct.engine.run_dir import environment_info
    from tinct.engine.task import TASKS
    from tinct.nn.backbones import BACKBONES

    info = environment_info()
    print(
        json.dumps(
            {
                "versions": info["versions"],
                "python": info["python"],
                "cuda": info["cuda"],
                "tasks": TASKS.names(),
                "backbones": BACKBONES.names(),
            },
            indent=2,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "quickstart":
            from tinct.cli.quickstart import quickstart

            quickstart(args.out, epochs=args.epochs)
            return 0
        if args.command == "train":
            return _cmd_train(args)
        if args.command == "evaluate":
            return _cmd_evaluate(args)
        if args.command == "predict":
            return _cmd_predict(args)
        if args.command == "export":
            from tinct.cli import export

            return export.run(args)
        if args.command == "import-weights":
            from tinct.cli import weights

            return weights.run(args)
        if args.command == "serve":
            from tinct.cli import serve

            return serve.run(args)
        if args.command == "colorize" or (
            args.command == "study" and args.study_task in ("colorization", "instance")
        ):
            from tinct.cli import colorization

            return colorization.run(args)
        if args.command == "probe" or (args.command == "study" and args.study_task == "transfer"):
            from tinct.cli import transfer

            return transfer.run(args)
        if (args.command == "data" and args.data_command in PATCH_DATA_COMMANDS) or (
            args.command == "study" and args.study_task == "patch"
        ):
            from tinct.cli import patch

            return patch.run(args)
        if args.command in ("sweep", "summarize", "plot", "report"):
            from tinct.cli import experiments

            return experiments.run(args)
        if args.command in ("data", "baselines", "crossval", "study"):
            from tinct.cli import constancy

            return constancy.run(args)
        if args.command == "config":
            import yaml

            from tinct.engine.config import load_config

            print(
                yaml.safe_dump(
                    load_config(args.config, args.overrides).model_dump(mode="json"), sort_keys=False
                )
            )
            return 0
        return _cmd_info(args)
    except KeyboardInterrupt:
        print(f"tinct {args.command}: interrupted; {_kept_on_interrupt(args)}", file=sys.stderr)
        return 130
    except Exception as err:  # every error ends in one line; TINCT_DEBUG=1 shows the traceback
        if _debug():
            raise
        print(f"tinct {args.command}: error: {_one_line(err)}", file=sys.stderr)
        if not isinstance(err, TinctError):
            print("  (set TINCT_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 2


def _debug() -> bool:
    import os

    return os.environ.get("TINCT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _one_line(err: BaseException) -> str:
    """An exception as one line: tinct's own errors as they are, others prefixed with their type (a bare
    ``KeyError: 'x'`` says little without it), line breaks of multi-line messages (Lightning's) folded."""
    text = " ".join(str(err).split()) or repr(err)
    if isinstance(err, TinctError | NotImplementedError):
        return text
    if isinstance(err, OSError) and err.filename is not None:  # PermissionError, NotADirectoryError ...
        reason = err.strerror or text
        return f"{err.filename}: {reason.lower() if reason[:1].isupper() else reason}"
    return f"{type(err).__name__}: {text}"


def _kept_on_interrupt(args: argparse.Namespace) -> str:
    """What an interrupted command kept, and how to go on (each command keeps something different)."""
    command = args.command
    sub = getattr(args, "data_command", None) or getattr(args, "study_task", None)
    if command == "train":
        where = f" in {args.resume}" if getattr(args, "resume", None) else " in the run directory"
        return f"finished epochs are kept{where} (continue with tinct train --resume RUN_DIR)"
    if command == "colorize":
        return (
            f"the photos finished so far are in {args.out} and listed in {args.out}/colorize.csv; "
            "rerun to colorize the rest"
        )
    if command == "predict":
        return "the predictions finished so far are listed in predictions.csv in the output folder"
    if command == "sweep":
        return "finished trials are kept; run the same command again to resume"
    if command in ("study", "crossval"):
        return "finished runs and folds are kept; run the same command again (same --out) to resume"
    if command == "data" and sub in ("synth-constancy", "synth-patches"):
        return "the files written so far are kept; run the same command again to finish the set"
    if command == "quickstart":
        return "nothing to keep; run tinct quickstart again"
    return "files finished so far are kept (each written whole, never half); run the command again"


if __name__ == "__main__":
    sys.exit(main())
