"""``tinct study patch``: the patch-colour study as one table and its figures.

The grid comes from a sweep file (default ``configs/patch/study.sweep.yaml``: fusion x backbone x background;
fusion ``none`` is the model without metadata). Every trial trains on the same fixed split
(``--test-split auto``: whole shades held out), then every finished trial is tested, which writes its
``patch_metrics.json`` (overall, per camera, per exposure bin).

Every choice is made on the validation split, never on the test split it reports: the rows are ranked by
``val de00_mean``, the validation CIEDE2000 mean of each run's selected checkpoint (the sweep's monitor
value, :data:`SELECT_METRIC`), the best model is the first row, and the best fusion of each backbone and
background is the one with the lowest validation ΔE00; their test figures are then reported as they are.
The study folder gets::

    study.csv / study.json   one row per variant, best on validation first: axes, epochs, validation
                             CIEDE2000 mean (the ranking), test CIEDE2000 mean / median / p90 / max,
                             share below 1, mean per exposure bin
    study.md                 the table, the metadata gain (image-only minus the best fusion on validation)
                             per backbone and background, on test overall and per exposure bin, and the
                             figures
    figures/de00.png         test CIEDE2000 mean per variant, grouped by backbone and background
    figures/metadata_gain.png  the gain from metadata per exposure bin
    figures/best_swatches.png  the best model's (on validation) predicted vs true test swatches
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

__all__ = [
    "DEFAULT_PATCH_SWEEP",
    "SELECT_COLUMN",
    "SELECT_METRIC",
    "best_variant",
    "patch_study_table",
    "study_patch",
]

DEFAULT_PATCH_SWEEP = "configs/patch/study.sweep.yaml"
SELECT_METRIC = "val/de00_mean"  # the patch task's monitor: what picked each run's checkpoint


def _column(metric: str) -> str:
    """The study-table column of a validation metric (``val/de00_mean`` -> ``val de00_mean``)."""
    return metric.replace("/", " ", 1)


SELECT_COLUMN = _column(SELECT_METRIC)  # what ranks the variants
_STATS = ("de00_mean", "de00_median", "de00_p90", "de00_max", "share_below_1")


def _validation_value(r: pd.Series, metric: str) -> float:
    """The trial's validation ``metric`` (its selected checkpoint's): the sweep's results table, else the
    run's ``metrics.json``."""

    def finite(v: Any) -> float | None:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return f if np.isfinite(f) else None

    value = finite(r.get(metric))
    if value is None:
        path = Path(r["run_dir"]) / "metrics.json"
        if path.is_file():
            value = finite(json.loads(path.read_text()).get(metric))
    if value is None:
        raise RunDirError(
            f"{r['run_dir']}: no finite {metric!r} in the sweep's results or the run's metrics.json; "
            "the study ranks and picks variants on it"
        )
    return value


def patch_study_table(results: pd.DataFrame, axes: list[str], metric: str = SELECT_METRIC) -> pd.DataFrame:
    """One row per finished trial of ``results`` (a sweep's results table): its validation ``metric``
    (column ``val de00_mean`` for the default; what ranks the variants) and its test statistics.

    Rows keep the order of ``results``; :func:`study_patch` sorts them by the validation column.

    Raises:
        RunDirError: a finished trial has no ``patch_metrics.json`` (it was not tested), or no finite
            validation ``metric``.
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
        row[_column(metric)] = _validation_value(r, metric)
        row.update({k: m.get(k) for k in _STATS})
        for label, _, _ in EXPOSURE_BINS:
            row[f"de00 {label}"] = m.get("per_exposure", {}).get(label, {}).get("de00_mean")
        row["run_dir"] = r["run_dir"]
        rows.append(row)
    return pd.DataFrame(rows)


def best_variant(table: pd.DataFrame, select: str = SELECT_COLUMN) -> pd.Series:
    """The row of a study table with the lowest validation ΔE00 (column ``select``); ties: the first.

    Raises:
        TinctError: the table has no ``select`` column (a study written before selection on validation:
            rerun ``tinct study patch``, which reuses the finished trials) or no row with a value.
    """
    if select not in table:
        raise TinctError(
            f"the study table has no {select!r} column to pick the best variant on validation "
            "(written by an older tinct?): rerun `tinct study patch` with the same --out to rewrite it"
        )
    scored = table[table[select].notna()]
    if scored.empty:
        raise TinctError(f"no variant of the study table has a {select!r} value")
    return scored.sort_values(select, kind="stable").iloc[0]


def _metadata_gain(
    table: pd.DataFrame, fusion: str, groups: list[str], select: str = SELECT_COLUMN
) -> pd.DataFrame:
    """Per group (backbone, background): the fusion with the lowest validation ΔE00 (``select``), and the
    image-only model's test ΔE00 minus that fusion's, overall and per exposure bin (``val gain mean``:
    the same difference on validation)."""
    value_cols = ["de00_mean"] + [c for c in table.columns if c.startswith("de00 ")]
    rows = []
    for key, g in table.groupby(groups, sort=False):
        base = g[g[fusion] == "none"]
        fused = g[g[fusion] != "none"]
        if base.empty or fused.empty:
            continue
        best = best_variant(fused, select)
        row = dict(zip(groups, key if isinstance(key, tuple) else (key,), strict=True))
        row["best fusion"] = best[fusion]
        row["val gain mean"] = float(base[select].iloc[0] - best[select])
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
        name = " / ".join(str(row[g]) for g in groups) + f" ({row['best fusion']}, best on val)"
        ax.bar(np.arange(len(bins)) + j * width, [row[b] or 0.0 for b in bins], width, label=name)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(bins)) + 0.4 - width / 2, [b.removeprefix("gain ") for b in bins], fontsize=8)
    ax.set_ylabel("test ΔE00 without metadata - with (higher: metadata helps)")
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
    from tinct.engine.experiments import find_shipped
    from tinct.engine.sweep import load_sweep, run_sweep

    root = Path(out)
    sweep_file = find_shipped(sweep)  # the default works from any folder, as for the other studies
    spec = load_sweep(sweep_file, overrides)
    n_trials = len(spec.points())
    results = run_sweep(
        sweep_file, root / "sweep", workers=workers, only_full=only_full, test_split="auto", auto_summary=True,
        analysis=True, eval_winners_k=n_trials, overrides=overrides, progress=progress,
    )  # fmt: skip
    axes = list(spec.axes)
    table = patch_study_table(results, axes)
    if table.empty:
        raise TinctError(
            f"{root / 'sweep'}: no trial finished; see the errors in results.csv and the sweep log"
        )
    # Ranked on validation (ties keep the sweep's order); the test columns never choose anything.
    table = table.sort_values(SELECT_COLUMN, kind="stable").reset_index(drop=True)
    fusion = "fusion" if "fusion" in axes else axes[-1]
    groups = [a for a in axes if a != fusion]
    gain = _metadata_gain(table, fusion, groups) if groups else pd.DataFrame()
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _figures(table, gain, axes, fusion, figures)
    best = best_variant(table)
    swatches = Path(best["run_dir"]) / "figures" / "patch_swatches.png"
    if swatches.is_file():
        shutil.copyfile(swatches, figures / "best_swatches.png")
    shown = table.drop(columns=["run_dir"])
    md = [
        "# Patch colour study",
        "",
        f"Sweep `{sweep}`; test split: whole shades held out (the same split for every trial, "
        f"`{root / 'sweep' / 'split.json'}`). Lower is better; one CIEDE2000 unit is about one "
        "just-noticeable difference. Exposure bins by the offset from the camera meter "
        "(`(Bv + 5) - EV100`).",
        "",
        f"Ranking and choices are on validation: rows are sorted by `{SELECT_COLUMN}` (the validation "
        f"CIEDE2000 mean of the run's selected checkpoint, `{SELECT_METRIC}`), and the best model is the "
        "first row. Every other ΔE00 column is on the test split, which chooses nothing.",
        "",
        _markdown(shown),
        "",
        "## Where metadata helps",
        "",
        "Test ΔE00 of the image-only model minus that of the best fusion (positive: metadata helps); the "
        f"best fusion of each group is the one with the lowest `{SELECT_COLUMN}` (`val gain mean`: the "
        "same difference on validation).",
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
            "selected_by": SELECT_METRIC,
            "best": json.loads(best.to_json()),
            "table": json.loads(table.to_json(orient="records")),
            "metadata_gain": json.loads(gain.to_json(orient="records")),
        },
    )
    return shown
