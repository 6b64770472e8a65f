"""Figures written into run directories (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["plot_learning_curves", "save_figure"]


def save_figure(fig: Any, out: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG atomically (a crash never leaves half a file), then close it."""
    import io

    import matplotlib.pyplot as plt

    from tinct.core.atomic import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    plt.close(fig)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(out, buf.getvalue())


_STATS = ("mean", "median", "trimean", "best25", "worst25", "max")


def _panels(columns: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Group metric columns into panels: ``x`` (train and val curves) or ``x statistics`` (one line per stat)."""
    bases = sorted({c.split("/", 1)[1] for c in columns if "/" in c})
    families: dict[str, list[str]] = {}
    plain: list[str] = []
    for base in bases:
        prefix, _, stat = base.rpartition("_")
        if prefix and stat in _STATS:
            families.setdefault(prefix, []).append(stat)
        else:
            plain.append(base)
    panels = [(b, [(f"{stage}/{b}", stage) for stage in ("train", "val")]) for b in plain]
    for prefix, stats in families.items():
        ordered = [s for s in _STATS if s in stats and s != "max"]
        panels.append((f"{prefix}: val statistics", [(f"val/{prefix}_{s}", s) for s in ordered]))
    return panels


def plot_learning_curves(
    metrics_csv: str | os.PathLike[str], out: str | os.PathLike[str], title: str = ""
) -> Path | None:
    """Learning curves from a run's ``metrics.csv``: one panel per metric against epoch; returns the PNG path.

    Plain metrics show train and val curves; families of error statistics (``val/angular_mean``,
    ``..._median`` ...) share one panel, one line per statistic.
    """
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    p = Path(metrics_csv)
    if not p.is_file():
        return None
    df = pd.read_csv(p)
    panels = [
        (name, [(c, lab) for c, lab in lines if c in df and df[c].notna().any()])
        for name, lines in _panels(list(df.columns))
    ]
    panels = [(name, lines) for name, lines in panels if lines]
    if df.empty or not panels:
        return None
    ncol = min(3, len(panels))
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.3 * nrow), squeeze=False)
    epochs = df["epoch"] + 1
    for ax, (name, lines) in zip(axes.flat, panels, strict=False):
        for col, label in lines:
            ok = df[col].notna()  # validation metrics exist only on epochs that ran validation
            ax.plot(epochs[ok], df.loc[ok, col], "-o", ms=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out)
