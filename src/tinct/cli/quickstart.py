"""``tinct quickstart``: check the colour core on published values and train tiny models end to end.

Needs nothing but the installed package: data are generated (Mondrian scenes under random illuminants) or
ship with the dependencies (scikit-image's sample photos), reference values come from published tables.
Finishes in about a minute on a 2-core CPU and leaves complete run directories (config, checkpoints,
metrics, figures, colour-core checks) and the shipped colorizer's results on the sample photos.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from tinct.core.atomic import atomic_write_json

__all__ = ["colour_core_check", "quickstart"]

# Three pairs of Sharma, Wu & Dalal (2005), Table 1 (pairs 1, 14 and 25): L1 a1 b1 L2 a2 b2 dE00.
# Pair 14 has hues exactly 180 degrees apart, the formula's most fragile case.
_SHARMA_PAIRS = (
    (50.0, 2.6772, -79.7751, 50.0, 0.0, -82.7485, 2.0425),
    (50.0, -0.0010, 2.4900, 50.0, 0.0010, -2.4900, 4.8045),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
)


def colour_core_check(seed: int = 0) -> dict[str, Any]:
    """Run the colour core against published values and properties; every entry carries its tolerance."""
    from tinct.color.difference import delta_e_ciede2000
    from tinct.color.lab import lab_to_rgb, rgb_to_lab
    from tinct.color.quantize import NUM_BINS, rebalancing_weights, reference_prior, soft_encode

    pairs = torch.tensor(_SHARMA_PAIRS, dtype=torch.float64)
    de = delta_e_ciede2000(pairs[:, :3], pairs[:, 3:6], dim=-1)
    sharma_err = float((de - pairs[:, 6]).abs().max())

    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(4096, 3, generator=g, dtype=torch.float64)
    round_trip = float((lab_to_rgb(rgb_to_lab(rgb, dim=-1), dim=-1) - rgb).abs().max())

    lab = rgb_to_lab(rgb[:64], dim=-1).requires_grad_(True)
    delta_e_ciede2000(lab, lab.detach().clone(), dim=-1).sum().backward()
    grads_finite = bool(torch.isfinite(lab.grad).all())

    w = rebalancing_weights(reference_prior(dtype=torch.float64), 0.5)
    ab = rgb_to_lab(rgb.T.reshape(3, 64, 64).float())[1:]
    weights, _ = soft_encode(ab, k=5, sigma=5.0)
    checks = {
        "ciede2000_sharma_max_abs_error": {"value": sharma_err, "tolerance": 1e-4, "ok": sharma_err < 1e-4},
        "srgb_lab_round_trip_max_abs_error": {
            "value": round_trip,
            "tolerance": 1e-9,
            "ok": round_trip < 1e-9,
        },
        "ciede2000_gradient_finite_at_identical_inputs": {"value": grads_finite, "ok": grads_finite},
        "ab_bins": {"value": NUM_BINS, "ok": NUM_BINS == 313},
        "rebalancing_weight_range": {
            "value": [float(w.min()), float(w.max())],
            "expected": [0.097, 6.17],
            "ok": abs(float(w.min()) - 0.097) < 0.005 and abs(float(w.max()) - 6.17) < 0.01,
        },
        "soft_encoding_weights_sum_to_one": {
            "value": float((weights.sum(0) - 1).abs().max()),
            "ok": float((weights.sum(0) - 1).abs().max()) < 1e-5,
        },
    }
    return checks


def _gray_world_errors(dataset: Any) -> torch.Tensor:
    from tinct.color.illuminant import angular_error

    errs = []
    for i in range(len(dataset)):
        item = dataset[i]
        image = item["image"].masked_fill(item["mask"], 0.0)
        errs.append(angular_error(image.mean(dim=(-2, -1)), item["illuminant"], dim=-1))
    return torch.stack(errs)


def _plot_prior(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.color.lab import lab_to_rgb
    from tinct.color.quantize import ab_bins, reference_prior

    bins = ab_bins(dtype=torch.float64)
    prior = reference_prior(dtype=torch.float64)
    lab = torch.cat([torch.full((bins.shape[0], 1), 60.0, dtype=torch.float64), bins], dim=1)
    colours = lab_to_rgb(lab, dim=-1, clip=True).numpy()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    axes[0].scatter(bins[:, 0], bins[:, 1], c=colours, marker="s", s=34)
    axes[0].set_title("the 313 in-gamut ab bins (shown at L* = 60)")
    sc = axes[1].scatter(
        bins[:, 0], bins[:, 1], c=torch.log10(prior).numpy(), marker="s", s=34, cmap="viridis"
    )
    axes[1].set_title("ImageNet prior (Zhang et al. 2016)")
    fig.colorbar(sc, ax=axes[1], label="log10 p")
    for ax in axes:
        ax.set_xlabel("a*")
        ax.set_ylabel("b*")
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quickstart(out: str | os.PathLike[str] = "runs", epochs: int = 4, seed: int = 0) -> dict[str, Any]:
    """Check the colour core, train a tiny illuminant estimator on synthetic Mondrians, compare with Gray World.

    Returns the training metrics plus ``colour_checks`` and ``gray_world`` statistics; everything is also
    written to the run directory.
    """
    from rich.console import Console
    from rich.table import Table

    from tinct.constancy.task import IlluminantConfig, IlluminantDataConfig, IlluminantModelConfig
    from tinct.engine.statistics import STAT_NAMES, error_statistics
    from tinct.engine.train import train

    console = Console()
    t0 = time.perf_counter()
    console.print("[bold]tinct quickstart[/bold] 1/4: colour core against published values")
    checks = colour_core_check(seed)
    for name, c in checks.items():
        console.print(f"  {'ok ' if c['ok'] else 'FAIL'} {name}: {c['value']}")
    if not all(c["ok"] for c in checks.values()):
        raise RuntimeError("colour core check failed; see above")

    console.print("[bold]tinct quickstart[/bold] 2/4: tiny illuminant estimator on synthetic Mondrian scenes")
    cfg = IlluminantConfig(
        name="quickstart",
        output_dir=str(out),
        seed=seed,
        data=IlluminantDataConfig(n_train=1536, n_val=256, n_test=256, size=32, batch_size=64),
        model=IlluminantModelConfig(backbone="small_cnn", width=12, depth=3, hidden=32),
    )
    cfg.optim.lr = 3e-3
    cfg.trainer.max_epochs = epochs
    metrics = train(cfg)
    run = Path(metrics["run_dir"])

    from tinct.constancy.mondrian import MondrianDataset

    test_set = MondrianDataset(
        cfg.data.n_test, cfg.data.size, seed=3 * seed + 2, cct_range=cfg.data.cct_range
    )
    gray = error_statistics(_gray_world_errors(test_set))
    atomic_write_json(run / "colour_check.json", checks)
    atomic_write_json(run / "baseline_gray_world.json", gray)
    _plot_prior(run / "figures" / "ab_bins_prior.png")

    table = Table(title="angular error (degrees) on the synthetic test split")
    table.add_column("method")
    for s in STAT_NAMES:
        table.add_column(s, justify="right")
    table.add_row("Gray World", *(f"{gray[s]:.2f}" for s in STAT_NAMES))
    table.add_row(
        f"small CNN ({epochs} epochs)",
        *(f"{metrics.get(f'test/angular_{s}', float('nan')):.2f}" for s in STAT_NAMES),
    )
    console.print(table)

    console.print("[bold]tinct quickstart[/bold] 3/4: colorization of scikit-image's sample photos")
    colorization = quickstart_colorization(Path(out), epochs=min(epochs, 2), seed=seed)
    table = Table(title="colorization of the sample photos (full resolution)")
    table.add_column("model")
    for key in ("auc_raw", "auc_rebalanced", "psnr", "colorfulness"):
        table.add_column(key, justify="right")
    for label, m in (
        ("shipped colorizer", colorization["shipped"]),
        ("grayscale (ab = 0)", colorization["shipped"]["gray"]),
    ):
        table.add_row(label, *(f"{m[k]:.3f}" for k in ("auc_raw", "auc_rebalanced", "psnr", "colorfulness")))
    console.print(table)

    console.print("[bold]tinct quickstart[/bold] 4/4: skin-patch colour from synthetic photos + EXIF")
    patch = quickstart_patch(Path(out), epochs=epochs, seed=seed)
    table = Table(title="patch colour: CIEDE2000 on held-out shades (tiny model, few photos)")
    for key in ("model", "mean", "median", "p90", "share < 1"):
        table.add_column(key, justify="right" if key != "model" else "left")
    for label, m in (
        ("predict the training mean", patch["mean_baseline"]),
        ("cross-attention", patch["test"]),
    ):
        table.add_row(
            label, *(f"{m[k]:.2f}" for k in ("de00_mean", "de00_median", "de00_p90", "share_below_1"))
        )
    console.print(table)
    console.print(f"  adaptive crop: IoU with the true patch box median {patch['iou_median']:.3f}")
    print(
        f"tinct quickstart: done in {time.perf_counter() - t0:.0f} s; run directories {run}, "
        f"{colorization['tiny']['run_dir']} and {patch['run_dir']}; colorized photos in {colorization['out']}",
        flush=True,
    )
    return {
        **metrics,
        "colour_checks": checks,
        "gray_world": gray,
        "colorization": colorization,
        "patch": patch,
    }


def quickstart_colorization(out: Path, epochs: int = 2, seed: int = 0) -> dict[str, Any]:
    """Train a tiny colorizer on scikit-image's sample photos (to show the training loop end to end), then
    colorize and score those photos with the colorizer shipped with tinct beside the grayscale baseline."""
    from tinct.colorization.colorize import colorize, evaluate_colorization
    from tinct.colorization.photos import skimage_photos
    from tinct.colorization.task import ColorizationConfig, ColorizationDataConfig, ColorizationModelConfig
    from tinct.engine.train import train

    cfg = ColorizationConfig(
        name="quickstart-colorization",
        output_dir=str(out),
        seed=seed,
        data=ColorizationDataConfig(kind="skimage", resize=128, crop=64, eval_size=96, samples_per_epoch=64),
        model=ColorizationModelConfig(width=0.125, infer_size=128),
    )
    cfg.trainer.max_epochs = epochs
    tiny = train(cfg)
    folder = out / "quickstart-colorized"
    photos = skimage_photos()
    colorize(photos, folder, progress=False)
    shipped = evaluate_colorization(None, photos, folder / "colorization_metrics.json", progress=False)
    return {"tiny": tiny, "shipped": shipped, "out": str(folder)}


def quickstart_patch(out: Path, epochs: int = 4, seed: int = 0) -> dict[str, Any]:
    """Generate a few synthetic skin-patch photos (EXIF included), check the adaptive crop against the true
    boxes, and train a tiny cross-attention model on held-out shades, beside the predict-the-mean baseline."""
    import json

    import numpy as np
    import pandas as pd

    from tinct.color.difference import delta_e_ciede2000
    from tinct.engine.train import train
    from tinct.patch.crop import Box
    from tinct.patch.metrics import de00_statistics
    from tinct.patch.task import PatchConfig, PatchDataConfig, PatchModelConfig

    cfg = PatchConfig(
        name="quickstart-patch",
        output_dir=str(out),
        seed=seed,
        data=PatchDataConfig(synth_n=200, photos_per_shade=2, context=16, size=48, batch_size=32),
        model=PatchModelConfig(fusion="cross_attention", width=12, depth=3, hidden=64, mean_features=True),
    )
    cfg.optim.lr = 3e-3
    cfg.trainer.max_epochs = max(2, epochs)
    metrics = train(cfg)
    run = Path(metrics["run_dir"])
    labels = pd.read_csv(Path(cfg.data.synthetic_root(str(out))) / "labels.csv")
    boxes = json.loads(next((out / "cache").glob("patch-boxes-*.json")).read_text())
    ious = [
        Box(*boxes[r.image]).iou(Box(r.patch_x0, r.patch_y0, r.patch_x1, r.patch_y1))
        if boxes[r.image]
        else 0.0
        for r in labels.itertuples()
    ]
    predictions = pd.read_csv(run / "patch_predictions.csv")
    train_mean = labels[~labels["image"].isin(predictions["image"])][["L", "a", "b"]].mean().to_numpy()
    truth = torch.tensor(predictions[["L", "a", "b"]].to_numpy())
    baseline = delta_e_ciede2000(torch.tensor(train_mean).expand_as(truth), truth, dim=-1).numpy()
    test = json.loads((run / "patch_metrics.json").read_text())
    return {
        "run_dir": str(run), "test": test, "mean_baseline": de00_statistics(baseline),
        "iou_median": float(np.median(ious)), "metrics": metrics,
    }  # fmt: skip
