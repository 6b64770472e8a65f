"""``tinct report``: one page about every run, study and sweep under a folder, made from the files alone.

```
ROOT/
  .../RUN/                          run directories (tinct.engine.run_dir, tinct.engine.summary)
  .../STUDY/study.csv, study.md     a study (tinct study ...): its table, its text and figures/*.png
  .../SWEEP/sweep.yaml, results.csv a sweep: one row per trial (state, parameters, metrics, error),
            winners.csv             and its best trials when it wrote them
```

Written::

    OUT.html                 one self-contained file: inline CSS, figures as data: URIs, no scripts, no links
    OUT.md                   Markdown, figures in OUT_figures/ beside it and linked relatively

Sections: the header (root, date, tinct version, runs per task and status); per task its study-style table
(``Type | Epochs | Mean | Median | Trimean | Worst25 | Best25`` for ``illuminant``, ``Model | Epochs | AuC raw
| AuC rebalanced | PSNR | Colourfulness`` for ``colorization``, ``Model | Epochs | ΔE00 mean | median | p90 |
share < 1`` for ``patch``), the table of its runs sorted by the main validation metric and the figures of
:func:`tinct.engine.summary.plot_results`; then every study and every sweep.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinct.core.exceptions import DataError, RunDirError
from tinct.engine.results_plots import plot_results
from tinct.engine.summary import (
    BASE_COLUMNS,
    SKIP_DIRS,
    TRIAL_COLUMNS,
    default_metric,
    metric_mode,
    natural_key,
    read_yaml,
    summarize_runs,
    task_monitor,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TASK_TABLES", "write_report"]


@dataclass(frozen=True)
class TaskTable:
    """The study-style table of one task's runs.

    Attributes:
        title: section heading.
        first: header of the first column (the run's name, or its sweep parameters).
        columns: (header, metric without its ``val/`` or ``test/`` prefix, scale) per number column.
        sort: the metric (without prefix) the rows are sorted by, best first: the task's main metric.
        descending: best first means largest first.
        note: what the numbers are.
    """

    title: str
    first: str
    columns: tuple[tuple[str, str, float], ...]
    sort: str
    descending: bool
    note: str


TASK_TABLES: dict[str, TaskTable] = {
    "illuminant": TaskTable(
        "Constancy table",
        "Type",
        tuple(
            (s.capitalize(), f"angular_{s}", 1.0) for s in ("mean", "median", "trimean", "worst25", "best25")
        ),
        "angular_mean",
        False,
        "angular error in degrees",
    ),
    "colorization": TaskTable(
        "Colorization table",
        "Model",
        (
            ("AuC raw", "auc_raw", 100.0),
            ("AuC rebalanced", "auc_rebalanced", 100.0),
            ("PSNR", "psnr", 1.0),
            ("Colourfulness", "colorfulness", 1.0),
        ),
        "auc_rebalanced",
        True,
        "AuC in %, PSNR in dB",
    ),
    "patch": TaskTable(
        "Patch table",
        "Model",
        (
            ("ΔE00 mean", "de00_mean", 1.0),
            ("median", "de00_median", 1.0),
            ("p90", "de00_p90", 1.0),
            ("share < 1", "share_below_1", 1.0),
        ),
        "de00_mean",
        False,
        "CIEDE2000 colour difference; share < 1: fraction of patches with ΔE00 below 1",
    ),
}
_METRIC_PREFIXES = ("val/", "test/")
# Columns of a sweep's results.csv (tinct.engine.sweep.sweep_results) that are neither axes nor metrics.
_TRIAL_FIXED = ("number", "state", "optional", "epochs", "run_dir", "time_s", "error")
_MAX_ERROR_CHARS = 1000

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.4em}
.wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafa}
td.text{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.9em}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
img{max-width:100%;border:1px solid #eee}figcaption{font-size:.8em;color:#555}
.note{color:#555;font-size:.9em}
"""


# -- the page as blocks, rendered to HTML or Markdown ----------------------------------------------------


@dataclass
class _Heading:
    level: int
    text: str


@dataclass
class _Text:
    text: str
    note: bool = False


@dataclass
class _Table:
    header: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    wrap_text: bool = False  # long free text (error messages)


@dataclass
class _Figure:
    path: Path
    caption: str


_Block = _Heading | _Text | _Table | _Figure


def _missing(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _fmt(v: Any, decimals: int | None = None, metric: bool = False) -> str:
    """A cell: ``-`` when missing, integers as such, floats with ``decimals`` or 4 significant digits (kept
    trailing zeros for metrics, so a column of scores lines up)."""
    import numpy as np

    if _missing(v):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if decimals is not None:
            return f"{v:.{decimals}f}"
        return f"{v:#.4g}" if metric else f"{v:.4g}"
    return str(v)


def _html_table(t: _Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = []
    for row in t.rows:
        cells = []
        for cell, num in zip(row, t.numeric, strict=True):
            cls = ' class="num"' if num else ' class="text"' if t.wrap_text else ""
            cells.append(f"<td{cls}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table></div>"
    )


def _render_html(blocks: Sequence[_Block], title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
    ]
    for b in blocks:
        if isinstance(b, _Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, _Text):
            cls = ' class="note"' if b.note else ""
            parts.append(f"<p{cls}>{html.escape(b.text)}</p>")
        elif isinstance(b, _Table):
            parts.append(_html_table(b))
        else:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            cap = html.escape(b.caption)
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_escape(text: str) -> str:
    # Markdown renders raw HTML: a run called <b>x</b> must read as written, and | would split a cell.
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _render_md(blocks: Sequence[_Block], out: Path, fig_dir: Path) -> str:
    lines: list[str] = []
    copied = 0
    for b in blocks:
        if isinstance(b, _Heading):
            lines += ["#" * b.level + " " + _md_escape(b.text), ""]
        elif isinstance(b, _Text):
            lines += [("*" + _md_escape(b.text) + "*") if b.note else _md_escape(b.text), ""]
        elif isinstance(b, _Table):
            lines.append("| " + " | ".join(_md_escape(h) for h in b.header) + " |")
            lines.append("|" + "|".join("---:" if n else "---" for n in b.numeric) + "|")
            lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        else:
            path = b.path
            if fig_dir not in path.parents:  # a study's own figure: copied, so the report folder stands alone
                copied += 1
                path = fig_dir / "studies" / f"{copied:02d}-{path.name}"
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(b.path, path)
            rel = Path(os.path.relpath(path, out.parent)).as_posix()
            caption = _md_escape(b.caption).replace("[", "(").replace("]", ")")
            lines += [f"![{caption}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


# -- sections -------------------------------------------------------------------------------------------


def _find(root: Path) -> tuple[list[Path], list[Path]]:
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


def _labels(sub: pd.DataFrame) -> list[str]:
    """A run's name in a task table: its sweep parameters when it has some, else its config name; runs
    that would share a label get their path appended."""
    params = [c for c in sub.columns if c.startswith("param:")]
    labels = []
    for _, row in sub.iterrows():
        given = [f"{c[6:]}={_fmt(row[c])}" for c in params if not _missing(row[c])]
        labels.append(", ".join(given) if given else _fmt(row.get("name")))
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return [f"{lab} ({run})" if counts[lab] > 1 else lab for lab, run in zip(labels, sub["run"], strict=True)]


def _task_table(sub: pd.DataFrame, spec: TaskTable) -> list[_Block]:
    """The study-style table: test metrics where a run has them, else validation metrics; 2 decimals."""
    import numpy as np

    rows, on_val = [], 0
    for label, (_, r) in zip(_labels(sub), sub.iterrows(), strict=True):
        split = "test" if not _missing(r.get(f"test/{spec.sort}")) else "val"
        if _missing(r.get(f"{split}/{spec.sort}")):
            continue
        on_val += split == "val"
        nums = [r.get(f"{split}/{m}", np.nan) * scale for _, m, scale in spec.columns]
        key = float(r[f"{split}/{spec.sort}"])
        rows.append((-key if spec.descending else key, label, _fmt(r.get("epochs")), nums))
    if not rows:
        return []
    rows.sort(key=lambda t: t[0])
    split_note = "test split" + (
        f" (validation split for the {on_val} run{'s' if on_val > 1 else ''} without test metrics)"
        if on_val
        else ""
    )
    return [
        _Heading(3, spec.title),
        _Text(f"{spec.note}; {split_note}.", note=True),
        _Table(
            [spec.first, "Epochs", *(h for h, _, _ in spec.columns)],
            [[label, epochs, *(_fmt(v, 2) for v in nums)] for _, label, epochs, nums in rows],
            [False, True, *([True] * len(spec.columns))],
        ),
    ]


def _figure_blocks(paths: Sequence[Path], what: str) -> list[_Block]:
    captions = {"learning_curves.png": "learning curves", "error_distribution.png": "error distribution"}
    out: list[_Block] = []
    for p in paths:
        cap = captions.get(p.name, p.stem.replace("metric_by_", "metric by "))
        out.append(_Figure(p, f"{what}: {cap}"))
    return out


def _task_section(task: str, sub: pd.DataFrame, root: Path, fig_dir: Path, drop_params: bool) -> list[_Block]:
    monitor, mode = task_monitor(task)
    sub = sub.dropna(axis=1, how="all")
    blocks: list[_Block] = [_Heading(2, f"Task: {task}")]
    finished = int((sub["status"] == "finished").sum())
    plural = "s" if len(sub) != 1 else ""
    has_monitor = monitor in sub
    better = "lower" if mode == "min" else "higher"
    intro = f"{len(sub)} run{plural} ({finished} finished). Main metric: {monitor} ({better} is better)"
    if has_monitor:
        order = sub[monitor].astype(float)
        best = order.idxmin() if mode == "min" else order.idxmax()
        intro += f"; best: {sub.loc[best, 'run']} ({_fmt(sub.loc[best, monitor], metric=True)})"
        sub = sub.assign(_key=order if mode == "min" else -order).sort_values(
            ["_key", "run"], na_position="last", kind="stable"
        )
        sub = sub.drop(columns="_key")
    blocks.append(_Text(intro + "."))
    if task in TASK_TABLES:
        blocks += _task_table(sub, TASK_TABLES[task])

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
        [_fmt(r[c], 1) if c == "train_time_s" else _fmt(r[c], metric=c in metrics) for c in cols]
        for _, r in sub.iterrows()
    ]
    numeric = [c in metrics or c in {"epochs", "train_time_s"} for c in cols]
    blocks += [_Heading(3, "Runs"), _Table(header, rows, numeric)]

    scored = [c for c in _metric_columns(sub) if sub[c].notna().any()]
    if scored:
        plot_df = sub.drop(columns=[c for c in sub.columns if c.startswith("param:")]) if drop_params else sub
        paths = plot_results(plot_df, fig_dir, metric=monitor if monitor in scored else None, root=root)
        if paths:
            blocks += [_Heading(3, "Figures"), *_figure_blocks(paths, task)]
    return blocks


def _frame_table(df: pd.DataFrame, decimals: int | None = None) -> _Table:
    import pandas as pd

    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df]
    rows = [
        [
            _fmt(
                v,
                decimals if num and pd.api.types.is_float_dtype(df[c]) else None,
                metric=str(c).startswith(_METRIC_PREFIXES),
            )
            for c, v, num in zip(df.columns, r, numeric, strict=True)
        ]
        for r in df.itertuples(index=False)
    ]
    return _Table([str(c) for c in df.columns], rows, numeric)


def _study_section(folder: Path, root: Path) -> list[_Block]:
    blocks: list[_Block] = [_Heading(2, f"Study: {_rel(folder, root)}")]
    try:
        text = (folder / "study.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{folder / 'study.md'}: unreadable ({err})") from err
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("|"):
            blocks.append(_Text(line.lstrip("#").strip()))
    blocks.append(_frame_table(_read_csv(folder / "study.csv"), decimals=2))
    figures = sorted((folder / "figures").glob("*.png")) if (folder / "figures").is_dir() else []
    blocks += [_Figure(p, f"{_rel(folder, root)}: {p.stem.replace('_', ' ')}") for p in figures]
    return blocks


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _sweep_section(folder: Path, root: Path, fig_dir: Path) -> list[_Block]:
    spec = read_yaml(folder / "sweep.yaml")
    name = spec["name"] if isinstance(spec.get("name"), str) else folder.name
    df = _read_csv(folder / "results.csv")
    blocks: list[_Block] = [_Heading(2, f"Sweep: {name} ({_rel(folder, root)})")]
    summary = f"{len(df)} trials"
    if "state" in df:
        counts = df["state"].fillna("unknown").astype(str).value_counts()
        summary += ": " + ", ".join(f"{k} {v}" for k, v in counts.items())
    blocks.append(_Text(summary + "."))

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
    blocks += [_Heading(3, "Trials"), _frame_table(trials[list(dict.fromkeys(shown))])]

    if "error" in df:
        failed = df[df["error"].notna() & (df["error"].astype(str).str.strip() != "")]
        if len(failed):
            cols = [c for c in ("number", "state") if c in df]
            rows = [[*(_fmt(r[c]) for c in cols), _clip(str(r["error"]))] for _, r in failed.iterrows()]
            numeric = [c == "number" for c in cols] + [False]
            blocks += [_Heading(3, "Failed trials"), _Table([*cols, "error"], rows, numeric, wrap_text=True)]
    if (folder / "winners.csv").is_file():
        blocks += [_Heading(3, "Winners"), _frame_table(_read_csv(folder / "winners.csv"))]
    if metric is not None and axes:
        plot_df = df[[*axes, metric]]
        paths = plot_results(plot_df, fig_dir, metric=metric, root=folder, kinds=("metric_by",))
        if paths:
            better = "lower" if mode == "min" else "higher"
            blocks += [_Heading(3, "Figures"), _Text(f"{metric}: {better} is better.", note=True)]
            blocks += _figure_blocks(paths, f"sweep {name}")
    return blocks


def _overview(df: pd.DataFrame, root: Path, title: str) -> list[_Block]:
    from tinct import __version__

    when = datetime.now().isoformat(timespec="seconds")
    blocks: list[_Block] = [
        _Heading(1, title),
        _Text(f"Root: {root.resolve()}. Generated {when} by tinct {__version__}."),
    ]
    if df.empty:
        return [*blocks, _Text("No run directories found.")]
    rows = []
    for task, sub in df.groupby(df["task"].fillna("(no task)"), sort=True):
        fin = int((sub["status"] == "finished").sum())
        rows.append([str(task), str(fin), str(len(sub) - fin), str(len(sub))])
    fin = int((df["status"] == "finished").sum())
    rows.append(["all", str(fin), str(len(df) - fin), str(len(df))])
    return [*blocks, _Table(["task", "finished", "unfinished", "runs"], rows, [False, True, True, True])]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def write_report(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str = "html",
    title: str | None = None,
) -> Path:
    """Write a report of every run, study and sweep under ``root`` (see the module docstring).

    Only files are read (run directories, ``study.csv`` / ``study.md`` / ``figures/*.png`` of studies,
    ``sweep.yaml`` / ``results.csv`` / ``winners.csv`` of sweeps); nothing is trained or evaluated.

    Args:
        root: a folder of runs, studies and sweeps (any depth), or one run directory.
        out: the report file (``.html`` or ``.md``); written atomically, parent folders created.
        fmt: ``"html"``: one self-contained file (inline CSS, figures embedded as base64 PNG ``data:``
            URIs, no scripts, no references to other files); ``"md"``: Markdown, its figures written to
            ``<stem>_figures/`` beside ``out`` and linked relatively (figures of an earlier report there
            are overwritten, not deleted).
        title: the page title (default ``tinct report: <root folder name>``).

    Returns:
        The path of the report.

    Raises:
        UnknownNameError: ``fmt`` is not ``"html"`` or ``"md"``.
        RunDirError: ``root`` is not a folder, or a run's file cannot be read (the file is named).
        DataError: a study's or sweep's table cannot be read (the file is named).
    """
    from tinct.core.atomic import atomic_write_text
    from tinct.core.checks import check_choice

    check_choice(fmt, ("html", "md"), "report format")
    base = Path(root)
    if not base.is_dir():
        raise RunDirError(f"{base}: no such folder")
    out = Path(out)
    title = title or f"tinct report: {base.resolve().name}"
    df = summarize_runs(base)
    studies, sweeps = _find(base)

    def build(fig_dir: Path) -> list[_Block]:
        blocks = _overview(df, base, title)
        if not df.empty:
            tasks = df["task"].fillna("(no task)")
            for task in sorted(tasks.unique(), key=str):
                sub = df[tasks == task]
                blocks += _task_section(
                    str(task), sub, base, fig_dir / f"task-{_slug(str(task))}", bool(sweeps)
                )
        for folder in studies:
            blocks += _study_section(folder, base)
        for k, folder in enumerate(sweeps):
            blocks += _sweep_section(folder, base, fig_dir / f"sweep-{k:02d}-{_slug(folder.name)}")
        return blocks

    if fmt == "md":
        fig_dir = out.parent / f"{out.stem}_figures"
        text = _render_md(build(fig_dir), out, fig_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="tinct-report-") as tmp:
            text = _render_html(build(Path(tmp)), title)
    return atomic_write_text(out, text)
