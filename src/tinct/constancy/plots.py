"""Figures of colour-constancy evaluations: error CDFs and per-fold training / cross-validation curves.

Both take plain inputs (arrays of angular errors, paths of ``metrics.csv`` files), so cross-validation,
the constancy study and ad-hoc notebooks draw the same figures. matplotlib runs on the Agg backend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plot_error_cdf", "plot_fold_curves"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Any) -> Path:
    from tinct.engine.plots import save_figure

    return save_figure(fig, out, dpi=110)


def plot_error_cdf(
    errors: Mapping[str, Sequence[float] | np.ndarray],
    out: str | os.PathLike[str],
    title: str = "",
    quantile: float = 0.98,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Empirical cumulative distribution of angular errors, one curve per method; returns the PNG path.

    The legend gives each method's mean and median. The x axis ends at the ``quantile`` of the pooled errors
    (a few wild failures would otherwise squeeze every curve against the y axis).

    Args:
        errors: method name -> per-image angular errors in degrees, domain [0, 180].
        out: PNG file to write (atomically; parent folders are created).
        title: figure title.
        quantile: upper end of the x axis, as a quantile of all errors, in (0, 1].
        styles: method name -> matplotlib line keywords (``color``, ``ls`` ...), for methods that should
            read as a family (same colour per training regime, one line style per input space).

    Raises:
        ValueError: no method has any error.
    """
    curves = {k: np.sort(np.asarray(v, dtype=np.float64).ravel()) for k, v in errors.items()}
    curves = {k: v for k, v in curves.items() if v.size}
    if not curves:
        raise ValueError("plot_error_cdf: no errors to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for name, e in curves.items():
        y = np.arange(1, e.size + 1) / e.size
        ax.step(
            np.concatenate([[0.0], e]),
            np.concatenate([[0.0], y]),
            where="post",
            label=f"{name} (mean {e.mean():.2f}, median {np.median(e):.2f})",
            **dict((styles or {}).get(name, {})),
        )
    pooled = np.concatenate(list(curves.values()))
    right = float(np.quantile(pooled, quantile)) if quantile < 1 else float(pooled.max())
    ax.set_xlim(0, max(right, 1e-3) * 1.05)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("angular error (degrees)")
    ax.set_ylabel("fraction of images with error <= x")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out)


def _curve(df: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    for key in keys:
        if key in df and df[key].notna().any():
            ok = df[key].notna()
            return df.loc[ok, "epoch"].to_numpy() + 1, df.loc[ok, key].to_numpy()
    return None


def plot_fold_curves(
    runs: Mapping[str, Sequence[str | os.PathLike[str]]],
    out: str | os.PathLike[str],
    title: str = "",
    train_keys: Sequence[str] = ("train/angular_mean", "train/loss"),
    val_keys: Sequence[str] = ("val/angular_mean",),
    val_label: str = "held-out fold",
) -> Path | None:
    """Training (dashed) and cross-validation (solid) curves of every fold; one panel per group of runs.

    In k-fold cross-validation each fold's validation set is its held-out fold, so the solid curves show
    the held-out error by epoch (drawn, never used to pick a checkpoint). The training curve is the first
    of ``train_keys`` present (for the illuminant task ``train/loss`` is the mean angular error of the
    training batches).

    Args:
        runs: panel title (a variant, or the experiment) -> the ``metrics.csv`` of each of its folds.
        out: PNG file to write (atomically).
        title: figure title.
        train_keys, val_keys: metric columns tried in order for the two curves.
        val_label: legend of the solid curves (``"validation split"`` for a hold-out run).

    Returns:
        The PNG path, or None when no file has a curve to draw.
    """
    panels: list[tuple[str, list[tuple[str, pd.DataFrame]]]] = []
    for name, paths in runs.items():
        frames = [(Path(p).parent.name, pd.read_csv(p)) for p in paths if Path(p).is_file()]
        frames = [(label, df) for label, df in frames if not df.empty and "epoch" in df]
        if frames:
            panels.append((name, frames))
    if not panels:
        return None
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False, sharey=True)
    for ax, (name, frames) in zip(axes.flat, panels, strict=False):
        for i, (label, df) in enumerate(frames):
            colour = f"C{i % 10}"
            if (tr := _curve(df, train_keys)) is not None:
                ax.plot(*tr, "--x", color=colour, ms=3, lw=1.2, alpha=0.8)
            if (va := _curve(df, val_keys)) is not None:
                ax.plot(*va, "-o", color=colour, ms=2.5, lw=1.4, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        handles += [
            Line2D([], [], color="grey", ls="--", label="train"),
            Line2D([], [], color="grey", ls="-", label=val_label),
        ]
        ax.legend(handles=handles, fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean angular error (degrees)")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)
