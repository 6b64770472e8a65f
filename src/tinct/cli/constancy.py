"""Colour-constancy commands: ``tinct data ...``, ``tinct baselines constancy``, ``tinct crossval``, ``tinct study``.

Argument parsing only; each command calls one function of :mod:`tinct.constancy`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parsers", "run"]

COMMANDS = ("data", "baselines", "crossval", "study")
# tinct.spectral.formation.CAMERAS, spelled out so that building the parser does not import colour-science
# (1.6 s); tests/cli check that the two agree.
CAMERA_NAMES = ("nikon_d5100", "sigma_sdmerrill", "canon_eos_5d_mark_ii")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 324x216, got {text!r}") from err
    return w, h


def _levels(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", default="auto", help="auto | generic | simplecube | intel_tau (default: auto)")
    p.add_argument("--black-level", type=float, help="raw black level (default: the layout's)")
    p.add_argument("--saturation", type=float, help="raw saturation level (default: the layout's)")


def add_parsers(sub: Any) -> tuple[Any, Any]:
    """Add the colour-constancy subcommands to the ``tinct`` parser's subparsers; returns the ``data`` and
    ``study`` subparsers (other tasks add their data commands and studies there)."""
    d = sub.add_parser("data", help="generate or convert datasets")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    s = dsub.add_parser(
        "synth-constancy",
        help="physically based synthetic colour-constancy dataset (SimpleCube++ layout)",
        description="Natural and procedural scenes lifted to spectral reflectance (Mallett & Yuksel 2019), "
        "lit by daylight / Planckian / FL / LED illuminants and two-light mixtures, seen through a real "
        "camera's spectral sensitivities, with noise, black level 2048, saturation 2^14-1, 14-bit values.",
    )
    s.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    s.add_argument("--n", type=int, default=1000, help="number of images (default: 1000)")
    s.add_argument(
        "--camera", default="nikon_d5100", help=f"one of {', '.join(CAMERA_NAMES)} (default: nikon_d5100)"
    )
    s.add_argument("--size", type=_size, default=(324, 216), help="WIDTHxHEIGHT (default: 324x216)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--test-fraction", type=float, default=0.25)
    s.add_argument(
        "--mixtures", type=float, default=0.15, help="fraction of two-light scenes (default: 0.15)"
    )
    c = dsub.add_parser(
        "convert-constancy",
        help="write any constancy dataset as generic-layout linear .npy thumbnails (tinct's recipe input)",
    )
    c.add_argument("input", help="dataset folder (generic, SimpleCube++ or INTEL-TAU layout)")
    c.add_argument("out", help="output folder (generic layout: <stem>.npy + gt.csv)")
    c.add_argument("--size", type=int, default=64, help="thumbnail side (default: 64)")
    _levels(c)

    b = sub.add_parser("baselines", help="classical estimators on a dataset")
    bsub = b.add_subparsers(dest="baselines_task", required=True, metavar="TASK")
    bc = bsub.add_parser(
        "constancy",
        help="Gray World, White Patch, Shades of Gray, General Gray World, Gray Edge 1/2",
        description="Free parameters are tuned on the training split only. Protocol: --folds K gives "
        "k-fold cross-validation with pooled errors; otherwise the layout's train/test split, else "
        "folds.csv, else 3 folds.",
    )
    bc.add_argument("--data", required=True, help="dataset folder")
    bc.add_argument("--folds", type=int, help="k-fold cross-validation with K folds")
    bc.add_argument("--out", default=".", help="folder for baselines.json (default: current folder)")
    bc.add_argument("--seed", type=int, default=0, help="seed of the random fold assignment")
    _levels(bc)

    cv = sub.add_parser(
        "crossval",
        help="k-fold cross-validation of a config; pooled statistics in cv_metrics.json",
        description="Each fold trains on the other folds and is scored with its LAST checkpoint (no "
        "selection on the held-out fold); errors of all folds are pooled before statistics (FC4, CLCC). "
        "Rerun with the same --out to resume.",
    )
    cv.add_argument("config", help="illuminant experiment YAML (e.g. configs/constancy/thumbnails.yaml)")
    cv.add_argument("--data", required=True, help="dataset folder (folds.csv is used when present)")
    cv.add_argument(
        "--folds", type=int, help="number of folds (default: folds.csv, else 3); per camera with --per-camera"
    )
    cv.add_argument("--out", help="output folder (default: <output_dir>/<name>-cv-<timestamp>)")
    cv.add_argument("--pretrain", help="illuminant_embedding YAML: contrastive pretraining per fold first")
    cv.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    cv.add_argument(
        "--pretrain-set", dest="pretrain_overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a value of the --pretrain config (e.g. model.input_space=log)",
    )  # fmt: skip
    cv.add_argument(
        "--by-camera", action="store_true",
        help="--data is a folder of camera folders (e.g. nus8_64/): train on all cameras but one, test on it, "
        "for every camera",
    )  # fmt: skip
    cv.add_argument(
        "--per-camera", action="store_true",
        help="k-fold cross-validation inside each camera folder (its folds.csv) into OUT/per_camera; with "
        "--by-camera the table shows both side by side (OUT/by_camera.csv, by_camera.md)",
    )  # fmt: skip

    st = sub.add_parser("study", help="reproduce a study: one table and its figures")
    ssub = st.add_subparsers(dest="study_task", required=True, metavar="TASK")
    sc = ssub.add_parser(
        "constancy",
        help="linear vs log input x {supervised, contrastive + frozen, contrastive + full} + FFCC and classical "
        "rows",
        description="Without --data: the physically based synthetic dataset (generated on first use) and "
        "its test split; with --data: k-fold cross-validation. Writes study.md / study.csv (Type | Epochs | "
        "Mean | Median | Trimean | Worst25 | Best25 | Seed mean | Seed median; the seed study's figures "
        "for reference), figures/curves.png and figures/error_cdf.png. Rerun with the same --out to resume. "
        "CPU recipe: --data ../shared/data/constancy/cube_plus_64 --out runs/study-cube (budgeted for at "
        "most 2.5 h on 2 cores); GPU recipe: add --set model.backbone=googlenet (or mobilenet_v2) --set "
        "trainer.accelerator=gpu.",
    )
    sc.add_argument("--data", help="dataset folder (default: the synthetic dataset)")
    sc.add_argument("--folds", type=int, help="number of folds for a folder (default: folds.csv, else 3)")
    sc.add_argument(
        "--out", default="runs/study-constancy", help="output folder (default: runs/study-constancy)"
    )
    sc.add_argument(
        "--sweep",
        default="configs/constancy/study.sweep.yaml",
        help="sweep file of the variants and the pretraining stage (default: configs/constancy/study.sweep.yaml)",
    )
    sc.add_argument(
        "--config",
        help="base illuminant YAML (default: the sweep file's, configs/constancy/thumbnails_cnn.yaml, with the "
        "sweep file's epoch budget)",
    )
    sc.add_argument(
        "--pretrain",
        help="contrastive pretraining YAML (default: the sweep file's stage, configs/constancy/thumbnails_pretrain.yaml)",
    )
    sc.add_argument("--epochs", type=int, help="training epochs of every variant (default: the sweep file's)")
    sc.add_argument(
        "--pretrain-epochs",
        type=int,
        help="epochs of contrastive pretraining (default: the pretraining config's)",
    )
    sc.add_argument("--no-baselines", action="store_true", help="skip the FFCC and classical reference rows")
    sc.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a value of the base config before the variants are made (after the sweep file's set), "
        "e.g. model.backbone=googlenet",
    )  # fmt: skip
    return dsub, ssub


def _print(table: Any) -> None:
    from rich.console import Console

    Console().print(table)


def run(args: argparse.Namespace) -> int:
    """Dispatch one of :data:`COMMANDS`."""
    progress = sys.stderr.isatty()
    if args.command == "data" and args.data_command == "synth-constancy":
        from tinct.constancy.synth import synthesize_constancy

        out = synthesize_constancy(
            args.out, n=args.n, camera=args.camera, size=args.size, test_fraction=args.test_fraction,
            seed=args.seed, mixture_fraction=args.mixtures, progress=True,
        )  # fmt: skip
        print(f"tinct data synth-constancy: {args.n} images in {out}")
        return 0
    if args.command == "data":
        from tinct.constancy.layouts import convert_constancy

        out = convert_constancy(
            args.input, args.out, size=args.size, layout=args.layout, black_level=args.black_level,
            saturation=args.saturation, progress=True,
        )  # fmt: skip
        print(f"tinct data convert-constancy: wrote {out}")
        return 0
    if args.command == "baselines":
        from tinct.constancy.baselines import format_table, run_baselines

        stats = run_baselines(
            args.data, folds=args.folds, out=args.out, layout=args.layout, black_level=args.black_level,
            saturation=args.saturation, seed=args.seed, progress=progress,
        )  # fmt: skip
        _print(format_table(stats))
        print(f"tinct baselines: wrote {args.out}/baselines.json")
        return 0
    if args.command == "crossval":
        from tinct.constancy.crossval import crossval, format_stats_table
        from tinct.core.config import parse_overrides
        from tinct.engine.config import load_config

        # model.freeze is only valid together with the model.init that per-fold pretraining sets, so it is
        # applied per fold; every other override is applied (and validated) up front.
        late = {k: v for k, v in parse_overrides(args.overrides).items() if k == "model.freeze"}
        early = [f"data.root={args.data}"] + [o for o in args.overrides if not o.startswith("model.freeze=")]
        cfg = load_config(args.config, early)
        pre = load_config(args.pretrain, args.pretrain_overrides) if args.pretrain else None
        if args.by_camera or args.per_camera:
            from tinct.constancy.by_camera import crossval_cameras, format_camera_table

            res = crossval_cameras(
                cfg, args.data, args.out, by_camera=args.by_camera, per_camera=args.per_camera,
                folds=args.folds, pretrain_cfg=pre, progress=True, updates=late,
            )  # fmt: skip
            what = " vs ".join(
                w
                for w, on in (
                    ("leave one camera out", args.by_camera),
                    ("k-fold per camera", args.per_camera),
                )
                if on
            )
            _print(format_camera_table(res.table, title=f"{cfg.name}: {what} (angular error, degrees)"))
            print(f"tinct crossval: wrote {res.out / 'by_camera.csv'} and by_camera.md")
            return 0
        stats = crossval(
            cfg, args.data, folds=args.folds, out=args.out, pretrain_cfg=pre, progress=True, updates=late
        )
        _print(format_stats_table({cfg.name: stats}, title=f"{stats.get('folds', '')}-fold cross-validation"))
        return 0
    from tinct.constancy.study import study_constancy

    table = study_constancy(
        args.out, data=args.data, folds=args.folds, base_config=args.config, epochs=args.epochs,
        pretrain_epochs=args.pretrain_epochs, overrides=args.overrides, progress=True,
        pretrain=args.pretrain, baselines=not args.no_baselines, sweep=args.sweep,
    )  # fmt: skip
    print(table.to_string(index=False, na_rep="-"))
    print(f"tinct study constancy: table, figures and runs in {args.out}")
    return 0
