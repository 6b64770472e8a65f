"""Patch-colour targets of issue #6: cropping, accuracy with shades held out, metadata gain, training time.

Sections (each can be skipped with ``--only``):

- ``crop``: the adaptive crop on ``--n-crop`` synthetic photos (a seed no study uses): IoU of the found box
  with the true patch (median, 5th percentile, min, share >= 0.8) and milliseconds per photo (median).
- ``accuracy``: the study table of ``tinct study patch`` read from ``--study``: the test CIEDE2000 of the
  best model on validation (whole shades held out; target mean <= 1.0, goal 0.8), its breakdown per
  camera, and where metadata helps (image-only minus the best fusion on validation, per background and
  exposure bin, on test). The test split chooses nothing.
- ``training``: wall time of every small-CNN trial of that study, as the sweep recorded it on this machine
  (target <= 15 min each).

Example::

    tinct study patch --out runs/study-patch --only-full      # the 8 small-CNN points; resumable
    python benchmarks/patch_color.py --study runs/study-patch
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import print_table, write_results

SECTIONS = ("crop", "accuracy", "training")


def bench_crop(n: int) -> dict[str, Any]:
    from tinct.core.exceptions import DataError
    from tinct.io.image import read_image
    from tinct.patch.crop import Box, locate_patch
    from tinct.patch.synth import synthesize_patches

    with tempfile.TemporaryDirectory() as tmp:
        root = synthesize_patches(Path(tmp) / "crop", n, seed=1234, progress=False)
        table = pd.read_csv(root / "labels.csv")
        ious, times, failed = [], [], 0
        for row in table.itertuples():
            image = read_image(root / row.image).array
            t0 = time.perf_counter()
            try:
                box = locate_patch(image)
            except DataError:  # no patch found: counts as IoU 0
                failed += 1
                ious.append(0.0)
                continue
            times.append(time.perf_counter() - t0)
            ious.append(box.iou(Box(row.patch_x0, row.patch_y0, row.patch_x1, row.patch_y1)))
    iou = np.array(ious)
    result = {
        "n": n, "iou_median": float(np.median(iou)), "iou_p5": float(np.percentile(iou, 5)),
        "iou_min": float(iou.min()), "share_iou_ge_0.8": float((iou >= 0.8).mean()), "not_found": failed,
        "ms_per_photo_median": 1000 * statistics.median(times) if times else None,
    }  # fmt: skip
    print_table(
        "adaptive crop on synthetic photos (true box known)",
        ["photos", "IoU median", "IoU p5", "IoU min", "share IoU >= 0.8", "not found", "ms / photo"],
        [[n, result["iou_median"], result["iou_p5"], result["iou_min"], result["share_iou_ge_0.8"], failed,
          result["ms_per_photo_median"]]],
        digits=3,
    )  # fmt: skip
    return result


def bench_accuracy(study: Path) -> dict[str, Any]:
    from tinct.patch.study import SELECT_COLUMN, best_variant

    table = pd.read_csv(study / "study.csv")
    best = best_variant(table)  # lowest validation dE00; an old study.csv without it is refused
    axes = [c for c in table.columns if c in ("model.backbone", "background", "fusion")]
    rows = [[*(r[a] for a in axes), r[SELECT_COLUMN], r["de00_mean"], r["de00_median"], r["de00_p90"],
             r["share_below_1"]] for _, r in table.iterrows()]  # fmt: skip
    print_table(
        f"patch study {study}: ranked by validation dE00 mean; test split (whole shades held out)",
        [*axes, "val dE00 mean", "dE00 mean", "median", "p90", "share < 1"], rows, digits=3,
    )  # fmt: skip
    per_camera = json.loads((Path(best["run_dir"]) / "patch_metrics.json").read_text())["per_camera"]
    print_table(
        "best model (on validation) per camera, test split",
        ["camera", "n", "dE00 mean", "median", "share < 1"],
        [[k, v["n"], v["de00_mean"], v["de00_median"], v["share_below_1"]] for k, v in per_camera.items()],
        digits=3,
    )  # fmt: skip
    gain = json.loads((study / "study.json").read_text())["metadata_gain"]
    if gain:
        cols = [c for c in gain[0] if c.startswith("gain ")]
        keys = [c for c in gain[0] if c not in cols]
        print_table(
            "metadata gain on test: image-only dE00 minus the best fusion on validation (positive: helps)",
            [*keys, *cols], [[g[k] for k in keys] + [g[c] for c in cols] for g in gain], digits=3,
        )  # fmt: skip
    target = float(best["de00_mean"])
    verdict = "met (goal 0.8 met)" if target <= 0.8 else "met" if target <= 1.0 else "missed"
    print(
        f"best model on validation: {dict((a, best[a]) for a in axes)} (val dE00 mean "
        f"{best[SELECT_COLUMN]:.3f}), test dE00 mean {target:.3f}: target <= 1.0 {verdict}"
    )
    return {
        "selected_by": "validation dE00 mean (val/de00_mean); figures: test split",
        "best": {a: best[a] for a in axes} | {k: float(best[k]) for k in (SELECT_COLUMN, "de00_mean",
                                                                           "de00_median", "de00_p90",
                                                                           "share_below_1")},
        "target_met": target <= 1.0, "goal_met": target <= 0.8, "per_camera": per_camera,
        "metadata_gain": gain, "table": json.loads(table.drop(columns=["run_dir"]).to_json(orient="records")),
    }  # fmt: skip


def bench_training(study: Path) -> dict[str, Any]:
    results = pd.read_csv(study / "sweep" / "results.csv")
    small = results[(results["model.backbone"] == "small_cnn") & (results["state"] == "COMPLETE")]
    minutes = small["time_s"].to_numpy(dtype=float) / 60
    rows = [[r["background"], r["fusion"], r["epochs"], r["time_s"] / 60] for _, r in small.iterrows()]
    print_table("small-CNN training time on this machine (sweep records)",
                ["background", "fusion", "epochs", "minutes"], rows)  # fmt: skip
    worst = float(minutes.max()) if len(minutes) else None
    if worst is not None:
        print(
            f"slowest small-CNN trial {worst:.1f} min: target <= 15 min {'met' if worst <= 15 else 'missed'}"
        )
    return {
        "minutes": minutes.tolist(),
        "max_minutes": worst,
        "target_met": worst is not None and worst <= 15,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", default="runs/study-patch", help="folder of `tinct study patch`")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--n-crop", type=int, default=200, help="synthetic photos for the crop section")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "patch_color.json"))
    args = p.parse_args()
    result: dict[str, Any] = {}
    if "crop" in args.only:
        result["crop"] = bench_crop(args.n_crop)
    study = Path(args.study)
    for name, fn in (("accuracy", bench_accuracy), ("training", bench_training)):
        if name in args.only:
            if not (study / "study.csv").is_file():
                print(f"{name}: skipped, no study at {study} (run `tinct study patch --out {study}`)")
                continue
            result[name] = fn(study)
    write_results(Path(args.out), result)


if __name__ == "__main__":
    main()
