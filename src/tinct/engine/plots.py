"""Figures written into run directories (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

__all__ = ["plot_learning_curves"]


def plot_learning_curves(
    metrics_csv: str | os.PathLike[str], out: str | os.PathLike[str], title: str = ""
) -> Path | None:
    """One panel per metric (``train/x`` and ``val/x`` overlaid) against epoch; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = Path(metrics_csv)
    if not p.is_file():
        return None
    df = pd.read_csv(p)
    if df.empty:
        return None
    bases = sorted({c.split("/", 1)[1] for c in df.columns if "/" in c})
    if not bases:
        return None
    ncol = min(3, len(bases))
    nrow = (len(bases) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    epochs = df["epoch"] + 1
    for ax, base in zip(axes.flat, bases, strict=False):
        for stage, style in (("train", "-o"), ("val", "-s")):
            col = f"{stage}/{base}"
            if col in df and df[col].notna().any():
                ax.plot(epochs, df[col], style, ms=3, label=stage)
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(bases) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
