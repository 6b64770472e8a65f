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

Sections: the header (root, date, tinct version, runs per task and status); per task the study-style table
its class declares (:attr:`tinct.engine.task.Task.report_table`; a table of every metric for a task without
one or not installed; ranked by the validation ``Task.monitor``, shown beside the test columns), the table
of its runs sorted by the main validation metric (``Task.monitor``) and the figures of
:func:`tinct.engine.results_plots.plot_results`; then every study and every sweep.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from tinct.core.exceptions import RunDirError
from tinct.engine.report.collect import (
    find_studies_and_sweeps,
    overview,
    study_section,
    sweep_section,
    task_section,
)
from tinct.engine.report.render import Block, render_html, render_md
from tinct.engine.summary import summarize_runs

__all__ = ["write_report"]


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
    ``sweep.yaml`` / ``results.csv`` / ``winners.csv`` of sweeps); nothing is trained or evaluated. The
    tasks named by the runs are looked up in :data:`tinct.engine.task.TASKS` (importing their modules).

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
    studies, sweeps = find_studies_and_sweeps(base)

    def build(fig_dir: Path) -> list[Block]:
        blocks = overview(df, base, title)
        if not df.empty:
            tasks = df["task"].fillna("(no task)")
            for task in sorted(tasks.unique(), key=str):
                sub = df[tasks == task]
                blocks += task_section(
                    str(task), sub, base, fig_dir / f"task-{_slug(str(task))}", bool(sweeps)
                )
        for folder in studies:
            blocks += study_section(folder, base)
        for k, folder in enumerate(sweeps):
            blocks += sweep_section(folder, base, fig_dir / f"sweep-{k:02d}-{_slug(folder.name)}")
        return blocks

    if fmt == "md":
        fig_dir = out.parent / f"{out.stem}_figures"
        text = render_md(build(fig_dir), out, fig_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="tinct-report-") as tmp:
            text = render_html(build(Path(tmp)), title)
    return atomic_write_text(out, text)
