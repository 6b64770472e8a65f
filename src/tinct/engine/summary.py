"""Summaries of many run directories: one table row per run, and the figures that compare runs.

```
ROOT/                      a run, a study, a sweep or any tree of them
  .../RUN/config.yaml      a folder holding one is a run; checkpoints/, figures/ and hidden folders are not
                           searched, runs inside runs (a fold's pretraining) are found
  .../RUN/metrics.json     final metrics: a run without it is unfinished
  .../RUN/env.json         when the run started
  .../RUN/trial.json       sweep trials: sweep name, trial number and state, the trial's parameters
  .../RUN/metrics.csv      per-epoch metrics (learning curves; epochs of an unfinished run)
  .../RUN/errors.csv       per-image errors of a cross-validation fold (error distributions)
```

:func:`summarize_runs` makes the table: ``run, task, name, status, epochs, best_epoch, train_time_s,
started``; for sweep trials ``sweep, trial, trial_state`` and ``param:<axis>``; the config values that differ
between runs as dotted keys (``model.backbone``); then every ``val/*`` and ``test/*`` metric.
:func:`tinct.engine.results_plots.plot_results` draws the figures of such a table, or of a sweep's
``results.csv``. A run's main metric is its task's ``monitor`` (:func:`task_class`: the task registry, which
imports the module of each task it is asked about).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tinct.core.exceptions import RunDirError

if TYPE_CHECKING:
    import pandas as pd

    from tinct.engine.task import Task

__all__ = [
    "BASE_COLUMNS",
    "NOT_AXES",
    "SKIP_DIRS",
    "TRIAL_COLUMNS",
    "default_metric",
    "find_runs",
    "metric_mode",
    "natural_key",
    "read_yaml",
    "run_tasks",
    "summarize_runs",
    "task_class",
    "task_monitor",
]

BASE_COLUMNS = ("run", "task", "name", "status", "epochs", "best_epoch", "train_time_s", "started")
TRIAL_COLUMNS = ("sweep", "trial", "trial_state")
SKIP_DIRS = frozenset({"checkpoints", "figures"})
_SKIP_CONFIG = frozenset({"task", "name", "output_dir"})  # task and name have their own columns
# Columns that identify, time or describe the outcome of a run: never an axis to compare a metric along.
NOT_AXES = frozenset(
    {
        *BASE_COLUMNS,
        *TRIAL_COLUMNS,
        "run_dir",
        "number",
        "state",
        "time_s",
        "error",
        "rank",
        "optional",
        "key",
    }
)
_HIGHER_IS_BETTER = ("auc", "psnr", "ssim", "colorfulness", "accuracy", "share_below")

try:
    _YAML_LOADER: Any = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _YAML_LOADER = yaml.SafeLoader


# -- finding and reading runs -------------------------------------------------------------------------


def natural_key(rel: Path) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    """``fold2`` before ``fold10``, ``trial-9`` before ``trial-10``."""
    return tuple(
        tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", part) if t)
        for part in rel.parts
    )


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Every run directory (a folder with a ``config.yaml``) under ``root``, ``root`` itself included.

    The search is recursive and descends into runs (cross-validation folds hold pretraining runs), but not
    into ``checkpoints/``, ``figures/`` or hidden folders.

    Args:
        root: a folder.

    Returns:
        The run folders, sorted by their path below ``root`` (numbers in names in numeric order).

    Raises:
        RunDirError: ``root`` is not a folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise RunDirError(f"{base}: no such folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        if "config.yaml" in filenames:
            found.append(Path(dirpath))
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
    return sorted(found, key=lambda p: natural_key(p.relative_to(base)))


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise RunDirError(f"{path}: unreadable YAML ({err})") from err
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RunDirError(f"{path}: unreadable JSON ({err})") from err
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _csv_rows(path: Path) -> int | None:
    """Data rows of a CSV file (its non-empty lines but the header), None when there is no file."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise RunDirError(f"{path}: unreadable ({err})") from err
    return max(0, sum(1 for line in lines if line.strip()) - 1)


def _cell(value: Any) -> Any:
    """A table cell: scalars as they are, lists and mappings as compact JSON."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = _cell(value)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _read_run(run: Path, root: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(fixed columns and trial parameters, flattened config, metrics) of one run directory."""
    cfg = read_yaml(run / "config.yaml")
    metrics = _read_json(run / "metrics.json") if (run / "metrics.json").is_file() else None
    env = _read_json(run / "env.json") if (run / "env.json").is_file() else {}
    rel = run.relative_to(root).as_posix()
    row: dict[str, Any] = {
        "run": rel if rel else ".",
        "task": cfg.get("task"),
        "name": cfg.get("name"),
        "status": "finished" if metrics is not None else "unfinished",
        "epochs": metrics.get("epochs") if metrics is not None else _csv_rows(run / "metrics.csv"),
        "best_epoch": metrics.get("best_epoch") if metrics is not None else None,
        "train_time_s": metrics.get("train_time_s") if metrics is not None else None,
        "started": env.get("started"),
    }
    if (run / "trial.json").is_file():
        trial = _read_json(run / "trial.json")
        row.update(sweep=trial.get("sweep"), trial=trial.get("number"), trial_state=trial.get("state"))
        params = trial.get("params") or {}
        if not isinstance(params, Mapping):
            raise RunDirError(f"{run / 'trial.json'}: 'params' is not a mapping")
        row.update({f"param:{k}": _cell(v) for k, v in params.items()})
    flat = {k: v for k, v in _flatten(cfg).items() if k not in _SKIP_CONFIG}
    scores = {
        k: f
        for k, v in (metrics or {}).items()
        if k.startswith(("val/", "test/")) and (f := _number(v)) is not None
    }
    return row, flat, scores


def _varying(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Config keys whose value (or presence) differs between runs."""
    keys = sorted({k for c in configs for k in c})
    missing = object()
    out = []
    for key in keys:
        # JSON tells True from 1 and 1 from 1.0, which a set of the raw values would not
        seen = {json.dumps(c.get(key), default=str) if key in c else missing for c in configs}
        if len(seen) > 1:
            out.append(key)
    return out


def summarize_runs(root: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per run directory under ``root``: what it is, how it ended, what differs, what it scored.

    Args:
        root: a folder of runs (any depth), or a run directory.
        out: CSV file to write the table to (atomically); nothing is written when None.

    Returns:
        Columns, in order: ``run`` (path below ``root``, ``.`` for ``root`` itself), ``task``, ``name``,
        ``status`` (``finished`` with a ``metrics.json``, else ``unfinished``), ``epochs`` (rows of
        ``metrics.csv`` for an unfinished run), ``best_epoch``, ``train_time_s``, ``started`` (``env.json``);
        for sweep trials ``sweep``, ``trial``, ``trial_state`` and ``param:<axis>`` (``trial.json``); the
        config values that differ between the runs of the table, as dotted keys (``model.backbone``;
        ``name`` and ``output_dir`` left out, a key one run lacks counts as different); then every
        ``val/*`` and ``test/*`` metric of ``metrics.json``. Empty (with the fixed columns) when ``root``
        holds no run.

    Raises:
        RunDirError: ``root`` is not a folder, or a ``config.yaml``, ``metrics.json``, ``env.json`` or
            ``trial.json`` cannot be read (the message names the file).
    """
    import pandas as pd

    base = Path(root)
    rows, configs, scores = [], [], []
    for run in find_runs(base):
        row, flat, score = _read_run(run, base)
        rows.append(row)
        configs.append(flat)
        scores.append(score)
    varying = _varying(configs)
    trial_cols = [c for c in TRIAL_COLUMNS if any(c in r for r in rows)]
    params = sorted({k for r in rows for k in r if k.startswith("param:")})
    names = {k for s in scores for k in s}
    metric_cols = sorted(k for k in names if k.startswith("val/")) + sorted(
        k for k in names if k.startswith("test/")
    )
    records = [
        {**r, **{k: c.get(k) for k in varying}, **s} for r, c, s in zip(rows, configs, scores, strict=True)
    ]
    df = pd.DataFrame(records, columns=[*BASE_COLUMNS, *trial_cols, *params, *varying, *metric_cols])
    for column in ("epochs", "best_epoch", "trial"):
        if column in df:  # counts stay integers beside the missing values of unfinished runs
            df[column] = pd.to_numeric(df[column], errors="coerce").round().astype("Int64")
    if out is not None:
        from tinct.core.atomic import atomic_write_text

        atomic_write_text(out, df.to_csv(index=False))
    return df


# -- main metric ----------------------------------------------------------------------------------------


def task_class(task: Any) -> type[Task]:
    """The class registered as ``task`` in :data:`tinct.engine.task.TASKS` (importing only its module), or
    the base :class:`~tinct.engine.task.Task` (monitor ``("val/loss", "min")``, no ``report_table``: the
    report's generic table) for a name that is not installed or a missing task."""
    from tinct.engine.task import TASKS, Task

    # ``in`` imports that one entry point; a failed get() would import every task to list the names
    return TASKS.get(task) if isinstance(task, str) and task in TASKS else Task


def task_monitor(task: Any) -> tuple[str, str]:
    """(main validation metric, ``"min"`` or ``"max"``) of a task; ``("val/loss", "min")`` when unknown."""
    cls = task_class(task)
    return cls.monitor, cls.monitor_mode


def metric_mode(metric: str, tasks: Sequence[Any] = ()) -> str:
    """``"max"`` when higher values of ``metric`` are better, else ``"min"``."""
    key = "val/" + metric.split("/", 1)[-1]
    for task in tasks:
        monitor, mode = task_monitor(task)
        if monitor == key:
            return mode
    return "max" if any(w in key for w in _HIGHER_IS_BETTER) else "min"


def run_tasks(df: pd.DataFrame) -> list[Any]:
    return list(dict.fromkeys(df["task"].dropna())) if "task" in df else []


def default_metric(df: pd.DataFrame, metric_cols: Sequence[str]) -> str:
    """The table's main validation metric: its tasks' monitor, else the first ``val/`` column with data."""
    tasks = run_tasks(df)
    if tasks:
        candidates = [task_monitor(t)[0] for t in tasks]
    else:  # a sweep's results.csv names no task: try the monitors of every task, generic val/loss last
        from tinct.engine.task import TASKS

        known = dict.fromkeys(TASKS.get(name).monitor for name in TASKS.names())
        candidates = [m for m in known if m != "val/loss"] + ["val/loss"]
    has_data = [c for c in metric_cols if df[c].notna().any()]
    for c in [*candidates, *(c for c in has_data if c.startswith("val/")), *has_data, *metric_cols]:
        if c in metric_cols and (c in has_data or not has_data):
            return c
    return metric_cols[0]
