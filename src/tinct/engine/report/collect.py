"""The blocks of a report: the studies and sweeps under a folder, and a section per task, study and sweep.

What a task's section shows comes from its class in :data:`tinct.engine.task.TASKS` (``monitor``,
``monitor_mode``, ``report_table``), looked up by :func:`tinct.engine.summary.task_class`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinct.core.exceptions import DataError
from tinct.engine.report.render import Block, Figure, Heading, Table, Text, fmt, missing
from tinct.engine.results_plots import plot_results
from tinct.engine.summary import (
    BASE_COLUMNS,
    SKIP_DIRS,
    TRIAL_COLUMNS,
    default_metric,
    metric_mode,
    natural_key,
    read_yaml,
    task_class,
)

if TYPE_CHECKING:
    import pandas as pd

    from tinct.engine.task import ReportTable

__all__ = ["find_studies_and_sweeps", "overview", "study_section", "sweep_section", "task_section"]

_METRIC_PREFIXES = ("val/", "test/")
# Columns of a sweep's results.csv (tinct.engine.sweep.sweep_results) that are neither axes nor metrics.
_TRIAL_FIXED = ("number", "state", "optional", "epochs", "run_dir", "time_s", "error")
_MAX_ERROR_CHARS = 1000


def find_studies_and_sweeps(root: Path) -> tuple[list[Path], list[Path]]:
    """(study folders, sweep folders) under ``root``, itself included."""
    studies, sweeps = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        names = set(filenames)
        if {"study.md", "study.csv"} <= names:
            studies.append(Path(dirpath))
        if {"sweep.yaml", "results.csv"} <= names:
            sweeps.append(Path(dirpath))
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]

    def key(p: Path) -> Any:
        return natural_key(p.relative_to(root))

    return sorted(studies, key=key), sorted(sweeps, key=key)


def _rel(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel if rel != "." else f"{root.name} (root)"


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: unreadable CSV ({err})") from err


def _metric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(c, str) and c.startswith(_METRIC_PREFIXES)]


def _varying_columns(df: pd.DataFrame) -> list[str]:
    """Sweep parameters and config keys that differ between the rows of ``df``."""
    fixed = {*BASE_COLUMNS, *TRIAL_COLUMNS}
    cols = [c for c in df.columns if c not in fixed and not str(c).startswith(_METRIC_PREFIXES)]
    return [c for c in cols if df[c].astype(str).where(df[c].notna(), None).nunique(dropna=False) > 1]


# -- a task's runs --------------------------------------------------------------------------------------


def _labels(sub: pd.DataFrame) -> list[str]:
    """A run's name in a task table: its sweep parameters when it has some, else its config name; runs
    that would share a label get their path appended."""
    params = [c for c in sub.columns if c.startswith("param:")]
    labels = []
    for _, row in sub.iterrows():
        given = [f"{c[6:]}={fmt(row[c])}" for c in params if not missing(row[c])]
        labels.append(", ".join(given) if given else fmt(row.get("name")))
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return [f"{lab} ({run})" if counts[lab] > 1 else lab for lab, run in zip(labels, sub["run"], strict=True)]


def _generic_table(sub: pd.DataFrame) -> ReportTable:
    """The table of a task that declares none (or is not installed): every metric its runs have."""
    from tinct.engine.task import ReportColumn, ReportTable

    names = dict.fromkeys(c.split("/", 1)[1] for c in sorted(_metric_columns(sub)) if sub[c].notna().any())
    return ReportTable("Metrics table", tuple(ReportColumn(n, n) for n in names), decimals=None)


def _task_table(sub: pd.DataFrame, spec: ReportTable, sort: str, descending: bool) -> list[Block]:
    """The study-style table: test metrics where a run has them, else validation metrics; the rows ranked
    by the validation ``sort`` metric (the monitor), shown in its own column, never by a test metric."""
    import numpy as np

    ranked = next((c for c in spec.columns if c.metric == sort), None)
    val_header, val_scale = (f"val {ranked.header}", ranked.scale) if ranked else (f"val/{sort}", 1.0)
    rows, on_val, unranked = [], 0, 0
    for label, (_, r) in zip(_labels(sub), sub.iterrows(), strict=True):
        split = "test" if not missing(r.get(f"test/{sort}")) else "val"
        if missing(r.get(f"{split}/{sort}")):
            continue
        on_val += split == "val"
        nums = [r.get(f"{split}/{c.metric}", np.nan) * c.scale for c in spec.columns]
        val = r.get(f"val/{sort}")
        unranked += missing(val)
        # runs without a validation value go last, in path order (sorted below, stably)
        key = (1, 0.0) if missing(val) else (0, -float(val) if descending else float(val))
        val_num = np.nan if missing(val) else float(val) * val_scale
        rows.append((key, label, fmt(r.get("epochs")), [val_num, *nums]))
    if not rows or not spec.columns:
        return []
    rows.sort(key=lambda t: t[0])
    split_note = "the other columns: test split" + (
        f" (validation split for the {on_val} run{'s' if on_val > 1 else ''} without test metrics)"
        if on_val
        else ""
    )
    rank_note = f"ranked by {val_header} (validation split, best first; the test split ranks nothing)" + (
        f", then the {unranked} run{'s' if unranked > 1 else ''} without it" if unranked else ""
    )
    return [
        Heading(3, spec.title),
        Text("; ".join(t for t in (spec.note, rank_note, split_note) if t) + ".", note=True),
        Table(
            [spec.first, "Epochs", val_header, *(c.header for c in spec.columns)],
            [
                [label, epochs, *(fmt(v, spec.decimals, metric=True) for v in nums)]
                for _, label, epochs, nums in rows
            ],
            [False, True, True, *([True] * len(spec.columns))],
        ),
    ]


def _figure_blocks(paths: Sequence[Path], what: str) -> list[Block]:
    captions = {"learning_curves.png": "learning curves", "error_distribution.png": "error distribution"}
    out: list[Block] = []
    for p in paths:
        cap = captions.get(p.name, p.stem.replace("metric_by_", "metric by "))
        out.append(Figure(p, f"{what}: {cap}"))
    return out


def task_section(task: str, sub: pd.DataFrame, root: Path, fig_dir: Path, drop_params: bool) -> list[Block]:
    """The runs of one task: how many and the best, the task's table, every run by its main metric, and
    the figures that compare them (written into ``fig_dir``)."""
    cls = task_class(task)
    monitor, mode = cls.monitor, cls.monitor_mode
    sub = sub.dropna(axis=1, how="all")
    blocks: list[Block] = [Heading(2, f"Task: {task}")]
    finished = int((sub["status"] == "finished").sum())
    plural = "s" if len(sub) != 1 else ""
    has_monitor = monitor in sub
    better = "lower" if mode == "min" else "higher"
    intro = f"{len(sub)} run{plural} ({finished} finished). Main metric: {monitor} ({better} is better)"
    if has_monitor:
        order = sub[monitor].astype(float)
        best = order.idxmin() if mode == "min" else order.idxmax()
        intro += f"; best: {sub.loc[best, 'run']} ({fmt(sub.loc[best, monitor], metric=True)})"
        sub = sub.assign(_key=order if mode == "min" else -order).sort_values(
            ["_key", "run"], na_position="last", kind="stable"
        )
        sub = sub.drop(columns="_key")
    blocks.append(Text(intro + "."))
    spec, sort, descending = cls.report_table, monitor.split("/", 1)[-1], mode == "max"
    if spec is None:
        spec = _generic_table(sub)
        shown = [c.metric for c in spec.columns]
        if shown and sort not in shown:  # rows ranked by the first metric the runs have
            sort = shown[0]
            descending = metric_mode(sort) == "max"
    blocks += _task_table(sub, spec, sort, descending)

    varying = _varying_columns(sub)
    metrics = [m for m in (monitor, "test/" + monitor.split("/", 1)[-1]) if m in sub]
    cols = ["run"]
    if "name" in sub and sub["name"].nunique(dropna=False) > 1:
        cols.append("name")
    if (sub["status"] != "finished").any():
        cols.append("status")
    cols += [*varying, *metrics, "epochs", "train_time_s"]
    cols = [c for c in dict.fromkeys(cols) if c in sub]
    header = [{"train_time_s": "time (s)"}.get(c, c) for c in cols]
    rows = [
        [fmt(r[c], 1) if c == "train_time_s" else fmt(r[c], metric=c in metrics) for c in cols]
        for _, r in sub.iterrows()
    ]
    numeric = [c in metrics or c in {"epochs", "train_time_s"} for c in cols]
    blocks += [Heading(3, "Runs"), Table(header, rows, numeric)]

    scored = [c for c in _metric_columns(sub) if sub[c].notna().any()]
    if scored:
        plot_df = sub.drop(columns=[c for c in sub.columns if c.startswith("param:")]) if drop_params else sub
        paths = plot_results(plot_df, fig_dir, metric=monitor if monitor in scored else None, root=root)
        if paths:
            blocks += [Heading(3, "Figures"), *_figure_blocks(paths, task)]
    return blocks


# -- studies and sweeps ---------------------------------------------------------------------------------


def _frame_table(df: pd.DataFrame, decimals: int | None = None) -> Table:
    import pandas as pd

    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df]
    rows = [
        [
            fmt(
                v,
                decimals if num and pd.api.types.is_float_dtype(df[c]) else None,
                metric=str(c).startswith(_METRIC_PREFIXES),
            )
            for c, v, num in zip(df.columns, r, numeric, strict=True)
        ]
        for r in df.itertuples(index=False)
    ]
    return Table([str(c) for c in df.columns], rows, numeric)


def study_section(folder: Path, root: Path) -> list[Block]:
    """A study folder: the text of its ``study.md``, its ``study.csv`` and its ``figures/*.png``."""
    blocks: list[Block] = [Heading(2, f"Study: {_rel(folder, root)}")]
    try:
        text = (folder / "study.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{folder / 'study.md'}: unreadable ({err})") from err
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("|"):
            blocks.append(Text(line.lstrip("#").strip()))
    blocks.append(_frame_table(_read_csv(folder / "study.csv"), decimals=2))
    figures = sorted((folder / "figures").glob("*.png")) if (folder / "figures").is_dir() else []
    blocks += [Figure(p, f"{_rel(folder, root)}: {p.stem.replace('_', ' ')}") for p in figures]
    return blocks


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def sweep_section(folder: Path, root: Path, fig_dir: Path) -> list[Block]:
    """A sweep folder: its trials, the failed ones' errors, its winners, and its metric by each axis."""
    spec = read_yaml(folder / "sweep.yaml")
    name = spec["name"] if isinstance(spec.get("name"), str) else folder.name
    df = _read_csv(folder / "results.csv")
    blocks: list[Block] = [Heading(2, f"Sweep: {name} ({_rel(folder, root)})")]
    summary = f"{len(df)} trials"
    if "state" in df:
        counts = df["state"].fillna("unknown").astype(str).value_counts()
        summary += ": " + ", ".join(f"{k} {v}" for k, v in counts.items())
    blocks.append(Text(summary + "."))

    metric_cols = _metric_columns(df)
    metric = None
    if any(df[c].notna().any() for c in metric_cols):
        named = spec.get("metric")
        metric = named if named in metric_cols else default_metric(df, metric_cols)
    direction = spec.get("direction") if metric == spec.get("metric") else None
    mode = {"minimize": "min", "maximize": "max"}.get(str(direction), metric_mode(metric or ""))
    if isinstance(spec.get("axes"), dict) and all(a in df for a in spec["axes"]):
        axes = list(spec["axes"])
    else:
        axes = [
            c
            for c in df.columns
            if c not in _TRIAL_FIXED
            and c not in metric_cols
            and not str(c).startswith(("train/", "Unnamed:"))
        ]
    shown = [c for c in ("number", "state") if c in df] + axes
    if metric is not None:
        shown += [m for m in (metric, "test/" + metric.split("/", 1)[-1]) if m in df]
    shown += ["time_s"] if "time_s" in df else []
    trials = df.sort_values("number", kind="stable") if "number" in df else df
    blocks += [Heading(3, "Trials"), _frame_table(trials[list(dict.fromkeys(shown))])]

    if "error" in df:
        failed = df[df["error"].notna() & (df["error"].astype(str).str.strip() != "")]
        if len(failed):
            cols = [c for c in ("number", "state") if c in df]
            rows = [[*(fmt(r[c]) for c in cols), _clip(str(r["error"]))] for _, r in failed.iterrows()]
            numeric = [c == "number" for c in cols] + [False]
            blocks += [Heading(3, "Failed trials"), Table([*cols, "error"], rows, numeric, wrap_text=True)]
    if (folder / "winners.csv").is_file():
        blocks += [Heading(3, "Winners"), _frame_table(_read_csv(folder / "winners.csv"))]
    if metric is not None and axes:
        plot_df = df[[*axes, metric]]
        paths = plot_results(plot_df, fig_dir, metric=metric, root=folder, kinds=("metric_by",))
        if paths:
            better = "lower" if mode == "min" else "higher"
            blocks += [Heading(3, "Figures"), Text(f"{metric}: {better} is better.", note=True)]
            blocks += _figure_blocks(paths, f"sweep {name}")
    return blocks


def overview(df: pd.DataFrame, root: Path, title: str) -> list[Block]:
    """The page's header: title, root, date, tinct version, and the runs per task and status."""
    from tinct import __version__

    when = datetime.now().isoformat(timespec="seconds")
    blocks: list[Block] = [
        Heading(1, title),
        Text(f"Root: {root.resolve()}. Generated {when} by tinct {__version__}."),
    ]
    if df.empty:
        return [*blocks, Text("No run directories found.")]
    rows = []
    for task, sub in df.groupby(df["task"].fillna("(no task)"), sort=True):
        fin = int((sub["status"] == "finished").sum())
        rows.append([str(task), str(fin), str(len(sub) - fin), str(len(sub))])
    fin = int((df["status"] == "finished").sum())
    rows.append(["all", str(fin), str(len(df) - fin), str(len(df))])
    return [*blocks, Table(["task", "finished", "unfinished", "runs"], rows, [False, True, True, True])]
