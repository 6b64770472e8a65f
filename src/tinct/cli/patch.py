"""Patch-colour commands: ``tinct data synth-patches``, ``tinct data crop`` and ``tinct study patch``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DATA_COMMANDS", "add_parsers", "run"]

DATA_COMMANDS = ("synth-patches", "crop")
# tinct.patch.synth.PATCH_CAMERAS, spelled out so building the parser imports nothing heavy.
PATCH_CAMERA_NAMES = ("nikon_d5100", "sigma_sdmerrill", "canon_eos_5d_mark_ii")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 160x120, got {text!r}") from None
    return w, h


def add_parsers(data: Any, study: Any) -> None:
    """Add the patch commands to the ``data`` and ``study`` subparsers."""
    s = data.add_parser(
        "synth-patches",
        help="physically based synthetic photos of skin patches with camera EXIF (+ labels.csv)",
        description="Skin spectra from a NIST-derived statistical model on a card (white border, grey "
        "interior, soft shadow) under random illuminants and exposures, through three cameras' measured "
        "sensitivities, with noise, vignetting, an erring auto white balance, a tone curve and JPEG; "
        "labels are CIELAB under D65 / 2 degrees; exposure, ISO, aperture, brightness and camera are "
        "written as EXIF. Rerun the same command to resume.",
    )
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--n", type=int, default=2000, help="number of photos (default: 2000)")
    s.add_argument("--size", type=_size, default=(160, 120), help="WIDTHxHEIGHT (default: 160x120)")
    s.add_argument("--photos-per-shade", type=int, default=8, help="photos of each skin shade (default: 8)")
    s.add_argument(
        "--cameras", nargs="+", default=list(PATCH_CAMERA_NAMES), choices=PATCH_CAMERA_NAMES,
        help="cameras to draw from (default: all three)",
    )  # fmt: skip
    s.add_argument("--seed", type=int, default=0)

    c = data.add_parser(
        "crop",
        help="find the uniform target patch in every photo and write crops (+ a contact sheet)",
        description="Gradient-based, outlier-aware localisation of the uniform patch that avoids shadows "
        "and borders. Writes each crop under OUT with its EXIF, crops.csv (boxes), labels.csv (when IN has "
        "one; with an iou column when it has true boxes) and contact_sheet.png.",
    )
    c.add_argument("input", help="folder of photos")
    c.add_argument("out", help="output folder")
    c.add_argument("--context", type=int, default=0, help="pixels of background kept around the patch")
    c.add_argument("--no-sheet", action="store_true", help="skip contact_sheet.png")

    st = study.add_parser(
        "patch",
        help="fusion x backbone x background x metadata on the synthetic patches, shades held out",
        description="Runs the sweep file (default configs/patch/study.sweep.yaml) with a fixed test split, "
        "tests every trial, and writes study.md / study.csv (one row per variant, ranked by validation "
        "CIEDE2000 mean, which also picks the best model and fusions; test CIEDE2000 mean, median, p90, "
        "share below 1, per exposure bin) and figures. Rerun with the same --out to resume.",
    )
    st.add_argument("--out", default="runs/study-patch", help="output folder (default: runs/study-patch)")
    st.add_argument("--sweep", default="configs/patch/study.sweep.yaml", help="the study's sweep file")
    st.add_argument("--only-full", action="store_true", help="skip the sweep's optional points")
    st.add_argument("--workers", type=int, default=1, help="local worker processes (default: 1)")
    st.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def run(args: argparse.Namespace) -> int:
    if args.command == "data" and args.data_command == "synth-patches":
        from tinct.patch.synth import synthesize_patches

        out = synthesize_patches(
            args.out, args.n, size=args.size, cameras=args.cameras, photos_per_shade=args.photos_per_shade,
            seed=args.seed, progress=True,
        )  # fmt: skip
        print(f"tinct data synth-patches: {args.n} photos and labels.csv in {out}")
        return 0
    if args.command == "data":
        from tinct.patch.crop import crop_folder

        table = crop_folder(
            args.input, args.out, context=args.context, sheet=not args.no_sheet, progress=True
        )
        line = f"tinct data crop: {len(table)} crops in {args.out}"
        if "iou" in table.columns and table["iou"].notna().any():
            iou = table["iou"].dropna()
            line += f" (IoU with the true boxes: median {iou.median():.3f}, min {iou.min():.3f})"
        print(line)
        return 0
    from tinct.core.config import parse_overrides
    from tinct.patch.study import study_patch

    table = study_patch(
        args.out, sweep=args.sweep, only_full=args.only_full, workers=args.workers,
        overrides=parse_overrides(args.overrides),
    )  # fmt: skip
    print(table.to_string(index=False))
    print(f"tinct study patch: study.md, study.csv and figures in {args.out}")
    return 0
