"""Figures of the patch-colour task: predicted against true colour swatches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot_patch_swatches"]


def _srgb(lab: np.ndarray) -> np.ndarray:
    import torch

    from tinct.color.lab import lab_to_rgb

    return lab_to_rgb(torch.tensor(np.array(lab, dtype=np.float64)), dim=-1, clip=True).numpy()


def plot_patch_swatches(table: pd.DataFrame, path: str | os.PathLike[str], n: int = 24) -> Path:
    """Swatches of true (left half) and predicted (right half) colour, ``n`` samples from best to worst.

    ``table`` has ``L, a, b, pred_L, pred_a, pred_b, de00`` (and ``camera``); the samples are spread evenly
    over the error ranking, so the figure shows typical as well as the worst predictions.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.engine.plots import save_figure

    ranked = table.sort_values("de00").reset_index(drop=True)
    pick = np.unique(np.linspace(0, len(ranked) - 1, min(n, len(ranked))).round().astype(int))
    rows = ranked.iloc[pick]
    true = _srgb(rows[["L", "a", "b"]].to_numpy())
    pred = _srgb(rows[["pred_L", "pred_a", "pred_b"]].to_numpy())
    cols = 6
    nrow = int(np.ceil(len(rows) / cols))
    fig, axes = plt.subplots(nrow, cols, figsize=(cols * 1.6, nrow * 1.75), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (ax, (_, row)) in enumerate(zip(axes.ravel(), rows.iterrows(), strict=False)):
        swatch = np.zeros((20, 40, 3))
        swatch[:, :20] = true[k]
        swatch[:, 20:] = pred[k]
        ax.imshow(swatch, interpolation="nearest")
        camera = str(row.get("camera", ""))[:14]
        ax.set_title(f"ΔE00 {row['de00']:.2f}\n{camera}", fontsize=7)
    fig.suptitle("true (left) vs predicted (right), ranked by CIEDE2000", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
