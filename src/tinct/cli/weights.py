"""``tinct import-weights``: the released PyTorch weights of ECCV16, SIGGRAPH17 and InstColorization as tinct
colorizer files. Argument parsing only; the work is :mod:`tinct.colorization.official`."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["KINDS", "add_parsers", "run"]

# tinct.colorization.official.KINDS, spelled out so that building the parser imports no torch.
KINDS = ("eccv16", "siggraph17", "instcolorization")


def add_parsers(sub: Any) -> None:
    """Add ``import-weights`` to the command subparsers."""
    p = sub.add_parser(
        "import-weights",
        help="convert the released PyTorch weights of ECCV16, SIGGRAPH17 or InstColorization into a tinct model",
        description="Converts weights you downloaded yourself (nothing is downloaded) into a tinct colorizer "
        "file that --model of every tinct command takes. eccv16: colorization_release_v2-9b330a0b.pth; "
        "siggraph17: siggraph17-df00044c.pth (both richzhang/colorization); instcolorization: the folder "
        "holding InstColorization's latest_net_G.pth, latest_net_GF.pth and latest_net_GComp.pth, or those "
        "three files. Prints each file's SHA-256 and how it compares with the known releases (a file that "
        "is not the release, e.g. fine-tuned, converts with a warning). The ECCV16 model decodes as its "
        "release, with the mean of the softmax (temperature 1.0); pass --temperature 0.38 to tinct "
        "colorize for the paper's annealed mean.",
    )
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="the release's .pth file (instcolorization: folder or 3 files)",
    )
    p.add_argument("--out", required=True, help="model file to write (.pt); its card goes beside it (.json)")


def run(args: Any) -> int:
    from tinct.colorization.official import check_release, import_weights, release_files

    files = release_files(args.kind, args.files)
    roles = ["G", "GF", "GComp"] if args.kind == "instcolorization" else [""]
    for path, role in zip(files, roles, strict=True):
        check = check_release(path, args.kind, role)
        print(f"{path}: SHA-256 {check.sha256} ({check.size:,} bytes)")
        if check.status == "mismatch":
            print(f"tinct import-weights: warning: {path}: {check.message}", file=sys.stderr)
        else:
            print(f"  {check.status}: {check.message}")
    out = import_weights(args.kind, args.files, args.out)
    print(f"wrote {out} and {out.with_suffix('.json')} ({args.kind}, float32)")
    if args.kind == "eccv16":
        print(
            "  decoding: the mean of the softmax (temperature 1.0), as the release; "
            "--temperature 0.38 gives the paper's annealed mean"
        )
    boxes = " --boxes DIR|FILE (or --detector NAME)" if args.kind == "instcolorization" else ""
    print(f"  use it with: tinct colorize PHOTOS --out FOLDER --model {out}{boxes}")
    return 0
