"""Colour-constancy baselines on a dataset: the classical methods (each tuned on its grid) and FFCC (trained),
evaluated with the same protocol, written as one table.

The protocol follows FC4 and CLCC: with ``folds=K``, K-fold cross-validation (each method is tuned on the
other folds and evaluated on the held-out one), and the held-out errors of all folds are POOLED before the
statistics; with an official split (SimpleCube++), tune on train and evaluate on test; otherwise the
folder's ``folds.csv``, else 3 seeded random folds.

Every image is decoded once, at full resolution as stored. Each method's estimates at every grid point
are computed in that single pass (the derivative maps are shared by all ``p``), so tuning and evaluation
afterwards are array lookups and no image needs to stay in memory. FFCC (:mod:`tinct.constancy.ffcc`, method
name ``ffcc``) is trained per fold on the training folds only (seconds each), on ``64 x 64`` area-averaged
thumbnails of the same decoded images, with the regulariser weights of ``configs/constancy/ffcc.yaml``.

An image on which a method has no estimate (no usable pixel, no response; see
:func:`tinct.constancy.classical.general_gray_world`) has a NaN angular error, never 0. Tuning skips grid
points that fail on a training image; a method that still fails on a held-out image (or whose every grid
point fails on its training images) is not tabulated: the run finishes the other methods, writes their
details and the failures to ``baselines_details.json``, and raises :class:`~tinct.core.exceptions.DataError`
naming each failed method, fold, count and images (no ``baselines.json`` is written, so no partial table
is mistaken for a full one).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table
from torch import Tensor

from tinct.color.illuminant import angular_error
from tinct.constancy.classical import (
    CLASSICAL_METHODS,
    ClassicalMethod,
    classical_method,
    general_gray_world_grid,
)
from tinct.constancy.layouts import ConstancySource, fold_ids, open_constancy
from tinct.core.atomic import atomic_write_json
from tinct.core.exceptions import DataError, some_of
from tinct.core.progress import track
from tinct.engine.statistics import STAT_NAMES, error_statistics

__all__ = [
    "BASELINE_METHODS",
    "LEARNED_METHODS",
    "evaluate_baselines",
    "format_table",
    "grid_estimates",
    "run_baselines",
    "throughput",
    "tune",
]


LEARNED_METHODS = {"ffcc": "FFCC (Barron & Tsai 2017)"}
"""Baselines that are trained on the training folds rather than tuned on a grid: name -> table label."""

BASELINE_METHODS = (*CLASSICAL_METHODS, *LEARNED_METHODS)
"""Every method ``tinct baselines constancy`` runs by default, in table order."""

FFCC_SIZE = 64
"""Side of the thumbnails FFCC is trained and evaluated on."""


def _check_method(name: str) -> str:
    from tinct.core.checks import check_choice

    check_choice(name, BASELINE_METHODS, "colour-constancy baseline")
    return name


def _splits(protocol: dict[str, Any], groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, Any]]:
    """``(train mask, test mask, name)`` of each evaluation: the official split, or one per fold."""
    if protocol["kind"] == "train_test":
        return [(groups == 0, groups == 1, "test")]
    return [(groups != f, groups == f, int(f)) for f in np.unique(groups)]


def _ffcc_heldout(
    thumbs: Tensor,
    masks: Tensor,
    truth: Tensor,
    protocol: dict[str, Any],
    groups: np.ndarray,
    images: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], list[str], float, np.ndarray]:
    """FFCC trained on each fold's training images, evaluated on its held-out images: (index, errors,
    per-fold record, failures, training seconds, per-image uncertainty in degrees)."""
    from tinct.constancy.task import FFCCConfig

    splits = _splits(protocol, groups)
    index, held_out, record, failures, spread = [], [], [], [], []
    seconds = 0.0
    settings = FFCCConfig()
    for train, test, name in splits:
        tr, te = torch.from_numpy(np.flatnonzero(train)), torch.from_numpy(np.flatnonzero(test))
        start = time.perf_counter()
        model = settings.build().fit(thumbs[tr], masks[tr], truth[tr])
        seconds += time.perf_counter() - start
        with torch.no_grad():
            est = model.estimate(thumbs[te], masks[te])
        errors = angular_error(est.rgb, truth[te], dim=-1).double().numpy()
        rows = te.numpy()
        missing = rows[~np.isfinite(errors)]
        if len(missing):
            failures.append(
                f"fold {name}: {len(missing)} of {len(rows)} held-out images have no estimate "
                f"({some_of([images[i] for i in missing])})"
            )
        index.append(rows)
        held_out.append(errors)
        spread.append(est.uncertainty.double().numpy())
        record.append(
            {"fold": name, "n_train": int(train.sum()), "n_test": int(test.sum()),
             "train_seconds": round(time.perf_counter() - start, 3)}
        )  # fmt: skip
    return (
        np.concatenate(index),
        np.concatenate(held_out),
        record,
        failures,
        seconds,
        np.concatenate(spread),
    )


def grid_estimates(
    method: str | ClassicalMethod,
    images: Tensor | Sequence[Tensor],
    masks: Tensor | Sequence[Tensor | None] | None = None,
    backend: str = "auto",
) -> tuple[list[dict[str, float]], Tensor]:
    """Estimates of ``method`` at every point of its grid, filtering each image once per sigma.

    Args:
        method: a key of :data:`~tinct.constancy.classical.CLASSICAL_METHODS` or a ``ClassicalMethod``.
        images: a batch ``(N, 3, H, W)`` or a sequence of ``(3, H, W)`` images of any sizes.
        masks: matching ``(N, 1, H, W)`` / ``(1, H, W)`` masks (True = unusable), or None.
        backend: one of :data:`~tinct.constancy.classical.BACKENDS`.

    Returns:
        ``(points, estimates)``: the grid points in :meth:`ClassicalMethod.grid_points` order and unit-norm
        float32 estimates of shape ``(N, len(points), 3)``.
    """
    m = classical_method(method)
    points = m.grid_points()
    sigmas = list(dict.fromkeys(pt["sigma"] for pt in points))
    ps = list(dict.fromkeys(pt["p"] for pt in points))
    where = [(sigmas.index(pt["sigma"]), ps.index(pt["p"])) for pt in points]
    if masks is None:
        masks = [None] * len(images)
    if len(masks) != len(images):
        raise ValueError(f"got {len(images)} images but {len(masks)} masks")
    rows = []
    for image, mask in zip(images, masks, strict=True):
        est = general_gray_world_grid(image, mask, m.order, ps, sigmas, backend).float()
        rows.append(torch.stack([est[i, j] for i, j in where]))
    return points, torch.stack(rows) if rows else torch.empty(0, len(points), 3)


def _errors(estimates: Tensor, illuminants: Tensor) -> Tensor:
    """Angular errors (N, G) of estimates (N, G, 3) against illuminants (N, 3); NaN where there is no estimate."""
    gt = illuminants.to(estimates.dtype).reshape(-1, 1, 3).expand_as(estimates)
    return angular_error(estimates, gt, dim=-1)


def _grid_means(errors: np.ndarray) -> np.ndarray:
    """Mean error of each grid point (columns of ``errors``); inf for a point that fails on any image."""
    failed = ~np.isfinite(errors).all(axis=0)
    return np.where(failed, np.inf, np.where(np.isfinite(errors), errors, 0.0).mean(axis=0))


def tune(
    method: str | ClassicalMethod,
    images: Tensor | Sequence[Tensor],
    masks: Tensor | Sequence[Tensor | None] | None,
    illuminants: Tensor,
) -> tuple[dict[str, float], float]:
    """The grid point of ``method`` with the lowest MEAN angular error on the given (training) images.

    Ties go to the first point in grid order. A point without an estimate for some image (NaN error) is
    not eligible.

    Returns:
        ``(params, mean error in degrees)``.

    Raises:
        DataError: no grid point gives an estimate for every image (the message counts the images).

    Shape:
        - images: :math:`(N, 3, H, W)` or N tensors :math:`(3, H_i, W_i)`; illuminants: :math:`(N, 3)`.
    """
    points, est = grid_estimates(method, images, masks)
    if len(est) == 0:
        raise ValueError("tune: no images given")
    errors = _errors(est, illuminants).double().numpy()
    mean = _grid_means(errors)
    best = int(np.argmin(mean))
    if not np.isfinite(mean[best]):
        never = int((~np.isfinite(errors)).all(axis=1).sum())
        raise DataError(
            f"tune: {classical_method(method).name} has no grid point with an estimate for all {len(errors)} "
            f"images ({never} have none at any point: no usable pixel or no response)"
        )
    return points[best], float(mean[best])


def throughput(
    method: str,
    image_size: tuple[int, int] = (432, 648),
    batch: int = 16,
    repeats: int = 5,
    *,
    threads: int | None = None,
    **params: float,
) -> float:
    """Images per second of ``method`` (at its defaults updated by ``params``) on random full-size images.

    The batch holds ``batch`` seeded random images with 0.1 % unusable pixels (so mask dilation is
    timed too); after one warm-up call the median of ``repeats`` timed calls is used.

    Args:
        method: a key of :data:`~tinct.constancy.classical.CLASSICAL_METHODS`.
        image_size: ``(H, W)``; 432 x 648 is SimpleCube++'s size.
        batch: images per call.
        repeats: timed calls.
        threads: torch (and worker) threads for the measurement; None keeps the current setting.
    """
    m = classical_method(method)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, *image_size, generator=g)
    masks = torch.rand(batch, 1, *image_size, generator=g) > 0.999
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        m(images, masks, **params)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            m(images, masks, **params)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return batch / statistics.median(times)


def _jsonable(params: dict[str, float]) -> dict[str, float | str]:
    # JSON has no infinity; White Patch's p = inf is written as the string "inf"
    return {k: (v if math.isfinite(v) else "inf") for k, v in params.items()}


def _protocol(source: ConstancySource, folds: int | None, seed: int) -> tuple[dict[str, Any], np.ndarray]:
    """The evaluation protocol and one group id per image: fold ids, or 0 = train / 1 = test."""
    table = source.table
    has_folds = bool((table["fold"] >= 0).all())
    if folds is None and source.has_split:
        split = table["split"].to_numpy()
        groups = np.where(split == "test", 1, 0)
        n_train, n_test = int((split == "train").sum()), int((split == "test").sum())
        if n_train == 0 or n_test == 0:
            raise ValueError(
                f"official split needs train and test images, got {n_train} train, {n_test} test"
            )
        return {"kind": "train_test", "n_train": n_train, "n_test": n_test}, groups
    k = folds if folds is not None else (None if has_folds else 3)
    ids = np.asarray(fold_ids(source, k, seed))
    file_folds = has_folds and (k is None or k == len(np.unique(table["fold"])))
    protocol = {
        "kind": "cross_validation",
        "folds": len(np.unique(ids)),
        "fold_source": "folds.csv" if file_folds else f"random (seed {seed})",
        "pooled": True,
    }
    return protocol, ids


def _evaluate(
    errors: Tensor,
    points: list[dict[str, float]],
    protocol: dict[str, Any],
    groups: np.ndarray,
    images: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], list[str]]:
    """Held-out errors after tuning on the rest: (evaluated image indices, their errors, per-fold record,
    failures). A failure names the fold, how many images have no estimate and which."""
    e = errors.double().numpy()
    splits = _splits(protocol, groups)
    index, held_out, record, failures = [], [], [], []
    for train, test, name in splits:
        train_mean = _grid_means(e[train])
        best = int(np.argmin(train_mean))
        rows = np.flatnonzero(test)
        if not np.isfinite(train_mean[best]):
            never = np.flatnonzero(train)[~np.isfinite(e[train]).all(axis=1)]
            failures.append(
                f"fold {name}: no grid point has an estimate on all {int(train.sum())} training images "
                f"({len(never)} have none at any point: {some_of([images[i] for i in never])})"
            )
            continue
        missing = rows[~np.isfinite(e[rows, best])]
        if len(missing):
            failures.append(
                f"fold {name}: {len(missing)} of {len(rows)} held-out images have no estimate "
                f"({some_of([images[i] for i in missing])})"
            )
        index.append(rows)
        held_out.append(e[rows, best])
        record.append(
            {
                "fold": name,
                "params": _jsonable(points[best]),
                "train_mean": float(train_mean[best]),
                "n_train": int(train.sum()),
                "n_test": int(test.sum()),
                "grid_points_without_estimate": int(np.isinf(train_mean).sum()),
            }
        )
    if not index:
        return np.empty(0, dtype=np.int64), np.empty(0), record, failures
    return np.concatenate(index), np.concatenate(held_out), record, failures


def _method_record(
    errors: np.ndarray, folds: list[dict[str, Any]], per_image: dict[str, list[Any]], **extra: Any
) -> tuple[dict[str, float], dict[str, Any]]:
    """A method's table statistics and its ``baselines_details.json`` entry."""
    full = error_statistics(errors)
    stats = {key: full[key] for key in STAT_NAMES}
    return stats, {
        **stats,
        "n": full["n"],
        "max": full["max"],
        "folds": folds,
        **extra,
        "per_image": per_image,
    }


def evaluate_baselines(
    source: ConstancySource,
    folds: int | None = None,
    out: str | os.PathLike[str] | None = None,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """:func:`run_baselines` on an opened ``ConstancySource`` (see :mod:`tinct.constancy.layouts`)."""
    from tinct.constancy.folder import thumbnail_and_mask

    wanted = [_check_method(m) for m in (methods or list(BASELINE_METHODS))]
    names = [m for m in wanted if m in CLASSICAL_METHODS]
    learned = [m for m in wanted if m in LEARNED_METHODS]
    protocol, groups = _protocol(source, folds, seed)
    n = len(source)
    grids = {name: classical_method(name).grid_points() for name in names}
    estimates = {name: torch.empty(n, len(grids[name]), 3) for name in names}
    seconds = dict.fromkeys(names, 0.0)
    truth = torch.empty(n, 3)
    thumbs = torch.empty(n, 3, FFCC_SIZE, FFCC_SIZE) if learned else None
    empty = torch.empty(n, 1, FFCC_SIZE, FFCC_SIZE, dtype=torch.bool) if learned else None
    load_seconds, unusable = 0.0, 0
    what = f"{len(names)} classical methods" + (" and FFCC's thumbnails" if learned else "")
    for i in track(range(n), what, total=n, enabled=progress):
        start = time.perf_counter()
        image, mask = source.load(i)
        load_seconds += time.perf_counter() - start
        truth[i] = source.illuminant(i)
        unusable += int(bool(mask.all()))
        if thumbs is not None and empty is not None:
            thumbs[i], empty[i] = thumbnail_and_mask(image, mask, FFCC_SIZE)
        for name in names:
            start = time.perf_counter()
            estimates[name][i] = grid_estimates(name, [image], [mask])[1][0]
            seconds[name] += time.perf_counter() - start

    images = [str(x) for x in source.table["image"]]
    stats: dict[str, dict[str, float]] = {}
    details: dict[str, Any] = {
        "protocol": protocol,
        "n_images": n,
        "images_without_usable_pixels": unusable,
        "load_seconds": load_seconds,
        "torch_threads": torch.get_num_threads(),
        "methods": {},
    }
    failed: dict[str, list[str]] = {}
    for name in names:
        index, errors, record, failures = _evaluate(
            _errors(estimates[name], truth), grids[name], protocol, groups, images
        )
        if failures:
            failed[name] = failures
            continue
        stats[name], details["methods"][name] = _method_record(
            errors, record, {"image": [images[j] for j in index], "error": errors.tolist()},
            grid_points=len(grids[name]), images_per_s=n / seconds[name] if seconds[name] > 0 else None,
        )  # fmt: skip
    for name in learned:
        assert thumbs is not None and empty is not None
        index, errors, record, failures, fit_seconds, spread = _ffcc_heldout(
            thumbs, empty, truth, protocol, groups, images
        )
        if failures:
            failed[name] = failures
            continue
        per_image = {
            "image": [images[j] for j in index],
            "error": errors.tolist(),
            "uncertainty": spread.tolist(),
        }
        stats[name], details["methods"][name] = _method_record(
            errors, record, per_image, train_seconds=round(fit_seconds, 3), thumbnail_size=FFCC_SIZE
        )
    stats = {name: stats[name] for name in wanted if name in stats}  # table order
    folder = Path.cwd() if out is None else Path(out)
    if failed:
        details["failed"] = failed
        atomic_write_json(folder / "baselines_details.json", details)
        lines = [f"  {name}: {'; '.join(f)}" for name, f in failed.items()]
        raise DataError(
            f"{source.root}: {len(failed)} of {len(wanted)} methods have no estimate for some images "
            "(angular error NaN: no usable pixel, or no response), so no table is written; the other "
            f"methods' results are in {folder / 'baselines_details.json'}. Drop those images or those "
            "methods (methods=...):\n" + "\n".join(lines)
        )
    atomic_write_json(folder / "baselines.json", stats)
    atomic_write_json(folder / "baselines_details.json", details)
    return stats


def run_baselines(
    root: str | os.PathLike[str],
    folds: int | None = None,
    out: str | os.PathLike[str] | None = None,
    layout: str = "auto",
    black_level: float | None = None,
    saturation: float | None = None,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Tune and evaluate the classical methods on the dataset at ``root``; write the results to ``out``.

    Args:
        root: dataset folder (any layout :func:`tinct.constancy.layouts.open_constancy` reads).
        folds: K for K-fold cross-validation; None: the official split if there is one, else the folder's
            ``folds.csv``, else 3 seeded random folds.
        out: output folder (created); default the current directory.
        layout, black_level, saturation: passed to ``open_constancy``.
        methods: names from :data:`BASELINE_METHODS` (the classical methods and ``ffcc``); default all.
        seed: seed of random folds.
        progress: show a progress bar.

    Returns:
        ``{method: {"mean", "median", "trimean", "best25", "worst25"}}`` in degrees, exactly what
        ``OUT/baselines.json`` holds. ``OUT/baselines_details.json`` adds the protocol, each fold's tuned
        parameters and training error, n, max, images/s over each method's grid, and per-image errors.

    Raises:
        DataError: unreadable dataset or image (the message names the file); a method without an
            estimate for some images (the message names the method, fold, count and images); a
            ``folds.csv`` with a single fold.
        ConfigError: ``folds`` is below 2 or above the number of images.
        UnknownNameError: unknown method or layout.
    """
    for m in methods or ():
        _check_method(m)
    source = open_constancy(root, layout=layout, black_level=black_level, saturation=saturation)
    return evaluate_baselines(source, folds=folds, out=out, methods=methods, seed=seed, progress=progress)


def format_table(stats: dict[str, dict[str, float]]) -> Table:
    """A ``rich.table.Table`` of the statistics: one row per method, Mean | Median | Trimean | Best25 |
    Worst25 in degrees with 2 decimals."""
    table = Table(title="Baselines (angular error, degrees)")
    table.add_column("Method")
    for header in ("Mean", "Median", "Trimean", "Best25", "Worst25"):
        table.add_column(header, justify="right")
    for name, s in stats.items():
        label = (
            CLASSICAL_METHODS[name].label if name in CLASSICAL_METHODS else LEARNED_METHODS.get(name, name)
        )
        table.add_row(label, *(f"{s[key]:.2f}" for key in STAT_NAMES))
    return table
