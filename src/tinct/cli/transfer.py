"""Colorization as representation learning: ``tinct probe`` and ``tinct study transfer``. Argument parsing only;
each calls one function of :mod:`tinct.colorization.transfer`."""

from __future__ import annotations

from typing import Any

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("probe",)


def add_parsers(sub: Any, study: Any) -> None:
    """Add ``probe`` to the command subparsers and ``transfer`` to ``study``'s."""
    p = sub.add_parser(
        "probe",
        help="linear probes of a frozen colorization encoder, block by block, vs random encoders",
        description="Features of every encoder block (average-pooled to about --features values) of the "
        "frozen encoder of MODEL, of --random-seeds random encoders of the same architecture (BatchNorm "
        "calibrated on the training photos) and optionally of a supervised classification run; one "
        "logistic regression per block, its C chosen on the validation split, scored on the test split. "
        "Writes probe.csv / probe.md / probe.json and figures/probe_accuracy.png into --out; the best block "
        "of each encoder is chosen on validation, and the margin pretrained - random has a bootstrap 95 % "
        "interval over test photos. Features are cached in OUT/cache: a rerun resumes.",
    )
    p.add_argument(
        "model",
        metavar="RUN_OR_WEIGHTS",
        help="a colorization run folder, checkpoint or exported .pt (e.g. the shipped "
        "src/tinct/colorization/weights/colorization_siggraph17_w025_photos.pt), or a classification run",
    )
    p.add_argument(
        "--data", help="folder with one sub-folder of photos per class (default: a classification run's)"
    )
    p.add_argument("--out", default="runs/probe", help="output folder (default: runs/probe)")
    p.add_argument(
        "--supervised", metavar="RUN", help="a classification run whose encoder is probed too (ceiling)"
    )
    p.add_argument("--random-seeds", type=int, default=3, help="random encoders probed (default 3; 0: none)")
    p.add_argument("--features", type=int, default=4096, help="features per block (default 4096)")
    p.add_argument("--resize", type=int, help="short side the photos are resized to (default 128)")
    p.add_argument("--eval-size", type=int, help="side of the centre crop probed (default 112)")
    p.add_argument("--split-file", help="JSON file of the train / val / test split (written on first use)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")

    s = study.add_parser(
        "transfer",
        help="colorization as representation learning: transfer, linear probes, interpretability",
        description="Trains the points of configs/transfer/study.sweep.yaml (the colorization encoder "
        "fine-tuned and frozen, the same network from scratch on lightness and on colour), runs the linear "
        "probes (colorization vs random vs supervised encoder), the CIELAB-histogram baseline and the "
        "semantic-interpretability test (the colour classifier on original, grayscale and recolorized test "
        "photos), and writes study.md / study.csv / study.json and figures/. Rerun with the same --out to "
        "resume.",
    )
    s.add_argument(
        "--out", default="runs/study-transfer", help="output folder (default: runs/study-transfer)"
    )
    s.add_argument("--config", help="base classification YAML (default: configs/transfer/flowers.yaml)")
    s.add_argument(
        "--sweep",
        default="configs/transfer/study.sweep.yaml",
        help="sweep file whose points are the variants (default: configs/transfer/study.sweep.yaml)",
    )
    s.add_argument(
        "--data", help="folder of class folders (default: the base config's, ../shared/data/flowers)"
    )
    s.add_argument("--init", help="the colorization run or weights whose encoder is studied (model.init)")
    s.add_argument("--epochs", type=int, help="training epochs of every variant")
    s.add_argument("--random-seeds", type=int, default=3, help="random encoders probed (default 3)")
    s.add_argument(
        "--seeds", type=int, default=3,
        help="training seeds of the fine-tuned and from-scratch variants, whose margin is the claim (default 3)",
    )  # fmt: skip
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def run(args: Any) -> int:
    if args.command == "probe":
        from pathlib import Path

        from tinct.colorization.transfer.probe_report import probe

        overrides = {
            key: value
            for key, value in (
                ("resize", args.resize), ("eval_size", args.eval_size), ("split_file", args.split_file)
            )
            if value is not None
        }  # fmt: skip
        table = probe(
            args.model, args.data, args.out, supervised=args.supervised, random_seeds=args.random_seeds,
            features=args.features, device=args.device, **overrides,
        )  # fmt: skip
        print((Path(args.out) / "probe.md").read_text())
        print(f"tinct probe: {len(table)} probes; table and figure in {args.out}")
        return 0
    from tinct.colorization.transfer.study import study_transfer

    table = study_transfer(
        args.out, args.config, data=args.data, init=args.init, epochs=args.epochs, overrides=args.overrides,
        random_seeds=args.random_seeds, seeds=args.seeds, sweep=args.sweep,
    )  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"tinct study transfer: tables, figures and runs in {args.out}")
    return 0
