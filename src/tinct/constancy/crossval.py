"""k-fold cross-validation of an illuminant estimator on a colour-constancy folder: ``tinct crossval``.

Each fold trains on all other folds for a fixed budget and is scored on its held-out fold with its **last**
checkpoint. Validation is drawn from the training folds (``data.val_fraction``), so the held-out fold is
seen only once, for the score; with ``val_fraction: 0`` the held-out fold doubles as the validation set,
only to draw curves (picking the best epoch on it would let the test images choose the model). Per-image
errors of
all folds are pooled and summarised once with :func:`tinct.engine.statistics.error_statistics`.

```
OUT/
  fold{k}/             a complete run directory (see tinct.engine.run_dir) plus
    errors.csv         image, [camera,] fold, error, pred_r, pred_g, pred_b, true_r, true_g, true_b
    heldout.json       checkpoint scored, number of training and held-out images
    pretrain/          contrastive pretraining on the same training folds (when asked for)
  cv_errors.csv        all folds' rows
  cv_metrics.json      mean, median, trimean, best25, worst25, max, n, folds, per_fold, epochs, ...
  figures/curves.png   training and validation curves of every fold
  figures/error_cdf.png
```

On a folder of camera folders (layout ``cameras``, e.g. NUS-8), ``by_camera=True`` holds out one whole
camera per unit instead of a fold: ``OUT/camera-<name>/`` trains on every other camera (validation drawn
from them too) and is scored on that camera; ``cv_metrics.json`` then adds ``cameras``, ``per_camera``
(statistics of each held-out camera) and ``mean_over_cameras`` (each statistic averaged over cameras).
Errors of a ``cameras`` source carry a ``camera`` column. Per-camera k-fold and the side-by-side table are
in :mod:`tinct.constancy.by_camera`.

A fold whose ``errors.csv`` exists is finished and skipped; one with a ``last.ckpt`` but no errors is
resumed. So an interrupted cross-validation is continued by running the same command again.

A held-out image without an estimate (a zero or non-finite prediction: angular error NaN, written as
``nan``) stops the cross-validation with a :class:`~tinct.core.exceptions.TinctError` naming the fold, the
count and the images, once that fold's ``errors.csv`` is written; no statistics are computed from it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.config import ExperimentConfig
from tinct.core.exceptions import ConfigError, TinctError, some_of
from tinct.engine.experiments import check_same_experiment, ensure_trained, with_updates
from tinct.engine.statistics import error_statistics

__all__ = [
    "ERROR_COLUMNS",
    "crossval",
    "fold_config",
    "format_stats_table",
    "heldout_errors",
    "holdout",
    "mean_over",
    "read_errors",
]

ERROR_COLUMNS = ("image", "fold", "error", "pred_r", "pred_g", "pred_b", "true_r", "true_g", "true_b")


def fold_config(
    cfg: ExperimentConfig,
    data: str | os.PathLike[str],
    fold: int,
    folds: int,
    updates: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """The config that trains on every fold of the folder ``data`` but ``fold`` and holds ``fold`` out.

    Works for any task whose ``data`` section has the constancy fields (``kind``, ``root``, ``fold``,
    ``folds``): the illuminant regression and the contrastive ``illuminant_embedding`` pretraining.
    ``updates`` (dotted keys) are applied in the same validation, so fields that are only valid together
    (``model.freeze`` with ``model.init``) can be set at once.
    """
    return with_updates(
        cfg,
        {
            "name": f"{cfg.name}-fold{fold}",
            "data.kind": "folder",
            "data.root": str(Path(data).resolve()),
            "data.fold": fold,
            "data.folds": folds,
            **(updates or {}),
        },
    )


def _init_from(pretrain_dir: Path) -> dict[str, str]:
    # The last checkpoint, not the best: in cross-validation the pretraining's validation set is the
    # held-out fold, so choosing its best epoch would let the held-out images steer the representation.
    return {"model.init": str(pretrain_dir.resolve() / "checkpoints" / "last.ckpt")}


@torch.no_grad()
def _predict(run_dir: str | os.PathLike[str], checkpoint: str) -> tuple[pd.DataFrame, int | None]:
    from tinct.engine.evaluate import load_task

    task = load_task(run_dir, checkpoint)
    dm = task.build_datamodule()
    dm.setup("test")
    rows: list[pd.DataFrame] = []
    seen = 0
    for batch in dm.test_dataloader():
        out = task.step(batch)
        pred, errors = out["output"].float(), out["errors"].float()
        n = errors.shape[0]
        index = batch["index"] if "index" in batch else torch.arange(seen, seen + n)
        seen += n
        true = batch["illuminant"].float()
        true = true / true.norm(dim=-1, keepdim=True)
        # float64 before writing, so the CSV reads back exactly what the statistics were computed from.
        data = {"index": index.reshape(-1).long().numpy(), "error": errors.double().numpy()}
        for j, c in enumerate("rgb"):
            data[f"pred_{c}"] = pred[:, j].double().numpy()
            data[f"true_{c}"] = true[:, j].double().numpy()
        rows.append(pd.DataFrame(data))
    if not rows:
        raise TinctError(f"{run_dir}: the test set of this run is empty")
    df = pd.concat(rows, ignore_index=True)
    source = getattr(getattr(dm, "test_set", None), "source", None)
    names = source.table["image"].astype(str).to_numpy() if source is not None else None
    df.insert(0, "image", names[df["index"]] if names is not None else df["index"].astype(str))
    if source is not None and source.cameras:
        df.insert(1, "camera", source.table["camera"].astype(str).to_numpy()[df["index"]])
    train_set = getattr(dm, "train_set", None)
    n_train = len(train_set) if train_set is not None else None  # type: ignore[arg-type]
    return df, n_train


def _to_csv(df: pd.DataFrame) -> str:
    # 17 significant digits round-trip any float64. Pandas' default formatting follows numpy's print
    # options, which colour-science switches to the 12-digit legacy mode when it is imported.
    return df.to_csv(index=False, float_format="%.17g", na_rep="nan")


def _check_errors(df: pd.DataFrame, where: str) -> None:
    """Raise if some held-out errors are NaN or inf (no estimate), naming how many and which images."""
    bad = ~np.isfinite(df["error"].to_numpy(dtype=np.float64))
    if bad.any():
        names = df["image"].astype(str)[bad].tolist()
        raise TinctError(
            f"{where}: {int(bad.sum())} of {len(df)} held-out images have no illuminant estimate "
            f"(angular error NaN: a zero or non-finite prediction): {some_of(names)}"
        )


def read_errors(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an ``errors.csv`` / ``cv_errors.csv`` back exactly as written.

    Image names stay strings (``00012`` is a name, not 12), and the floats are those the statistics were
    computed from (written with 17 significant digits).
    """
    return pd.read_csv(path, dtype={"image": str})


def heldout_errors(run_dir: str | os.PathLike[str], checkpoint: str = "last") -> pd.DataFrame:
    """Per-image angular errors of a trained run on its own test set (the held-out fold of a fold run).

    Args:
        run_dir: a finished (or at least checkpointed) run directory.
        checkpoint: ``"last"`` (cross-validation's choice: no selection on the held-out data) or ``"best"``.

    Returns:
        Columns ``image`` (as listed by the dataset, else the index), ``index`` (row of the dataset
        table, or the position in the test set when the data module does not say), ``error`` (degrees,
        in [0, 180]), ``pred_r, pred_g, pred_b`` and ``true_r, true_g, true_b`` (unit-norm camera RGB).
    """
    return _predict(run_dir, checkpoint)[0]


@dataclass
class _Unit:
    """One train-and-score job: a fold of a cross-validation, or the single split of a hold-out run."""

    key: str
    fold: int
    cfg: ExperimentConfig
    pretrain_cfg: ExperimentConfig | None = None
    pretrain_dir: Path | None = None
    expected: np.ndarray | None = None  # held-out dataset rows (folds only)
    n_train: int | None = None
    camera: str | None = None  # the held-out camera of a leave-one-camera-out unit

    @property
    def label(self) -> str:
        if self.camera is not None:
            return f"camera {self.camera}"
        return f"fold {self.fold}" if self.expected is not None else self.key


def _epoch_time(metrics_csv: Path) -> tuple[int, float]:
    if not metrics_csv.is_file():
        return 0, 0.0
    df = pd.read_csv(metrics_csv)
    seconds = float(df["epoch_time_s"].sum()) if "epoch_time_s" in df else 0.0
    return len(df), seconds


def _run_unit(unit: _Unit, out: Path, progress: bool) -> tuple[pd.DataFrame, str]:
    fold_dir = out / unit.key
    errors_csv, info = fold_dir / "errors.csv", fold_dir / "heldout.json"
    if errors_csv.is_file():
        from tinct.engine.run_dir import RunDir

        # a finished fold of another experiment (an edited config, the same --out) is not reused
        check_same_experiment(RunDir(fold_dir), unit.cfg)
        if unit.pretrain_cfg is not None and unit.pretrain_dir is not None:
            check_same_experiment(RunDir(unit.pretrain_dir), unit.pretrain_cfg)
        if unit.n_train is None and info.is_file():
            unit.n_train = json.loads(info.read_text()).get("n_train")
        return read_errors(errors_csv), "done before"
    cfg = unit.cfg
    if unit.pretrain_cfg is not None:
        assert unit.pretrain_dir is not None
        t0 = time.perf_counter()
        pre = ensure_trained(unit.pretrain_cfg, unit.pretrain_dir, quiet=not progress)
        if progress and pre != "done":
            print(
                f"{unit.pretrain_cfg.name}: pretraining {pre} in {time.perf_counter() - t0:.1f} s "
                f"-> {unit.pretrain_dir}",
                flush=True,
            )
    how = ensure_trained(cfg, fold_dir, quiet=not progress)
    df, n_train = _predict(fold_dir, "last")
    if unit.expected is not None:
        got = np.sort(df["index"].to_numpy())
        if not np.array_equal(got, np.sort(unit.expected)):
            raise TinctError(
                f"{fold_dir}: the data module's held-out set ({len(got)} images) is not {unit.label} "
                f"({len(unit.expected)} images); cross-validation would leak or drop images"
            )
    if unit.n_train is None:
        unit.n_train = n_train
    columns = list(ERROR_COLUMNS)
    if "camera" in df:
        columns.insert(1, "camera")
    df = df.assign(fold=unit.fold)[columns]
    atomic_write_json(info, {"checkpoint": "last", "n_train": unit.n_train, "n_heldout": len(df)})
    # errors.csv last: its presence marks the fold as finished
    atomic_write_text(errors_csv, _to_csv(df))
    return df, how


def _summarise(units: Sequence[_Unit], frames: Sequence[pd.DataFrame], out: Path) -> dict[str, Any]:
    pooled = pd.concat(frames, ignore_index=True)
    stats: dict[str, Any] = error_statistics(pooled["error"].to_numpy())
    per_fold: dict[str, Any] = {}
    images = seconds = pre_seconds = 0.0
    epochs: list[int] = []
    for unit, df in zip(units, frames, strict=True):
        n_epochs, t = _epoch_time(out / unit.key / "metrics.csv")
        epochs.append(n_epochs)
        seconds += t
        images += (unit.n_train or 0) * n_epochs
        entry: dict[str, Any] = {
            **error_statistics(df["error"].to_numpy()),
            "epochs": n_epochs,
            "train_seconds": round(t, 3),
        }
        if unit.pretrain_dir is not None:
            p_epochs, p_t = _epoch_time(unit.pretrain_dir / "metrics.csv")
            entry.update(pretrain_epochs=p_epochs, pretrain_seconds=round(p_t, 3))
            pre_seconds += p_t
        per_fold[str(unit.fold)] = entry
    stats.update(
        folds=len(units) if units[0].expected is not None else 0,
        epochs=max(epochs) if epochs else 0,
        train_seconds=round(seconds, 3),
        images_per_second=round(images / seconds, 2) if seconds > 0 and images > 0 else None,
        per_fold=per_fold,
    )
    if any(u.pretrain_dir is not None for u in units):
        stats["pretrain_epochs"] = max(per_fold[str(u.fold)].get("pretrain_epochs", 0) for u in units)
        stats["pretrain_seconds"] = round(pre_seconds, 3)
    if all(u.camera is not None for u in units):
        per_camera = {str(u.camera): {**per_fold[str(u.fold)], "n_train": u.n_train} for u in units}
        stats.update(
            split_by="camera",
            cameras=list(per_camera),
            per_camera=per_camera,
            mean_over_cameras=mean_over(per_camera.values()),
        )
    atomic_write_text(out / "cv_errors.csv", _to_csv(pooled))
    atomic_write_json(out / "cv_metrics.json", stats)
    return stats


def _figures(units: Sequence[_Unit], frames: Sequence[pd.DataFrame], out: Path, name: str) -> None:
    from tinct.constancy.plots import plot_error_cdf, plot_fold_curves

    val_label = "held-out fold" if units[0].expected is not None else "validation split"
    if units[0].camera is not None:
        val_label = "held-out camera"
    if units[0].expected is not None and units[0].cfg.data.val_fraction > 0:
        val_label = "validation (inside the training folds)"
    plot_fold_curves(
        {name: [out / u.key / "metrics.csv" for u in units]},
        out / "figures" / "curves.png",
        title="mean angular error by epoch",
        val_label=val_label,
    )
    plot_error_cdf({name: pd.concat(frames)["error"].to_numpy()}, out / "figures" / "error_cdf.png")


def _run_units(
    units: Sequence[_Unit], out: Path, progress: bool, name: str, figures: bool = True
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    for unit in units:
        t0 = time.perf_counter()
        df, how = _run_unit(unit, out, progress)
        _check_errors(df, f"{name} {unit.label} ({out / unit.key / 'errors.csv'})")
        frames.append(df)
        if progress:
            s = error_statistics(df["error"].to_numpy())
            label = unit.label
            if unit.camera is None and unit.expected is not None:
                label = f"fold {unit.fold + 1}/{len(units)}"
            print(
                f"{name} {label}: {len(df)} held-out images, mean {s['mean']:.2f}, median {s['median']:.2f} "
                f"degrees ({how}, {time.perf_counter() - t0:.1f} s) -> {out / unit.key}",
                flush=True,
            )
    stats = _summarise(units, frames, out)
    if figures:
        _figures(units, frames, out, name)
    return stats


def crossval(
    cfg: ExperimentConfig,
    data: str | os.PathLike[str],
    folds: int | None = None,
    out: str | os.PathLike[str] | None = None,
    pretrain_cfg: ExperimentConfig | None = None,
    progress: bool = True,
    *,
    pretrain_out: str | os.PathLike[str] | None = None,
    updates: Mapping[str, Any] | None = None,
    figures: bool = True,
    by_camera: bool = False,
) -> dict[str, Any]:
    """k-fold cross-validation of ``cfg`` on the colour-constancy folder ``data`` (see the module docstring).

    Args:
        cfg: an illuminant experiment config; its ``data`` section gives size, batch size, layout, black
            level, saturation and ``split_seed``, while ``kind``, ``root``, ``fold`` and ``folds`` are set
            per fold.
        data: a dataset folder of any layout :func:`tinct.constancy.layouts.open_constancy` reads.
        folds: number of folds K; ``None`` takes ``folds.csv`` when the folder has one, else 3. A K that
            differs from ``folds.csv`` gives a seeded random split (``data.split_seed``).
        out: output folder (default ``<cfg.output_dir>/<cfg.name>-cv-<timestamp>``); pass an existing one
            to resume.
        pretrain_cfg: an ``illuminant_embedding`` config; when given, each fold first pretrains it on the
            same training folds (never on the held-out fold) and starts from that backbone (``model.init``).
        progress: print one line per fold (and let training print its epochs).
        pretrain_out: where fold ``k``'s pretraining goes, as ``<pretrain_out>/fold{k}`` (default
            ``OUT/fold{k}/pretrain``). Variants sharing one pretraining config may share this folder: a
            finished pretraining is reused.
        updates: dotted-key changes applied to every fold's config (e.g. ``{"model.freeze": True}``,
            which is only valid together with the ``model.init`` that pretraining sets).
        figures: draw ``OUT/figures`` (a study that draws all its variants together skips them).
        by_camera: leave one camera out (``data`` must be a folder of camera folders): unit ``k`` is
            ``OUT/camera-<name>`` for the k-th camera in sorted order, trained (and pretrained) on all
            other cameras; ``folds`` must then be None or the number of cameras.

    Returns:
        The content of ``cv_metrics.json``: pooled ``mean, median, trimean, best25, worst25, max, n`` (degrees)
        plus ``folds``, ``epochs``, ``train_seconds``, ``images_per_second`` (training throughput, images
        times epochs over training time) and ``per_fold`` (``{"0": stats, ...}``); with ``by_camera`` also
        ``split_by`` (``"camera"``), ``cameras``, ``per_camera`` (``{name: stats}``) and
        ``mean_over_cameras``.

    Raises:
        DataError: the folder or its ground truth is invalid, or its ``folds.csv`` has a single fold, or
            (``by_camera``) it is not a folder of at least 2 camera folders.
        ConfigError: ``cfg`` is not an illuminant config, ``folds`` is below 2 or above the number of
            images (or, ``by_camera``, not the number of cameras), or ``out`` holds folds of another
            experiment.
    """
    from tinct.constancy.layouts import camera_ids, fold_ids, open_constancy

    if cfg.task != "illuminant":
        raise ConfigError(f"crossval scores illuminant estimators; got a {cfg.task!r} config")
    d = cfg.data
    source = open_constancy(data, d.layout, d.black_level, d.saturation)
    ids = camera_ids(source, folds) if by_camera else fold_ids(source, folds, d.split_seed)
    k_folds = int(ids.max()) + 1
    if out is None:
        out = Path(cfg.output_dir) / f"{cfg.name}-cv-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out = Path(out)
    pre_root = Path(pretrain_out) if pretrain_out is not None else None
    units = []
    cameras = source.cameras if by_camera else []
    for k in range(k_folds):
        camera = cameras[k] if by_camera else None
        key = f"camera-{camera}" if by_camera else f"fold{k}"
        split = {"data.split_by": "camera"} if by_camera else {}
        pre_dir = None
        pre_cfg = None
        fold_updates = {**split, **(updates or {})}
        if by_camera:
            fold_updates["name"] = f"{cfg.name}-{key}"
        if pretrain_cfg is not None:
            pre_updates = {**split, "name": f"{pretrain_cfg.name}-{key}"} if by_camera else None
            pre_cfg = fold_config(pretrain_cfg, data, k, k_folds, pre_updates)
            pre_dir = pre_root / key if pre_root is not None else out / key / "pretrain"
            fold_updates.update(_init_from(pre_dir))
        units.append(
            _Unit(
                key=key,
                fold=k,
                cfg=fold_config(cfg, data, k, k_folds, fold_updates),
                pretrain_cfg=pre_cfg,
                pretrain_dir=pre_dir,
                expected=np.flatnonzero(ids == k),
                n_train=int((ids != k).sum()),
                camera=camera,
            )
        )
    return _run_units(units, out, progress, cfg.name, figures)


def mean_over(stats: Any) -> dict[str, float]:
    """Each of ``mean, median, trimean, best25, worst25`` averaged over a collection of statistics (the
    usual multi-camera summary: NUS-8 papers report the mean over cameras of each camera's figure).

    Example:
        >>> mean_over([{"mean": 2.0, "median": 1.0}, {"mean": 4.0, "median": 2.0}])
        {'mean': 3.0, 'median': 1.5}
    """
    rows = list(stats)
    keys = [s for s in ("mean", "median", "trimean", "best25", "worst25") if all(s in r for r in rows)]
    return {s: float(np.mean([float(r[s]) for r in rows])) for s in keys}


def holdout(
    cfg: ExperimentConfig,
    out: str | os.PathLike[str],
    pretrain_cfg: ExperimentConfig | None = None,
    progress: bool = True,
    *,
    pretrain_dir: str | os.PathLike[str] | None = None,
    updates: Mapping[str, Any] | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """The cross-validation outputs for a single train / test split (synthetic data, official splits).

    Trains ``cfg`` (with ``updates``) on its own data split into ``OUT/holdout``, after pretraining
    ``pretrain_cfg`` into ``pretrain_dir`` (default ``OUT/holdout/pretrain``) when given; scores its last
    checkpoint on the test split and writes the same ``errors.csv``, ``cv_errors.csv``, ``cv_metrics.json``
    (``folds`` 0) and figures as :func:`crossval`. Resumable the same way.
    """
    out = Path(out)
    pre_dir = None
    cfg_updates = dict(updates or {})
    if pretrain_cfg is not None:
        pre_dir = Path(pretrain_dir) if pretrain_dir is not None else out / "holdout" / "pretrain"
        cfg_updates.update(_init_from(pre_dir))
    if cfg_updates:
        cfg = with_updates(cfg, cfg_updates)
    unit = _Unit("holdout", 0, cfg, pretrain_cfg, pre_dir)
    return _run_units([unit], out, progress, cfg.name, figures)


def format_stats_table(
    rows: Mapping[str, Mapping[str, Any]], title: str | None = None, first: str = "Type"
) -> Any:
    """A rich ``Table`` of angular-error statistics: one row per method, 2 decimals (degrees).

    Args:
        rows: row label -> statistics (``mean, median, trimean, worst25, best25``; ``epochs`` optional,
            a number or a string such as ``"20 + 30"``).
        title: table title.
        first: header of the label column.

    Example:
        >>> t = format_stats_table({"Gray World": {"mean": 3.5, "median": 2.3, "trimean": 2.6,
        ...                                        "worst25": 7.9, "best25": 0.8}})
        >>> [c.header for c in t.columns]
        ['Type', 'Mean', 'Median', 'Trimean', 'Worst25', 'Best25']
    """
    from rich.table import Table

    stats = ("mean", "median", "trimean", "worst25", "best25")
    with_epochs = any("epochs" in r for r in rows.values())
    table = Table(title=title)
    table.add_column(first)
    if with_epochs:
        table.add_column("Epochs", justify="right")
    for s in stats:
        table.add_column(s.capitalize(), justify="right")
    for label, r in rows.items():
        cells = [str(label)]
        if with_epochs:
            cells.append(str(r.get("epochs", "-")))
        cells += [f"{float(r[s]):.2f}" if r.get(s) is not None else "-" for s in stats]
        table.add_row(*cells)
    return table
