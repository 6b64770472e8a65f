"""``tinct quickstart``: check the colour core on published values and train tiny models end to end.

Needs nothing but the installed package: data are generated (Mondrian scenes under random illuminants) or
ship with the dependencies (scikit-image's sample photos); the colour core is checked against references
that do not come from tinct (a published table, colour-science, brute-force recomputations of the paper's
definitions, the release's formulas), each named in its entry.
Finishes in about a minute on a 2-core CPU and leaves complete run directories (config, checkpoints,
metrics, figures, colour-core checks) and the shipped colorizer's results on the sample photos.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
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


def _srgb_to_lab_colour_science(rgb: np.ndarray) -> np.ndarray:
    import colour

    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb))


def _srgb_gamut_bins(steps: int = 65) -> set[tuple[int, int]]:
    """The points of the 10-unit ab grid that some sRGB colour rounds to (colour-science's conversion of a
    ``steps``^3 sample of the RGB cube): the bins the sRGB gamut reaches, recomputed without tinct."""
    g = np.linspace(0.0, 1.0, steps)
    rgb = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    ab = np.round(_srgb_to_lab_colour_science(rgb)[:, 1:] / 10.0).astype(np.int64) * 10
    return set(map(tuple, np.unique(ab, axis=0).tolist()))


def _release_bins() -> np.ndarray:
    """The release's ``pts_in_hull.npy`` as shipped in tinct's resources, read without tinct's code."""
    import io
    from importlib import resources

    data = (resources.files("tinct.color") / "resources" / "pts_in_hull.npy").read_bytes()
    return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float64)


def _soft_encode_brute_force(ab: np.ndarray, k: int, sigma: float) -> np.ndarray:
    """Dense soft encoding by the paper's definition (section 2.1), in numpy: distances to every bin of the
    release, the k nearest, Gaussian weights exp(-d^2 / 2 sigma^2) normalised over them. (n, 2) -> (n, 313)."""
    bins = _release_bins()
    d2 = ((ab[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
    w = np.exp(-np.take_along_axis(d2, nearest, axis=1) / (2.0 * sigma**2))
    dense = np.zeros_like(d2)
    np.put_along_axis(dense, nearest, w / w.sum(1, keepdims=True), axis=1)
    return dense


def _prior_factor_release(prior: np.ndarray, gamma: float = 0.5, alpha: float = 1.0) -> np.ndarray:
    """The class-rebalancing weights as the release computes them (richzhang/colorization,
    ``caffe_traininglayers.py``, class ``PriorFactor``), transcribed to numpy."""
    uni = (prior != 0).astype(np.float64)
    uni /= uni.sum()
    factor = ((1.0 - gamma) * prior + gamma * uni) ** -alpha
    return factor / np.sum(prior * factor)


def _check(value: Any, ok: bool, source: str, tolerance: float | None = None, **extra: Any) -> dict[str, Any]:
    entry = {"value": value, "ok": bool(ok), "source": source, **extra}
    if tolerance is not None:
        entry["tolerance"] = tolerance
    return entry


def colour_core_check(seed: int = 0) -> dict[str, Any]:
    """Check the colour core against references computed or published outside tinct.

    Every entry has ``value``, ``ok`` and ``source`` (what the value is compared with); entries with a
    numeric comparison carry their ``tolerance``. Each compares a value tinct computes with one that does
    not come from tinct's own code or numbers, except the two named as properties.
    """
    from tinct.color.difference import delta_e_ciede2000
    from tinct.color.lab import lab_to_rgb, rgb_to_lab
    from tinct.color.quantize import ab_bins, rebalancing_weights, reference_prior, soft_encode_dense

    checks: dict[str, dict[str, Any]] = {}
    pairs = torch.tensor(_SHARMA_PAIRS, dtype=torch.float64)
    de = delta_e_ciede2000(pairs[:, :3], pairs[:, 3:6], dim=-1)
    err = float((de - pairs[:, 6]).abs().max())
    checks["ciede2000_vs_sharma_2005_max_abs_error"] = _check(
        err,
        err < 1e-4,
        "Sharma, Wu & Dalal (2005), Table 1, pairs 1, 14 and 25 (published to 4 decimals)",
        1e-4,
    )

    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(4096, 3, generator=g, dtype=torch.float64)
    lab = rgb_to_lab(rgb, dim=-1)
    err = float(np.abs(lab.numpy() - _srgb_to_lab_colour_science(rgb.numpy())).max())
    checks["srgb_to_lab_vs_colour_science_max_abs_error"] = _check(
        err, err < 1e-6, "colour-science sRGB_to_XYZ + XYZ_to_Lab (D65) on 4096 random sRGB colours", 1e-6
    )

    err = float((lab_to_rgb(lab, dim=-1) - rgb).abs().max())
    checks["srgb_lab_round_trip_max_abs_error"] = _check(
        err, err < 1e-9, "property: lab_to_rgb(rgb_to_lab(x)) = x", 1e-9
    )

    grad_lab = lab[:64].clone().requires_grad_(True)
    delta_e_ciede2000(grad_lab, grad_lab.detach().clone(), dim=-1).sum().backward()
    finite = bool(torch.isfinite(grad_lab.grad).all())  # type: ignore[arg-type]
    checks["ciede2000_gradient_finite_at_identical_inputs"] = _check(
        finite, finite, "property: the gradient at a = b exists (0) and must be finite"
    )

    bins = ab_bins(dtype=torch.float64).numpy()
    tinct_bins = set(map(tuple, bins.astype(np.int64).tolist()))
    srgb = _srgb_gamut_bins()
    uncovered = sorted(srgb - tinct_bins)
    on_grid = bool((bins % 10 == 0).all()) and len(tinct_bins) == len(bins)
    checks["ab_bins_cover_the_srgb_gamut"] = _check(
        {
            "tinct_bins": len(bins),
            "srgb_bins_recomputed": len(srgb),
            "srgb_bins_not_in_tinct": len(uncovered),
            "tinct_bins_beyond_srgb": len(tinct_bins - srgb),
        },
        on_grid and not uncovered,
        "recomputed with colour-science: the 10-unit ab grid points that some sRGB colour (65^3 sample of the "
        "cube) rounds to; all must be among tinct's distinct on-grid bins. The release's 313 reach beyond "
        "sRGB, so their number itself is not recomputable here",
        examples_not_in_tinct=uncovered[:5],
    )

    ab = np.concatenate([lab[:, 1:].numpy(), rgb[:, :2].numpy() * 240.0 - 120.0])
    ours = soft_encode_dense(torch.from_numpy(ab), k=5, sigma=5.0, dim=-1).numpy()
    err = float(np.abs(ours - _soft_encode_brute_force(ab, 5, 5.0)).max())
    checks["soft_encoding_vs_brute_force_max_abs_error"] = _check(
        err,
        err < 1e-9,
        "numpy brute force of the paper's definition (section 2.1: 5 nearest of all 313 bins, Gaussian "
        "sigma = 5) on 8192 ab values",
        1e-9,
    )

    prior = reference_prior(dtype=torch.float64)
    w = rebalancing_weights(prior, 0.5)
    expected = _prior_factor_release(prior.numpy(), gamma=0.5)
    err = float(np.abs(w.numpy() / expected - 1.0).max())
    checks["rebalancing_weights_vs_release_formula_max_rel_error"] = _check(
        err,
        err < 1e-9,
        "the release's PriorFactor (caffe_traininglayers.py, gamma = 0.5, alpha = 1) applied to its "
        "prior_probs.npy, transcribed to numpy",
        1e-9,
        weight_range=[float(w.min()), float(w.max())],
    )
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
    axes[0].set_title("the release's 313 ab bins (shown at L* = 60)")
    sc = axes[1].scatter(
        bins[:, 0], bins[:, 1], c=torch.log10(prior).numpy(), marker="s", s=34, cmap="viridis"
    )
    axes[1].set_title("reference prior (release's prior_probs.npy)")
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
    console.print("[bold]tinct quickstart[/bold] 1/4: colour core against independent references")
    checks = colour_core_check(seed)
    for name, c in checks.items():
        console.print(f"  {'ok ' if c['ok'] else 'FAIL'} {name}: {c['value']}  [dim]({c['source']})[/dim]")
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
