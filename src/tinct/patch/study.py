"""``tinct study patch``: the patch-colour study as one table and its figures.

The grid comes from a sweep file (default ``configs/patch/study.sweep.yaml``: fusion x backbone x background;
fusion ``none`` is the model without metadata). Every trial trains on the same fixed split
(``--test-split auto``: whole shades held out), then every finished trial is tested, which writes its
``patch_metrics.json`` (overall, per camera, per exposure bin). The study folder gets::

    study.csv / study.json   one row per variant: axes, epochs, CIEDE2000 mean / median / p90 / max,
                             share below 1, mean per exposure bin
    study.md                 the table, the metadata gain (image-only minus best fusion) per backbone and
                             background, overall and per exposure bin, and the figures
    figures/de00.png         CIEDE2000 mean per variant, grouped by backbone and background
    figures/metadata_gain.png  the gain from metadata per exposure bin
    figures/best_swatches.png  the best model's predicted vs true swatches
    sweep/                   the sweep (resumable: rerun the command)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tinct.core.exceptions import RunDirError, TinctError

__all__ = ["DEFAULT_PATCH_SWEEP", "patch_study_table", "study_patch"]

DEFAULT_PATCH_SWEEP = "configs/patch/study.sweep.yaml"
_STATS = ("de00_mean", "de00_median", "de00_p90", "de00_max", "share_below_1")


def patch_study_table(results: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """One row per finished trial of ``results`` (a sweep's results table) with its test statistics.

    Raises:
        RunDirError: a finished trial has no ``patch_metrics.json`` (it was not tested).
    """
    from tinct.patch.metrics import EXPOSURE_BINS

    rows = []
    for _, r in results[results["state"] == "COMPLETE"].iterrows():
        path = Path(r["run_dir"]) / "patch_metrics.json"
        if not path.is_file():
            raise RunDirError(f"{path}: missing; test the run with `tinct evaluate {r['run_dir']}`")
        m = json.loads(path.read_text())
        row: dict[str, Any] = {a: r[a] for a in axes}
        row["epochs"] = int(r["epochs"]) if pd.notna(r.get("epochs")) else None
        row.update({k: m.get(k) for k in _STATS})
        for label, _, _ in EXPOSURE_BINS:
            row[f"de00 {label}"] = m.get("per_exposure", {}).get(label, {}).get("de00_mean")
        row["run_dir"] = r["run_dir"]
        rows.append(row)
    return pd.DataFrame(rows)


def _metadata_gain(table: pd.DataFrame, fusion: str, groups: list[str]) -> pd.DataFrame:
    """Per group (backbone, background): image-only ΔE00 minus the best fusion's, overall and per bin."""
    value_cols = ["de00_mean"] + [c for c in table.columns if c.startswith("de00 ")]
    rows = []
    for key, g in table.groupby(groups, sort=False):
        base = g[g[fusion] == "none"]
        fused = g[g[fusion] != "none"]
        if base.empty or fused.empty:
            continue
        best = fused.sort_values("de00_mean").iloc[0]
        row = dict(zip(groups, key if isinstance(key, tuple) else (key,), strict=True))
        row["best fusion"] = best[fusion]
        for c in value_cols:
            row[f"gain {c.removeprefix('de00 ')}" if c != "de00_mean" else "gain mean"] = (
                float(base[c].iloc[0] - best[c]) if pd.notna(base[c].iloc[0]) and pd.notna(best[c]) else None
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(df: pd.DataFrame) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _figures(table: pd.DataFrame, gain: pd.DataFrame, axes: list[str], fusion: str, figures: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.engine.plots import save_figure

    groups = [a for a in axes if a != fusion]
    labels = [" / ".join(str(v) for v in k) for k in table[groups].itertuples(index=False)]
    table = table.assign(_group=labels)
    order = list(dict.fromkeys(labels))
    fusions = list(dict.fromkeys(table[fusion]))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(order)), 4))
    width = 0.8 / max(1, len(fusions))
    for j, f in enumerate(fusions):
        sub = table[table[fusion] == f].set_index("_group")
        ys = [sub["de00_mean"].get(g, np.nan) for g in order]
        ax.bar(np.arange(len(order)) + j * width, ys, width, label=str(f))
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(order)) + 0.4 - width / 2, order, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test CIEDE2000 mean")
    ax.legend(title=fusion, fontsize=8)
    ax.set_title("patch colour: test ΔE00 (shades held out); dashed: 1 JND")
    fig.tight_layout()
    save_figure(fig, figures / "de00.png")
    if gain.empty:
        return
    bins = [c for c in gain.columns if c.startswith("gain ")]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(bins)), 4))
    width = 0.8 / len(gain)
    for j, (_, row) in enumerate(gain.iterrows()):
        name = " / ".join(str(row[g]) for g in groups) + f" ({row['best fusion']})"
        ax.bar(np.arange(len(bins)) + j * width, [row[b] or 0.0 for b in bins], width, label=name)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(bins)) + 0.4 - width / 2, [b.removeprefix("gain ") for b in bins], fontsize=8)
    ax.set_ylabel("ΔE00 without metadata - with (higher: metadata helps)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, figures / "metadata_gain.png")


def study_patch(
    out: str | os.PathLike[str] = "runs/study-patch",
    *,
    sweep: str | os.PathLike[str] = DEFAULT_PATCH_SWEEP,
    only_full: bool = False,
    workers: int = 1,
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or resume) the patch study; write ``study.md / .csv / .json`` and figures into ``out``.

    Args:
        out: the study folder (the sweep runs in ``out/sweep``).
        sweep: the sweep file of the grid (an axis named ``fusion`` with a ``none`` label is compared as
            "without metadata").
        only_full: skip the sweep's optional points (ResNet-18 and MobileNetV2 in the default file).
        workers: local worker processes.
        overrides: config keys set for every trial (``trainer.max_epochs``...).
        progress: print progress.

    Returns:
        The study table (also ``study.csv``).
    """
    from tinct.core.atomic import atomic_write_json, atomic_write_text
    from tinct.engine.sweep import load_sweep, run_sweep

    root = Path(out)
    spec = load_sweep(sweep, overrides)
    n_trials = len(spec.points())
    results = run_sweep(
        sweep, root / "sweep", workers=workers, only_full=only_full, test_split="auto", auto_summary=True,
        analysis=True, eval_winners_k=n_trials, overrides=overrides, progress=progress,
    )  # fmt: skip
    axes = list(spec.axes)
    table = patch_study_table(results, axes)
    if table.empty:
        raise TinctError(
            f"{root / 'sweep'}: no trial finished; see the errors in results.csv and the sweep log"
        )
    table = table.sort_values("de00_mean").reset_index(drop=True)
    fusion = "fusion" if "fusion" in axes else axes[-1]
    groups = [a for a in axes if a != fusion]
    gain = _metadata_gain(table, fusion, groups) if groups else pd.DataFrame()
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _figures(table, gain, axes, fusion, figures)
    if len(table):
        best = Path(table["run_dir"].iloc[0]) / "figures" / "patch_swatches.png"
        if best.is_file():
            shutil.copyfile(best, figures / "best_swatches.png")
    shown = table.drop(columns=["run_dir"])
    md = [
        "# Patch colour study",
        "",
        f"Sweep `{sweep}`; test split: whole shades held out (the same split for every trial, "
        f"`{root / 'sweep' / 'split.json'}`). CIEDE2000 on the test split; lower is better; one unit is "
        "about one just-noticeable difference. Exposure bins by the offset from the camera meter "
        "(`(Bv + 5) - EV100`).",
        "",
        _markdown(shown),
        "",
        "## Where metadata helps",
        "",
        "ΔE00 of the image-only model minus that of the best fusion (positive: metadata helps).",
        "",
        _markdown(gain) if not gain.empty else "(no variant pairs with and without metadata)",
        "",
        "![ΔE00 per variant](figures/de00.png)",
        "![metadata gain](figures/metadata_gain.png)",
        "![best model swatches](figures/best_swatches.png)",
        "",
    ]
    atomic_write_text(root / "study.md", "\n".join(md))
    atomic_write_text(root / "study.csv", table.to_csv(index=False))
    atomic_write_json(
        root / "study.json",
        {
            "table": json.loads(table.to_json(orient="records")),
            "metadata_gain": json.loads(gain.to_json(orient="records")),
        },
    )
    return shown
