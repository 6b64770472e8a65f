"""``tinct study instance``: does instance-aware fusion (Su et al. 2020) colour objects better?

The paper's three stages on photos with object boxes (the stage configs
``configs/colorization/instance_{full,instance,fusion}.yaml``, by default COCO128 with its YOLO boxes), and
the comparison the paper's claim needs, every model scored on the same held-out photos, on the whole image
and inside the boxes (:func:`tinct.colorization.evaluation.evaluate_colorization`):

- ``full``: stage 1, the full-image network fine-tuned on the photos (from ``model.init`` of the full config);
- ``full_same_budget``: the same, trained for the epochs of stages 1 + 3, so the full-image baseline has
  had as many whole-photo training steps as the fused model (the fair comparison);
- ``instance``: stage 2, the instance network on the boxes' crops (not a colorizer of whole photos);
- ``fusion``: stage 3, full + instance networks fused at 13 stages, initialised from stages 1 and 2;
- the initial full-image network (the shipped SIGGRAPH17 colorizer by default), the shipped ECCV16 colorizer
  and the grayscale baseline.

Each run's checkpoint is chosen by its validation rebalanced AuC; the test photos choose nothing. The margins
of the fused model over ``full_same_budget`` inside the boxes are reported per photo (mean, median, the
share of photos improved, and a bootstrap 95 % interval of the mean). Output::

    OUT/full, OUT/full_same_budget, OUT/instance, OUT/fusion    run folders (resumed; finished ones kept)
    OUT/<model>/colorization_metrics.json                      test metrics, whole image and boxes
    OUT/study.csv, study.md, study.json
    OUT/figures/metrics.png     the metrics by model, whole image and inside boxes
    OUT/figures/examples.png    grayscale / full / fused / original on test photos, boxes drawn
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.exceptions import ConfigError
from tinct.engine.experiments import ensure_trained, find_shipped, load_base_config, with_updates
from tinct.engine.run_dir import RunDir

__all__ = ["METRICS", "STAGE_CONFIGS", "study_instance"]

STAGE_CONFIGS = {
    "full": "configs/colorization/instance_full.yaml",
    "instance": "configs/colorization/instance_instance.yaml",
    "fusion": "configs/colorization/instance_fusion.yaml",
}
#: (key in colorization_metrics.json, column header, scale).
METRICS = (
    ("auc_raw", "AuC raw", 100.0),
    ("auc_rebalanced", "AuC rebalanced", 100.0),
    ("psnr", "PSNR", 1.0),
    ("ssim", "SSIM", 1.0),
    ("colorfulness", "Colourfulness", 1.0),
)
_NAMES = {
    "eccv16": "ECCV16 (shipped, photos)",
    "init": "SIGGRAPH17 automatic (stage 1's init)",
    "full": "full image (stage 1)",
    "full_same_budget": "full image, same budget as fused",
    "fusion": "instance-aware fusion",
    "gray": "grayscale (ab = 0)",
}


def study_instance(
    out: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    boxes: str | os.PathLike[str] | None = None,
    init: str | os.PathLike[str] | None = None,
    epochs: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    examples: int = 4,
    seed_bootstrap: int = 0,
) -> pd.DataFrame:
    """Train (or resume) the stages and the same-budget baseline, score everything, write table and figures.

    Args:
        out: output folder; an existing one is resumed (finished runs are not retrained).
        data: a folder of photos with boxes replacing the stage configs' ``data.root``.
        boxes: a box source replacing ``data.boxes`` (default: ``<data>/labels``).
        init: weights or run initialising stage 1 (default: the full config's ``model.init``).
        epochs: epochs of the three stages (default: the configs').
        overrides: ``key.path=value`` changes applied to every stage's config (as ``--set``).
        progress: print progress lines and bars.
        examples: test photos in ``figures/examples.png``.
        seed_bootstrap: seed of the bootstrap of the margins.

    Returns:
        The table: one row per model and region (``whole`` / ``boxes``), the columns of :data:`METRICS`.
    """
    from tinct.colorization.evaluation import evaluate_colorization
    from tinct.colorization.instance_data import InstanceDataModule
    from tinct.colorization.pretrained import ECCV16_COLORIZER

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = list(overrides)
    if data is not None:
        extra += [f"data.root={Path(data).resolve()}"]
    if boxes is not None:
        extra += [f"data.boxes={Path(boxes).resolve()}"]
    cfgs = {stage: load_base_config(find_shipped(path), extra) for stage, path in STAGE_CONFIGS.items()}
    if epochs is not None:
        if len(epochs) != 3 or min(epochs) < 1:
            raise ConfigError(f"epochs: three positive numbers (full, instance, fusion), got {list(epochs)}")
        cfgs = {
            s: with_updates(c, {"trainer.max_epochs": e})
            for (s, c), e in zip(cfgs.items(), epochs, strict=True)
        }
    if init is not None:
        cfgs["full"] = with_updates(cfgs["full"], {"model.init": str(Path(init).resolve())})
    start = cfgs["full"].model.init  # type: ignore[attr-defined]
    if not start:
        raise ConfigError("stage 1 needs model.init (the SIGGRAPH17 colorizer it starts from): pass --init")
    e_full, e_fusion = cfgs["full"].trainer.max_epochs, cfgs["fusion"].trainer.max_epochs
    runs = {
        "full": cfgs["full"],
        "full_same_budget": with_updates(
            cfgs["full"],
            {"name": f"{cfgs['full'].name}-same-budget", "trainer.max_epochs": e_full + e_fusion},
        ),
        "instance": with_updates(cfgs["instance"], {"model.init": str((out / "full").resolve())}),
        "fusion": with_updates(
            cfgs["fusion"],
            {
                "model.init": str((out / "full").resolve()),
                "model.instance_init": str((out / "instance").resolve()),
            },
        ),
    }
    for name, cfg in runs.items():
        if ensure_trained(cfg, out / name, quiet=not progress) == "done" and progress:
            print(f"{name}: trained before", flush=True)

    data_module = InstanceDataModule(runs["fusion"])  # type: ignore[arg-type]
    test_photos = data_module.resolve_splits()["test"]
    box_spec = data_module.box_source()
    models: dict[str, str] = {
        "eccv16": str(ECCV16_COLORIZER.path()),
        "init": str(start),
        "full": str(out / "full"),
        "full_same_budget": str(out / "full_same_budget"),
        "fusion": str(out / "fusion"),
    }
    results: dict[str, Any] = {}
    for name, model in models.items():
        folder = out / name if (out / name).is_dir() else out / "reference" / name
        folder.mkdir(parents=True, exist_ok=True)
        metrics_file = folder / "colorization_metrics.json"
        if metrics_file.is_file():
            results[name] = json.loads(metrics_file.read_text())
        else:
            if progress:
                print(f"scoring {name} on {len(test_photos)} test photos", flush=True)
            results[name] = evaluate_colorization(
                model, test_photos, out=metrics_file, boxes=box_spec, progress=progress, per_image=True
            )
    rows = []
    for region in ("whole", "boxes"):
        for name in [*models, "gray"]:
            res = results["fusion" if name == "gray" else name][region]
            values = res["gray" if name == "gray" else "model"]
            rows.append([_NAMES[name], region, *(values.get(k, np.nan) * s for k, _, s in METRICS)])
    table = pd.DataFrame(rows, columns=["Model", "Region", *(h for _, h, _ in METRICS)])
    margins = _margins(results["fusion"], results["full_same_budget"], seed_bootstrap)
    training = {name: RunDir(out / name).metrics() for name in runs}
    atomic_write_text(out / "study.csv", table.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(out / "study.md", _markdown(table, len(test_photos), margins, training))
    atomic_write_json(
        out / "study.json",
        {
            "configs": {k: v.model_dump(mode="json") for k, v in runs.items()},
            "models": models,
            "test_photos": [str(p) for p in test_photos],
            "training": training,
            "test": results,
            "margins": margins,
        },
    )
    _figures(out, table, test_photos[:examples], box_spec)
    return table


def _margins(fused: dict[str, Any], full: dict[str, Any], seed: int) -> dict[str, Any]:
    """Per-photo differences fused - full inside the boxes (PSNR in dB, rebalanced AuC in points)."""
    a = {p["image"]: p for p in fused.get("per_image", []) if p.get("boxes")}
    b = {p["image"]: p for p in full.get("per_image", []) if p.get("boxes")}
    common = sorted(set(a) & set(b))
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"n_photos": len(common)}
    for key, scale in (("psnr", 1.0), ("auc_rebalanced", 100.0), ("ssim", 1.0)):
        for region in ("boxes", "whole"):
            diff = np.array(
                [(a[p][region][key] - b[p][region][key]) * scale for p in common],
                dtype=float,
            )
            diff = diff[np.isfinite(diff)]
            if not len(diff):
                continue
            boot = rng.choice(diff, size=(2000, len(diff))).mean(1)
            out[f"{key}_{region}"] = {
                "mean": float(diff.mean()),
                "median": float(np.median(diff)),
                "improved": float((diff > 0).mean()),
                "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
            }
    return out


def _markdown(table: pd.DataFrame, n_test: int, margins: dict[str, Any], training: dict[str, Any]) -> str:
    lines = [
        f"Instance-aware colorization on {n_test} held-out photos (full resolution). AuC in %, PSNR in dB."
    ]
    for region, title in (("whole", "Whole image"), ("boxes", "Inside the boxes")):
        part = table[table["Region"] == region]
        lines += ["", f"{title}:", "", "| Model | " + " | ".join(h for _, h, _ in METRICS) + " |"]
        lines.append("|---|" + "---:|" * len(METRICS))
        for _, row in part.iterrows():
            cells = [
                "-" if pd.isna(row[h]) else f"{row[h]:.{3 if h == 'SSIM' else 2}f}" for _, h, _ in METRICS
            ]
            lines.append(f"| {row['Model']} | " + " | ".join(cells) + " |")
    if margins.get("n_photos"):
        lines += [
            "",
            f"Fused minus full image (same budget), per photo with boxes ({margins['n_photos']} photos):",
            "",
        ]
        lines += [
            "| Margin | mean | median | photos improved | bootstrap 95 % of the mean |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, label in (
            ("psnr_boxes", "PSNR inside boxes (dB)"),
            ("auc_rebalanced_boxes", "AuC rebalanced inside boxes (points)"),
            ("psnr_whole", "PSNR whole image (dB)"),
            ("auc_rebalanced_whole", "AuC rebalanced whole image (points)"),
        ):
            m = margins.get(key)
            if m:
                lines.append(
                    f"| {label} | {m['mean']:+.2f} | {m['median']:+.2f} | {100 * m['improved']:.0f} % | "
                    f"[{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}] |"
                )
    chosen = []
    for name, trained in training.items():
        val, best = trained.get("val/auc_rebalanced"), trained.get("best_epoch")
        if val is not None:
            epoch = int(best) + 1 if best is not None else "?"
            chosen.append(
                f"{name}: epoch {epoch} of {int(trained.get('epochs', 0))}, {100.0 * float(val):.2f}"
            )
    if chosen:
        lines += [
            "",
            "Checkpoints chosen by validation rebalanced AuC (whole image): " + "; ".join(chosen) + ".",
        ]
    return "\n".join(lines) + "\n"


def _figures(out: Path, table: pd.DataFrame, photos: Sequence[Path], box_spec: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from tinct.color.lab import rgb_to_lab
    from tinct.colorization.boxes import as_box_source
    from tinct.colorization.colorize import _read, load_colorizer
    from tinct.colorization.metrics import grayscale_from_lab

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shown = [h for _, h, _ in METRICS]
    fig, axes = plt.subplots(2, len(shown), figsize=(3.2 * len(shown), 6.4), squeeze=False)
    for r, region in enumerate(("whole", "boxes")):
        part = table[table["Region"] == region]
        colours = [f"C{i}" for i in range(len(part) - 1)] + ["0.6"]
        for c, col in enumerate(shown):
            ax = axes[r, c]
            ax.bar(range(len(part)), part[col], color=colours)
            ax.set_xticks(range(len(part)), [str(i + 1) for i in range(len(part))], fontsize=8)
            ax.set_title(f"{col} ({'whole image' if region == 'whole' else 'inside boxes'})", fontsize=9)
            finite = part[col][np.isfinite(part[col])]
            if len(finite) and col != "Colourfulness":
                span = float(finite.max() - finite.min()) or 1.0
                ax.set_ylim(float(finite.min()) - 0.3 * span, float(finite.max()) + 0.2 * span)
    legend = "  ".join(f"{i + 1}: {m}" for i, m in enumerate(table[table["Region"] == "whole"]["Model"]))
    fig.suptitle("instance-aware colorization, held-out photos\n" + legend, fontsize=8)
    fig.tight_layout()
    fig.savefig(figures / "metrics.png", dpi=110)
    plt.close(fig)

    if not photos:
        return
    source = as_box_source(box_spec)
    full, _ = load_colorizer(out / "full_same_budget")
    fused, _ = load_colorizer(out / "fusion")
    fig, axes = plt.subplots(len(photos), 4, figsize=(11, 2.3 * len(photos)), squeeze=False)
    for r, path in enumerate(photos):
        rgb, _ = _read(path)
        h, w = rgb.shape[-2:]
        found = source.boxes_for(path, (h, w)).select() if source is not None else None
        xyxy = found.xyxy if found is not None else np.zeros((0, 4))
        lab = rgb_to_lab(rgb[None])
        images = [
            grayscale_from_lab(lab)[0],
            full(rgb[None])[0][0],
            _fused_rgb(fused, lab, xyxy),
            rgb,
        ]
        for c, (image, title) in enumerate(
            zip(images, ["grayscale", "full image", "instance-aware fusion", "original"], strict=True)
        ):
            ax = axes[r, c]
            ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
            for x0, y0, x1, y1 in xyxy:
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow", lw=0.8))
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(figures / "examples.png", dpi=100)
    plt.close(fig)


def _fused_rgb(colorizer: Any, lab: Any, xyxy: np.ndarray) -> Any:
    import torch

    from tinct.color.lab import lab_to_rgb

    with torch.no_grad():
        boxes = torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4)
        ab = colorizer.predict_ab(lab[:, :1], boxes=boxes)
    return lab_to_rgb(torch.cat([lab[:, :1], ab], 1), clip=True)[0]
