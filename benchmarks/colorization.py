"""Colorization targets of issues #5 and #18: speed, the ablation's accuracy, the default colorizer, instance
fusion. Prints tables, writes JSON.

Sections (each can be skipped with ``--only``):

- ``colorize``: one 1024 x 768 photo through the shipped colorizer (or ``--model``), read + predict at full
  resolution + write the image and its panel, as ``tinct colorize`` does per file. Median of ``--repeats``
  runs after a warm-up; the whole command (interpreter start and imports included) is timed too. Target:
  <= 1 s per photo.
- ``training``: crops/s of the recipe (``configs/colorization/eccv16_photos.yaml``: 128 x 128 crops, batch
  16, forward + backward + AdamW step) and the share of each step spent on soft encoding the targets
  (measured in the same process, medians). Target: soft encoding < 10 % of the step.
- ``accuracy``: the ablation table of ``tinct study colorization`` (classification + rebalancing vs without
  rebalancing vs L2 regression vs grayscale, held-out photos at full resolution) read from ``--study``; the
  shipped model is checked to be the study's rebalanced run. Targets: the shipped model beats grayscale and
  L2 in rebalanced AuC and colourfulness; rebalancing raises colourfulness.
- ``default``: the default colorizer (``tinct.colorization.pretrained.DEFAULT_COLORIZER``) vs the ECCV16 one vs
  grayscale on the validation photos of ``configs/colorization/siggraph17_photos.yaml`` (which chose the
  default) and its test photos, at full resolution, overall and per folder. Targets: PSNR >= gray - 0.5 dB,
  rebalanced AuC >= gray + 3 points, better than ECCV16 in both.
- ``instance``: the table and per-photo margins of ``tinct study instance`` (``--instance-study``). Targets:
  inside the boxes the fused model beats the full-image model of the same budget in PSNR and rebalanced AuC;
  on the whole image it is no worse.
- ``colorize_boxes``: ``tinct colorize --instances --boxes`` on a 640 x 480 COCO128 photo with the shipped
  fused model. Target: <= 2 s.

Example::

    tinct study colorization --out runs/study-colorization      # ~35 min on a 2-core CPU, resumable
    tinct study instance --out runs/study-instance              # ~25 min
    python benchmarks/colorization.py --study runs/study-colorization --instance-study runs/study-instance
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "colorization" / "eccv16_photos.yaml"
PHOTO = ROOT.parent / "shared" / "data" / "photos" / "CSun_Hays80"
SIGGRAPH_RECIPE = ROOT / "configs" / "colorization" / "siggraph17_photos.yaml"
SECTIONS = ("colorize", "training", "accuracy", "default", "instance", "colorize_boxes")
_table = functools.partial(print_table, digits=3)  # seconds and shares need the third decimal


def _test_photo(folder: Path) -> Path:
    """A real photo resized to 1024 x 768 (or a smooth synthetic one without ../shared)."""
    import cv2

    from tinct.colorization.photos import list_photos

    path = folder / "photo_1024x768.png"
    photos = list_photos(PHOTO) if PHOTO.is_dir() else []
    if photos:
        image = cv2.resize(cv2.imread(str(photos[0])), (1024, 768), interpolation=cv2.INTER_CUBIC)
    else:
        y, x = np.mgrid[0:768, 0:1024] / 1024.0
        image = (np.stack([x, y, 1 - x], -1) * 255).astype(np.uint8)
    cv2.imwrite(str(path), image)
    return path


def _command_times(cmd: list[str], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` runs of a whole command (interpreter start and imports included)."""
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t)
    return walls


def bench_colorize(model: str | None, repeats: int) -> dict[str, Any]:
    from tinct.colorization.colorize import colorize_file, load_colorizer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo = _test_photo(folder)
        colorizer, info = load_colorizer(model)
        colorize_file(colorizer, photo, folder / "warm")
        per_file, no_panel, network = [], [], []
        rgb = torch.rand(1, 3, 768, 1024)
        for _ in range(repeats):
            t = time.perf_counter()
            colorize_file(colorizer, photo, folder / "out")
            per_file.append(time.perf_counter() - t)
            t = time.perf_counter()
            colorize_file(colorizer, photo, folder / "out", panel=False)
            no_panel.append(time.perf_counter() - t)
            t = time.perf_counter()
            colorizer(rgb)
            network.append(time.perf_counter() - t)
        cmd = [sys.executable, "-m", "tinct.cli.main", "colorize", str(photo), "--out", str(folder / "cli")]
        if model:
            cmd += ["--model", model]
        walls = _command_times(cmd, max(1, repeats // 2))
    res = {
        "model": info["source"],
        "size": "1024x768",
        "per_photo_s": statistics.median(per_file),
        "per_photo_without_panel_s": statistics.median(no_panel),
        "colorizer_forward_s": statistics.median(network),
        "command_wall_s": statistics.median(walls),
        "target_s": 1.0,
    }
    _table(
        f"tinct colorize, one 1024 x 768 photo, {torch.get_num_threads()} threads (median of {repeats})",
        ["step", "seconds", "target"],
        [
            ["read + colorize + write image and panel (per photo)", res["per_photo_s"], "<= 1 s"],
            ["same without the panel", res["per_photo_without_panel_s"], ""],
            ["colorizer forward only (L -> full-res Lab -> sRGB)", res["colorizer_forward_s"], ""],
            ["whole command (interpreter start, imports, model load)", res["command_wall_s"], ""],
        ],
    )
    return res


def bench_training(steps: int) -> dict[str, Any]:
    import torch.nn.functional as F

    from tinct.color.lab import rgb_to_lab
    from tinct.color.quantize import soft_encode
    from tinct.colorization.task import ColorizationTask
    from tinct.engine.config import load_config

    cfg = load_config(RECIPE)
    d, m = cfg.data, cfg.model
    task = ColorizationTask(cfg)  # type: ignore[arg-type]
    task.train()
    opt = torch.optim.AdamW(task.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    # Smooth random photos: their ab spread over many bins, like real crops.
    batch = torch.nn.functional.interpolate(
        torch.rand(d.batch_size, 3, 16, 16, generator=g), size=d.crop, mode="bicubic"
    ).clamp(0, 1)
    step_times, encode_times = [], []
    for i in range(steps + 2):
        t = time.perf_counter()
        out = task.step({"image": batch})
        out["loss"].backward()
        opt.step()
        opt.zero_grad()
        elapsed = time.perf_counter() - t
        ab = F.avg_pool2d(rgb_to_lab(batch)[:, 1:], 4)
        t = time.perf_counter()
        soft_encode(ab, m.k, m.sigma)
        encode = time.perf_counter() - t
        if i >= 2:  # warm-up: lookup tables, allocator
            step_times.append(elapsed)
            encode_times.append(encode)
    step = statistics.median(step_times)
    encode = statistics.median(encode_times)
    res = {
        "crop": d.crop,
        "batch": d.batch_size,
        "width": m.width,
        "parameters": sum(p.numel() for p in task.net.parameters()),
        "step_s": step,
        "crops_per_s": d.batch_size / step,
        "soft_encode_s": encode,
        "soft_encode_share": encode / step,
        "target_share": 0.10,
    }
    _table(
        f"training step of the recipe (width {m.width}, {d.crop} x {d.crop} crops, batch {d.batch_size}, "
        f"{torch.get_num_threads()} threads, median of {steps})",
        ["quantity", "value", "target"],
        [
            ["crops / s", res["crops_per_s"], "reported"],
            ["step (forward + backward + AdamW), s", step, ""],
            ["soft encoding of the targets, s", encode, ""],
            ["soft-encoding share of the step", res["soft_encode_share"], "< 0.10"],
        ],
    )
    return res


def bench_accuracy(study: Path) -> dict[str, Any]:
    import pandas as pd

    table = pd.read_csv(study / "study.csv")
    rows = {r["Model"]: r for _, r in table.iterrows()}
    full, norebal, l2 = (
        rows.get("classification + rebalancing"),
        rows.get("classification, no rebalancing"),
        rows.get("L2 regression"),
    )
    gray = rows["grayscale (ab = 0)"]
    checks = {}
    if full is not None:
        checks["rebalanced AuC: shipped recipe > grayscale"] = bool(
            full["AuC rebalanced"] > gray["AuC rebalanced"]
        )
        checks["colourfulness: shipped recipe > grayscale"] = bool(
            full["Colourfulness"] > gray["Colourfulness"]
        )
        if l2 is not None:
            checks["rebalanced AuC: shipped recipe > L2"] = bool(
                full["AuC rebalanced"] > l2["AuC rebalanced"]
            )
            checks["colourfulness: shipped recipe > L2"] = bool(full["Colourfulness"] > l2["Colourfulness"])
        if norebal is not None:
            checks["colourfulness: rebalancing > no rebalancing"] = bool(
                full["Colourfulness"] > norebal["Colourfulness"]
            )
    shipped = None
    try:
        from tinct.colorization.pretrained import ECCV16_COLORIZER

        card = ECCV16_COLORIZER.card()
        shipped = card.get("test_metrics")
    except Exception as err:  # reported, not fatal
        print(f"shipped colorizer card unavailable: {err}")
    _table(
        f"colorization ablation ({study}): held-out photos, full resolution",
        list(table.columns),
        [
            [r[c] if not (isinstance(r[c], float) and np.isnan(r[c])) else "-" for c in table.columns]
            for _, r in table.iterrows()
        ],
    )
    _table("targets", ["check", "met"], [[k, "yes" if v else "NO"] for k, v in checks.items()])
    return {"table": table.to_dict(orient="records"), "checks": checks, "shipped_card_test_metrics": shipped}


def _by_root(paths: list[Path], roots: list[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for root in roots:
        base = Path(root).resolve()
        out[base.name] = [p for p in paths if p.resolve().is_relative_to(base)]
    return out


def bench_default(splits: tuple[str, ...] = ("val", "test")) -> dict[str, Any]:
    """The default colorizer (SIGGRAPH17 recipe) vs the ECCV16 one it replaced vs grayscale, on the
    validation photos of the recipe (which chose the default) and, once, on its test photos; per folder."""
    from tinct.colorization.evaluation import evaluate_colorization
    from tinct.colorization.pretrained import DEFAULT_COLORIZER, ECCV16_COLORIZER
    from tinct.colorization.task import ColorizationDataModule
    from tinct.engine.config import load_config

    cfg = load_config(SIGGRAPH_RECIPE)
    every = ColorizationDataModule(cfg).resolve_splits()  # type: ignore[arg-type]
    models = {"default": DEFAULT_COLORIZER, "eccv16": ECCV16_COLORIZER}
    res: dict[str, Any] = {"default_model": DEFAULT_COLORIZER.name, "eccv16_model": ECCV16_COLORIZER.name}
    for split in splits:
        groups = {"all": every[split], **_by_root(every[split], cfg.data.roots)}  # type: ignore[attr-defined]
        part: dict[str, Any] = {}
        for group, photos in groups.items():
            if not photos:
                continue
            row: dict[str, Any] = {"n_photos": len(photos)}
            for name, weights in models.items():
                m = evaluate_colorization(str(weights.path()), photos, out=None, progress=False)
                row[name] = {
                    k: m["model"][k] for k in ("auc_raw", "auc_rebalanced", "psnr", "ssim", "colorfulness")
                }
                row["gray"] = {
                    k: m["gray"][k] for k in ("auc_raw", "auc_rebalanced", "psnr", "ssim", "colorfulness")
                }
            part[group] = row
        res[split] = part
    rows = []
    for split in splits:
        for group, row in res[split].items():
            for name in ("default", "eccv16", "gray"):
                r = row[name]
                rows.append(
                    [f"{split} / {group} ({row['n_photos']})", name, 100 * r["auc_raw"], 100 * r["auc_rebalanced"],
                     r["psnr"], r["ssim"], r["colorfulness"]]
                )  # fmt: skip
    _table(
        "default colorizer vs ECCV16 vs grayscale (full resolution; AuC in %, PSNR in dB)",
        ["photos", "model", "AuC raw", "AuC rebal.", "PSNR", "SSIM", "colourf."],
        rows,
    )
    checks = {}
    for split in splits:
        r = res[split]["all"]
        d, e, g = r["default"], r["eccv16"], r["gray"]
        checks[f"{split}: PSNR of the default >= gray - 0.5 dB"] = bool(d["psnr"] >= g["psnr"] - 0.5)
        checks[f"{split}: rebalanced AuC of the default >= gray + 3 points"] = bool(
            d["auc_rebalanced"] >= g["auc_rebalanced"] + 0.03
        )
        checks[f"{split}: default beats ECCV16 in PSNR"] = bool(d["psnr"] > e["psnr"])
        checks[f"{split}: default beats ECCV16 in rebalanced AuC"] = bool(
            d["auc_rebalanced"] > e["auc_rebalanced"]
        )
    _table("targets", ["check", "met"], [[k, "yes" if v else "NO"] for k, v in checks.items()])
    res["checks"] = checks
    return res


COCO128 = ROOT.parent / "shared" / "data" / "detection" / "coco128"


def bench_colorize_boxes(repeats: int) -> dict[str, Any]:
    """``tinct colorize --instances --boxes`` on a 640 x 480 COCO128 photo with the shipped fused model:
    per photo in the process (read, boxes, colorize, write image and panel) and the whole command."""
    import shutil

    from tinct.colorization.boxes import open_box_source
    from tinct.colorization.colorize import colorize_file, load_colorizer
    from tinct.colorization.photos import list_photos
    from tinct.colorization.pretrained import INSTANCE_COLORIZER

    source = open_box_source(COCO128)
    photo = None
    for p in list_photos(COCO128 / "images"):
        import cv2

        image = cv2.imread(str(p))
        if (
            image is not None
            and image.shape[:2] == (480, 640)
            and len(source.boxes_for(p, (480, 640)).select()) >= 3
        ):
            photo = p
            break
    if photo is None:
        raise SystemExit("no 640 x 480 COCO128 photo with 3 boxes found")
    n_boxes = len(source.boxes_for(photo, (480, 640)).select())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        labels = folder / "labels"
        labels.mkdir()
        shutil.copy(COCO128 / "labels" / f"{photo.stem}.txt", labels)
        colorizer, info = load_colorizer(str(INSTANCE_COLORIZER.path()))
        colorize_file(colorizer, photo, folder / "warm", boxes=source)
        per_file = []
        for _ in range(repeats):
            t = time.perf_counter()
            colorize_file(colorizer, photo, folder / "out", boxes=source)
            per_file.append(time.perf_counter() - t)
        cmd = [sys.executable, "-m", "tinct.cli.main", "colorize", str(photo), "--instances", "--boxes",
               str(labels), "--out", str(folder / "cli")]  # fmt: skip
        walls = _command_times(cmd, max(1, repeats // 2))
    res = {
        "model": info["source"],
        "photo": photo.name,
        "boxes": n_boxes,
        "size": "640x480",
        "per_photo_s": statistics.median(per_file),
        "command_wall_s": statistics.median(walls),
        "target_s": 2.0,
    }
    _table(
        f"tinct colorize --instances --boxes, one 640 x 480 photo with {n_boxes} boxes, "
        f"{torch.get_num_threads()} threads (median of {repeats})",
        ["step", "seconds", "target"],
        [
            [
                "read + boxes + fused colorize + write image and panel (per photo)",
                res["per_photo_s"],
                "<= 2 s",
            ],
            ["whole command (interpreter start, imports, model load)", res["command_wall_s"], ""],
        ],
    )
    return res


def bench_instance(study: Path) -> dict[str, Any]:
    """The instance study's table and per-photo margins (``tinct study instance``), with the targets."""
    import json

    import pandas as pd

    doc = json.loads((study / "study.json").read_text())
    table = pd.read_csv(study / "study.csv")
    _table(
        f"instance-aware colorization ({study}): held-out photos, full resolution",
        list(table.columns),
        [[r[c] if not (isinstance(r[c], float) and np.isnan(r[c])) else "-" for c in table.columns]
         for _, r in table.iterrows()],
    )  # fmt: skip
    margins = doc["margins"]
    rows = []
    for key in ("psnr_boxes", "auc_rebalanced_boxes", "psnr_whole", "auc_rebalanced_whole"):
        m = margins.get(key)
        if m:
            rows.append(
                [key, m["mean"], m["median"], m["improved"], f"[{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}]"]
            )
    _table(
        f"fused - full image (same budget), per photo with boxes ({margins.get('n_photos', 0)} photos)",
        ["margin", "mean", "median", "share improved", "bootstrap 95 % of the mean"],
        rows,
    )
    test = doc["test"]
    fused, full = test["fusion"], test["full_same_budget"]
    checks = {
        "inside boxes: fused PSNR > full PSNR": bool(
            fused["boxes"]["model"]["psnr"] > full["boxes"]["model"]["psnr"]
        ),
        "inside boxes: fused rebalanced AuC > full": bool(
            fused["boxes"]["model"]["auc_rebalanced"] > full["boxes"]["model"]["auc_rebalanced"]
        ),
        "whole image: fused PSNR >= full PSNR": bool(
            fused["whole"]["model"]["psnr"] >= full["whole"]["model"]["psnr"]
        ),
        "whole image: fused rebalanced AuC >= full": bool(
            fused["whole"]["model"]["auc_rebalanced"] >= full["whole"]["model"]["auc_rebalanced"]
        ),
    }
    _table("targets", ["check", "met"], [[k, "yes" if v else "NO"] for k, v in checks.items()])
    return {"table": table.to_dict(orient="records"), "margins": margins, "checks": checks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--model", help="colorizer to time (default: the shipped one)")
    p.add_argument("--study", type=Path, default=ROOT / "runs" / "study-colorization")
    p.add_argument("--instance-study", type=Path, default=ROOT / "runs" / "study-instance")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "colorization.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    result: dict[str, Any] = {}
    if "colorize" in args.only:
        result["colorize"] = bench_colorize(args.model, args.repeats)
    if "training" in args.only:
        result["training"] = bench_training(args.steps)
    if "accuracy" in args.only:
        if (args.study / "study.csv").is_file():
            result["accuracy"] = bench_accuracy(args.study)
        else:
            print(f"skipping accuracy: no {args.study}/study.csv (run tinct study colorization first)")
    if "default" in args.only:
        result["default"] = bench_default()
    if "instance" in args.only:
        if (args.instance_study / "study.json").is_file():
            result["instance"] = bench_instance(args.instance_study)
        else:
            print(f"skipping instance: no {args.instance_study}/study.json (run tinct study instance first)")
    if "colorize_boxes" in args.only:
        result["colorize_boxes"] = bench_colorize_boxes(args.repeats)
    write_results(args.out, result)


if __name__ == "__main__":
    main()
