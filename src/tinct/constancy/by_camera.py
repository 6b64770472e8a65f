"""Colour constancy across cameras: leave one camera out, and k-fold within each camera, side by side.

On a folder of camera folders (layout ``cameras`` of :mod:`tinct.constancy.layouts`, NUS-8 as
``nus8_64/<camera>/``) two protocols answer two questions:

- **by camera** (:func:`tinct.constancy.crossval.crossval` with ``by_camera=True``): train on all cameras but
  one, test on that one. A camera's spectral sensitivities shift every illuminant, so this measures
  whether the estimator separates the illuminant from the camera and the content (log input, contrastive
  pretraining).
- **per camera** (:func:`crossval_per_camera`): an ordinary k-fold cross-validation inside each camera
  folder with its ``folds.csv``, the protocol of published NUS-8 tables; the summary figure is each
  statistic averaged over cameras.

```
OUT/
  camera-<name>/  cv_errors.csv  cv_metrics.json  figures/     leave one camera out (see crossval)
  per_camera/<name>/                                           a k-fold crossval folder per camera
  per_camera/per_camera.json, per_camera.csv                   per-camera statistics, mean over cameras
  by_camera.csv, by_camera.md                                  Camera | N | By-camera ... | Per-camera ...
```

Both resume like :func:`~tinct.constancy.crossval.crossval`: rerun with the same ``OUT``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tinct.constancy.crossval import crossval, mean_over
from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.config import ExperimentConfig
from tinct.core.exceptions import ConfigError, DataError
from tinct.engine.experiments import with_updates

__all__ = [
    "CameraResults",
    "camera_table",
    "crossval_cameras",
    "crossval_per_camera",
    "format_camera_table",
]

_STATS = ("mean", "median", "trimean", "best25", "worst25")
MEAN_ROW = "mean over cameras"


def _cameras_of(cfg: ExperimentConfig, data: str | os.PathLike[str]) -> list[str]:
    from tinct.constancy.layouts import open_constancy

    d = cfg.data
    source = open_constancy(data, d.layout, d.black_level, d.saturation)
    if not source.cameras:
        raise DataError(
            f"{data}: per-camera cross-validation needs a folder of camera folders (layout 'cameras'), "
            f"got layout {source.layout!r}"
        )
    return source.cameras


def _in_camera(cfg: ExperimentConfig, camera: str) -> ExperimentConfig:
    """``cfg`` renamed for one camera, reading the camera's own folder (never layout ``cameras``)."""
    updates: dict[str, Any] = {"name": f"{cfg.name}-{camera}"}
    if cfg.data.layout == "cameras":
        updates["data.layout"] = "auto"
    return with_updates(cfg, updates)


def crossval_per_camera(
    cfg: ExperimentConfig,
    data: str | os.PathLike[str],
    folds: int | None = None,
    out: str | os.PathLike[str] | None = None,
    pretrain_cfg: ExperimentConfig | None = None,
    progress: bool = True,
    *,
    updates: Mapping[str, Any] | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """k-fold cross-validation inside each camera folder of ``data``, into ``OUT/<camera>/``.

    Args:
        cfg: an illuminant experiment config (as for :func:`~tinct.constancy.crossval.crossval`); each
            camera's runs are named ``<cfg.name>-<camera>-fold<k>``.
        data: a folder of camera folders.
        folds: folds per camera; ``None`` takes each camera's ``folds.csv`` (else 3 seeded random folds).
        out: output folder (default ``<cfg.output_dir>/<cfg.name>-per-camera-<timestamp>``); pass an
            existing one to resume.
        pretrain_cfg: contrastive pretraining per fold (on that camera's training folds only).
        progress: print one line per fold.
        updates: dotted-key changes applied to every fold's config.
        figures: draw each camera's ``figures/``.

    Returns:
        The content of ``OUT/per_camera.json``: ``cameras``, ``per_camera`` (``{name: pooled statistics
        of that camera's cross-validation, with n, folds, epochs}``), ``mean_over_cameras`` (each
        statistic averaged over cameras: the summary figure) and ``n`` (all images). ``OUT/per_camera.csv``
        has one row per camera.

    Raises:
        DataError: ``data`` is not a folder of camera folders, or a camera's data are invalid.
        ConfigError: as :func:`~tinct.constancy.crossval.crossval`, for any camera.
    """
    cameras = _cameras_of(cfg, data)
    if out is None:
        out = Path(cfg.output_dir) / f"{cfg.name}-per-camera-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out = Path(out)
    per: dict[str, Any] = {}
    for camera in cameras:
        pre = _in_camera(pretrain_cfg, camera) if pretrain_cfg is not None else None
        stats = crossval(
            _in_camera(cfg, camera), Path(data) / camera, folds, out / camera, pre, progress,
            updates=updates, figures=figures,
        )  # fmt: skip
        per[camera] = {k: v for k, v in stats.items() if k != "per_fold"}
    summary = {
        "split_by": "fold_within_camera",
        "cameras": cameras,
        "per_camera": per,
        "mean_over_cameras": mean_over(per.values()),
        "n": int(sum(s["n"] for s in per.values())),
    }
    rows = [
        {"camera": c, "n": s["n"], "folds": s["folds"], **{k: s[k] for k in _STATS}} for c, s in per.items()
    ]
    atomic_write_json(out / "per_camera.json", summary)
    atomic_write_text(out / "per_camera.csv", pd.DataFrame(rows).to_csv(index=False, float_format="%.6f"))
    return summary


def camera_table(
    by_camera: Mapping[str, Any] | None = None, per_camera: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """One row per camera plus a last ``mean over cameras`` row: ``Camera | N`` then the mean and median
    angular error (degrees) of leave-one-camera-out (``By-camera ...``) and of per-camera k-fold
    (``Per-camera ...``), for whichever of the two is given.

    Args:
        by_camera: :func:`~tinct.constancy.crossval.crossval`'s result with ``by_camera=True``.
        per_camera: :func:`crossval_per_camera`'s result.

    Example:
        >>> by = {"per_camera": {"A": {"n": 3, "mean": 4.0, "median": 3.0}}, "mean_over_cameras": {"mean": 4.0, "median": 3.0}}
        >>> camera_table(by_camera=by).columns.tolist()
        ['Camera', 'N', 'By-camera mean', 'By-camera median']
    """
    parts = [
        (label, r) for label, r in (("By-camera", by_camera), ("Per-camera", per_camera)) if r is not None
    ]
    if not parts:
        raise ValueError("camera_table: give by_camera, per_camera or both")
    cameras = list(parts[0][1]["per_camera"])
    for label, r in parts:
        if list(r["per_camera"]) != cameras:
            raise ValueError(f"camera_table: {label} has cameras {list(r['per_camera'])}, expected {cameras}")
    counts = {c: int(parts[0][1]["per_camera"][c]["n"]) for c in cameras}
    counts[MEAN_ROW] = sum(counts.values())
    rows = []
    for camera in [*cameras, MEAN_ROW]:
        row: dict[str, Any] = {"Camera": camera, "N": counts[camera]}
        for label, r in parts:
            s = r["mean_over_cameras"] if camera == MEAN_ROW else r["per_camera"][camera]
            row[f"{label} mean"] = float(s["mean"])
            row[f"{label} median"] = float(s["median"])
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "|".join("---:" for _ in cols[1:]) + "|"]
    for _, row in table.iterrows():
        cells = [str(row["Camera"]), str(int(row["N"]))] + [f"{float(row[c]):.2f}" for c in cols[2:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_camera_table(table: pd.DataFrame, title: str | None = None) -> Any:
    """A rich ``Table`` of :func:`camera_table` (2 decimals, degrees; the mean row set off by a line)."""
    from rich.table import Table

    t = Table(title=title)
    for c in table.columns:
        t.add_column(str(c), justify="left" if c == "Camera" else "right")
    for i, (_, row) in enumerate(table.iterrows()):
        cells = [str(row["Camera"]), str(int(row["N"]))] + [f"{float(row[c]):.2f}" for c in table.columns[2:]]
        t.add_row(*cells, end_section=i == len(table) - 2)
    return t


@dataclass
class CameraResults:
    """What :func:`crossval_cameras` ran and wrote.

    Attributes:
        out: the output folder (``by_camera.csv`` and ``by_camera.md`` are there).
        table: :func:`camera_table` of the protocols that ran.
        by_camera: leave-one-camera-out ``cv_metrics.json`` content, or None.
        per_camera: per-camera k-fold ``per_camera.json`` content, or None.
    """

    out: Path
    table: pd.DataFrame
    by_camera: dict[str, Any] | None = None
    per_camera: dict[str, Any] | None = None


def crossval_cameras(
    cfg: ExperimentConfig,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    by_camera: bool = True,
    per_camera: bool = False,
    folds: int | None = None,
    pretrain_cfg: ExperimentConfig | None = None,
    progress: bool = True,
    updates: Mapping[str, Any] | None = None,
    figures: bool = True,
) -> CameraResults:
    """Leave-one-camera-out into ``OUT`` and / or per-camera k-fold into ``OUT/per_camera``, and the table
    of both (``OUT/by_camera.csv``, ``OUT/by_camera.md``): ``tinct crossval --by-camera --per-camera``.

    Args:
        cfg, pretrain_cfg, progress, updates, figures: as for :func:`~tinct.constancy.crossval.crossval`.
        data: a folder of camera folders.
        out: output folder (default ``<cfg.output_dir>/<cfg.name>-cv-<timestamp>``); pass an existing one to
            resume, with either or both protocols.
        by_camera: run leave-one-camera-out.
        per_camera: run k-fold within each camera.
        folds: folds per camera for ``per_camera``; with ``by_camera`` alone it must be None or the number
            of cameras (one fold per camera).

    Raises:
        ConfigError: neither protocol asked for, or a bad ``folds``.
        DataError: ``data`` is not a folder of at least 2 camera folders.
    """
    if not (by_camera or per_camera):
        raise ConfigError("crossval_cameras: ask for by_camera, per_camera or both")
    if out is None:
        out = Path(cfg.output_dir) / f"{cfg.name}-cv-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out = Path(out)
    common: dict[str, Any] = {"updates": updates, "figures": figures}
    by = per = None
    if by_camera:
        k = None if per_camera else folds
        by = crossval(cfg, data, k, out, pretrain_cfg, progress, by_camera=True, **common)
    if per_camera:
        per = crossval_per_camera(cfg, data, folds, out / "per_camera", pretrain_cfg, progress, **common)
    table = camera_table(by, per)
    atomic_write_text(out / "by_camera.csv", table.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(out / "by_camera.md", _markdown(table))
    return CameraResults(out, table, by, per)
