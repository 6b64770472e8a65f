"""Figures that compare runs: a metric by each axis, overlaid learning curves, error distributions.

:func:`plot_results` draws them from a table of :func:`tinct.engine.summary.summarize_runs` or from a
sweep's ``results.csv`` (see :mod:`tinct.engine.sweep`); ``tinct plot`` and ``tinct report`` call it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinct.core.exceptions import DataError
from tinct.engine.summary import NOT_AXES, default_metric, metric_mode, run_tasks

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["FIGURE_KINDS", "plot_results"]

FIGURE_KINDS = ("metric_by", "learning_curves", "error_distribution")
_MAX_AXIS_FIGURES = 12
_MAX_LEGEND = 10
_DPI = 100
_FOLD_DIR = re.compile(r"fold\d+|holdout")


# -- figures --------------------------------------------------------------------------------------------


def _load_results(results: str | os.PathLike[str] | pd.DataFrame) -> tuple[pd.DataFrame, str, Path | None]:
    """(table, its name for messages, the folder of its CSV file or None)."""
    import pandas as pd

    if isinstance(results, pd.DataFrame):
        return results, "results table", None
    path = Path(results)
    if not path.is_file():
        raise DataError(f"{path}: no such results file")
    try:
        df = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: unreadable CSV ({err})") from err
    return df, str(path), path.parent


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Any) -> Path:
    from tinct.engine.plots import save_figure

    return save_figure(fig, out, dpi=_DPI)


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _categories(column: pd.Series) -> list[tuple[str, Any]]:
    """(label, mask key) of each distinct value, numbers in numeric order, missing values last."""
    import pandas as pd

    present = column.dropna().unique().tolist()
    numeric = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
    if present and numeric.notna().all():
        present = [v for _, v in sorted(zip(numeric.tolist(), present, strict=True), key=lambda t: t[0])]
    else:
        present = sorted(present, key=str)
    out = [(_label(v), v) for v in present]
    if column.isna().any():
        out.append(("none", None))
    return out


def _axis_columns(df: pd.DataFrame, ok: pd.Series) -> list[str]:
    """Non-metric columns with 2 to 20 distinct values (missing counts as one) among the scored rows."""
    candidates = [
        c
        for c in df.columns
        if isinstance(c, str)
        and c not in NOT_AXES
        and not c.startswith(("val/", "test/", "train/"))
        and not c.startswith("Unnamed:")
    ]
    axes = []
    for c in candidates:
        col = df.loc[ok, c]
        distinct = col.astype(str).where(col.notna(), None).nunique(dropna=False)
        if 2 <= distinct <= 20:
            axes.append(c)
    # sweep parameters first, then config keys; a table of many tasks would otherwise plot dozens
    axes.sort(key=lambda c: 0 if c.startswith("param:") else 1)
    return axes[:_MAX_AXIS_FIGURES]


def _plot_by_axis(df: pd.DataFrame, values: pd.Series, metric: str, column: str, out: Path) -> Path:
    import numpy as np

    plt = _pyplot()
    ok = values.notna()
    col = df.loc[ok, column]
    cats = _categories(col)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(cats) + 2.0), 3.6))
    counts = []
    jitter = np.random.default_rng(0)  # the same figure for the same table
    for i, (_, key) in enumerate(cats):
        mask = col.isna() if key is None else col == key
        y = values[ok][mask.to_numpy()].to_numpy(dtype=np.float64)
        x = i + (jitter.uniform(-0.15, 0.15, y.size) if y.size > 1 else np.zeros(y.size))
        ax.plot(x, y, "o", color="C0", alpha=0.65, ms=5)
        ax.hlines(y.mean(), i - 0.3, i + 0.3, color="C3", lw=2.2)
        counts.append(y.size)
    labels = [f"{label}\n(n={n})" for (label, _), n in zip(cats, counts, strict=True)]
    long = max(len(label) for label, _ in cats) > 10
    ax.set_xticks(range(len(cats)), labels, rotation=30 if long else 0, fontsize=8)
    ax.set_xlim(-0.6, len(cats) - 0.4)
    ax.set_xlabel(column)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by {column} (red: mean)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return _save(fig, out)


def _resolve(value: Any, bases: Sequence[Path]) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    p = Path(value)
    if p.is_absolute():
        return p if p.is_dir() else None
    for base in bases:
        if (base / p).is_dir():
            return base / p
    return None


def _run_paths(df: pd.DataFrame, root: Path | None, csv_dir: Path | None) -> list[Path | None]:
    """The run directory of each row: ``run`` below ``root`` (or the CSV's folder), or ``run_dir``
    (absolute, or relative to ``root``, the CSV's folder or the working directory)."""
    bases = [b for b in (root, csv_dir) if b is not None]
    column = "run" if "run" in df and bases else "run_dir" if "run_dir" in df else None
    if column is None:
        return [None] * len(df)
    if column == "run_dir":
        bases.append(Path.cwd())
    return [_resolve(v, bases) for v in df[column]]


def _read_columns(path: Path, wanted: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path, usecols=lambda c: c in wanted, dtype={"image": str})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: unreadable CSV ({err})") from err


def _run_label(df: pd.DataFrame, i: int, path: Path) -> str:
    for column, prefix in (("run", ""), ("number", "trial ")):
        if column in df and (label := _label(df[column].iloc[i])) != "none":
            return prefix + label
    return path.name


def _plot_curves(
    df: pd.DataFrame, paths: Sequence[Path | None], metric: str, mode: str, out: Path
) -> Path | None:
    import pandas as pd

    key = "val/" + metric.split("/", 1)[-1]
    # The run drawn as best is chosen on validation even when ``metric`` is a test column: the table's
    # validation value of the run (its selected checkpoint's), else the best point of its validation curve.
    val = pd.to_numeric(df[key], errors="coerce") if key in df else None
    curves = []
    for i, path in enumerate(paths):
        if path is None or not (path / "metrics.csv").is_file():
            continue
        m = _read_columns(path / "metrics.csv", ("epoch", key))
        if "epoch" not in m or key not in m or not m[key].notna().any():
            continue
        m = m[m[key].notna()]
        y = m[key].to_numpy()
        score = float(val.iloc[i]) if val is not None else float(y.min() if mode == "min" else y.max())
        curves.append((_run_label(df, i, path), m["epoch"].to_numpy() + 1, y, score))
    if not curves:
        return None
    scored = [j for j, c in enumerate(curves) if not math.isnan(c[3])]
    best = (min if mode == "min" else max)(scored, key=lambda j: curves[j][3]) if scored else None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    few = len(curves) <= _MAX_LEGEND
    for j, (label, x, y, _) in enumerate(curves):
        if j == best:
            continue
        if few:
            ax.plot(x, y, "-", lw=1.3, color=f"C{j % 10}", label=label)
        else:
            ax.plot(x, y, "-", lw=0.8, color="C0", alpha=0.35)
    if best is not None:
        label, x, y, _ = curves[best]
        ax.plot(x, y, "-", lw=2.2, color="k", label=f"best on validation: {label}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{key} by epoch ({len(curves)} runs)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


def _fold_errors(paths: Sequence[Path | None], root: Path | None) -> dict[str, np.ndarray]:
    """Per-image errors of the runs with an ``errors.csv``, the folds of a cross-validation pooled."""
    import numpy as np

    groups: dict[Path, list[np.ndarray]] = {}
    for path in dict.fromkeys(p for p in paths if p is not None):
        f = path / "errors.csv"
        if not f.is_file():
            continue
        e = _read_columns(f, ("error",))
        if "error" not in e:
            raise DataError(f"{f}: no 'error' column")
        group = path.parent if _FOLD_DIR.fullmatch(path.name) else path
        groups.setdefault(group, []).append(e["error"].to_numpy(dtype=np.float64))
    out = {}
    for group, parts in groups.items():
        try:
            label = group.relative_to(root).as_posix() if root is not None else group.name
        except ValueError:
            label = group.name
        out[label or group.name] = np.concatenate(parts)
    return out


def _plot_distribution(
    values: pd.Series, metric: str, errors: Mapping[str, np.ndarray], out: Path
) -> Path | None:
    import numpy as np

    v = values.dropna().to_numpy(dtype=np.float64)
    errors = {k: np.sort(e[np.isfinite(e)]) for k, e in errors.items()}
    errors = {k: e for k, e in errors.items() if e.size}
    panels = (v.size >= 2) + bool(errors)
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), squeeze=False)
    ax_iter = iter(axes.flat)
    if v.size >= 2:
        from matplotlib.ticker import MaxNLocator

        ax = next(ax_iter)
        ax.hist(v, bins=min(20, max(5, v.size // 3)), color="C0", alpha=0.6)
        ax.axvline(float(np.median(v)), color="C3", ls="--", label=f"median {np.median(v):.4g}")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel(metric)
        ax.set_ylabel("runs (histogram)")
        ax.set_title(f"{metric} across {v.size} runs", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        cdf = ax.twinx()
        sv = np.sort(v)
        cdf.step(sv, np.arange(1, sv.size + 1) / sv.size, where="post", color="k", lw=1.2)
        cdf.set_ylim(0, 1.02)
        cdf.set_ylabel("fraction of runs <= x (line)")
    if errors:
        ax = next(ax_iter)
        few = len(errors) <= _MAX_LEGEND
        for j, (name, e) in enumerate(errors.items()):
            y = np.arange(1, e.size + 1) / e.size
            style = {"color": f"C{j % 10}", "lw": 1.3} if few else {"color": "C0", "lw": 0.8, "alpha": 0.4}
            ax.step(
                np.concatenate([[0.0], e]),
                np.concatenate([[0.0], y]),
                where="post",
                label=f"{name} (mean {e.mean():.2f})" if few else None,
                **style,
            )
        pooled = np.concatenate(list(errors.values()))
        ax.set_xlim(0, max(float(np.quantile(pooled, 0.98)), 1e-3) * 1.05)
        ax.set_ylim(0, 1)
        ax.set_xlabel("per-image error (errors.csv)")
        ax.set_ylabel("fraction of images with error <= x")
        ax.set_title("per-image error CDF", fontsize=10)
        if few:
            ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def _file_part(column: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", column).strip("_") or "column"


def plot_results(
    results: str | os.PathLike[str] | pd.DataFrame,
    out_dir: str | os.PathLike[str],
    metric: str | None = None,
    root: str | os.PathLike[str] | None = None,
    *,
    kinds: Sequence[str] = FIGURE_KINDS,
) -> list[Path]:
    """Figures comparing runs: a metric by parameter, overlaid learning curves, error distributions.

    Args:
        results: a table of :func:`summarize_runs`, its CSV file, or a sweep's ``results.csv`` (one row per
            trial, a ``run_dir`` column).
        out_dir: folder for the PNG files (created).
        metric: the metric to compare (a ``val/`` or ``test/`` column); default the main validation metric
            of the table's tasks (their monitor), else the first ``val/`` column with values.
        root: the folder the ``run`` column is relative to (default: the CSV file's folder); run
            directories are needed for the learning curves and the per-image errors.
        kinds: which figures to draw, a subset of ``("metric_by", "learning_curves",
            "error_distribution")``.

    Returns:
        The PNG files written, among: ``metric_by_<column>.png`` for each non-metric column (sweep
        parameter, config key) with 2 to 20 distinct values among the runs with a score, at most 12 (each
        run a point, the mean per value a red bar); ``learning_curves.png``, the metric's validation curve
        of every run from its ``metrics.csv`` (in black the best run on validation, even for a ``test/``
        ``metric``; skipped when none is found);
        ``error_distribution.png``, a histogram of the metric across runs and, when runs hold an
        ``errors.csv`` (cross-validation folds, pooled per cross-validation), the per-image error CDFs.

    Raises:
        DataError: the CSV file is missing or unreadable, has no metric column, ``metric`` is not one of
            them, or a run's ``metrics.csv`` / ``errors.csv`` cannot be read (the file is named).
        UnknownNameError: an unknown figure kind.
    """
    import pandas as pd

    from tinct.core.checks import check_choice

    for kind in kinds:
        check_choice(kind, FIGURE_KINDS, "figure kind")
    df, source, csv_dir = _load_results(results)
    df = df.reset_index(drop=True)
    metric_cols = [c for c in df.columns if isinstance(c, str) and c.startswith(("val/", "test/"))]
    if not metric_cols:
        raise DataError(f"{source}: no metric columns (val/... or test/...); columns: {list(df.columns)}")
    metric = metric or default_metric(df, metric_cols)
    if metric not in metric_cols:
        raise DataError(f"{source}: no metric column {metric!r}; valid choices: {', '.join(metric_cols)}")
    values = pd.to_numeric(df[metric], errors="coerce")
    mode = metric_mode(metric, run_tasks(df))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "metric_by" in kinds and values.notna().any():
        for column in _axis_columns(df, values.notna()):
            written.append(
                _plot_by_axis(df, values, metric, column, out / f"metric_by_{_file_part(column)}.png")
            )
    if "learning_curves" in kinds or "error_distribution" in kinds:
        base = Path(root) if root is not None else csv_dir
        paths = _run_paths(df, base, csv_dir)
        if "learning_curves" in kinds:
            p = _plot_curves(df, paths, metric, mode, out / "learning_curves.png")
            written += [p] if p is not None else []
        if "error_distribution" in kinds:
            errors = _fold_errors(paths, base)
            p = _plot_distribution(values, metric, errors, out / "error_distribution.png")
            written += [p] if p is not None else []
    return written
