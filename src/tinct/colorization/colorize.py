"""``tinct colorize`` and ``tinct evaluate colorization``: colorizers applied to whole photos.

A model is named by a run directory, a training checkpoint (``.ckpt``), an exported weights file
(``.pt``, see :mod:`tinct.colorization.pretrained`), or nothing: the pretrained colorizer shipped with tinct.
Photos of any size are colorized at full resolution (:class:`tinct.colorization.networks.Colorizer`). A file
that cannot be read is reported by name and skipped; the rest of the job goes on.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.exceptions import DataError, RunDirError
from tinct.core.progress import track

__all__ = ["colorize", "colorize_file", "evaluate_colorization", "load_colorizer", "METRIC_KEYS"]

METRIC_KEYS = ("auc_raw", "auc_rebalanced", "psnr", "colorfulness")


def load_colorizer(
    model: str | os.PathLike[str] | None = None, temperature: float | None = None
) -> tuple[Any, dict[str, Any]]:
    """The colorizer of a run directory, checkpoint, exported weights file, or (None) the shipped model.

    Returns:
        ``(colorizer, info)``: a :class:`~tinct.colorization.networks.Colorizer` in eval mode and a dict
        describing where it came from (``source``, ``config``).

    Raises:
        RunDirError: the path is missing or holds no colorization model.
    """
    from tinct.colorization.pretrained import DEFAULT_COLORIZER, load_colorizer_file

    if model is None:
        colorizer, info = load_colorizer_file(DEFAULT_COLORIZER.path(), temperature)
        return colorizer, {**info, "source": f"shipped:{DEFAULT_COLORIZER.name}"}
    p = Path(model)
    if p.is_dir() or p.suffix == ".ckpt":
        from tinct.engine.evaluate import load_task

        if p.is_dir():
            task = load_task(p)
        else:
            task = _task_from_checkpoint(p)
        if task.cfg.task != "colorization":
            raise RunDirError(f"{p}: a {task.cfg.task!r} run, not a colorization model")
        return task.colorizer(temperature).eval(), {
            "source": str(p),
            "config": task.cfg.model_dump(mode="json"),
        }
    if p.is_file():
        colorizer, info = load_colorizer_file(p, temperature)
        return colorizer, {**info, "source": str(p)}
    raise RunDirError(f"{p}: no such run directory or weights file")


def _task_from_checkpoint(path: Path) -> Any:
    from tinct.engine.config import config_from_dict
    from tinct.engine.task import TASKS

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunDirError(f"{path}: cannot load checkpoint ({err})") from err
    if "tinct_config" not in ckpt:
        raise RunDirError(f"{path}: not a tinct checkpoint (no tinct_config)")
    cfg = config_from_dict(ckpt["tinct_config"], source=str(path))
    task = TASKS.get(cfg.task)(cfg)
    task.load_state_dict(ckpt["state_dict"])
    return task.eval()


def _read(path: Path) -> tuple[torch.Tensor, str | None]:
    from tinct.colorization.photos import describe_mode, read_photo

    array = read_photo(path)
    note = describe_mode(path, array)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))), note


def _panel(
    gray: torch.Tensor, pred: torch.Tensor, original: torch.Tensor | None, max_height: int = 384
) -> torch.Tensor:
    import torch.nn.functional as F

    parts = [gray, pred] + ([original] if original is not None else [])
    h, w = gray.shape[-2:]
    if h > max_height:
        size = (max_height, max(1, round(w * max_height / h)))
        parts = [F.interpolate(p[None], size=size, mode="bilinear", antialias=True)[0] for p in parts]
    gap = torch.ones(3, parts[0].shape[-2], 4)
    joined = [parts[0]]
    for p in parts[1:]:
        joined += [gap, p]
    return torch.cat(joined, dim=-1).clamp(0, 1)


def colorize_file(
    colorizer: Any, path: Path, out_dir: Path, temperature: float | None = None, panel: bool = True
) -> dict[str, Any]:
    """Colorize one photo at full resolution; write ``<stem>_color.png`` and, when the file has colours to
    compare with, ``<stem>_panel.png`` (grayscale / predicted / original).

    Raises:
        DataError: the file cannot be read (named).
    """
    from tinct.colorization.metrics import grayscale_from_lab
    from tinct.io.image import write_image

    t0 = time.perf_counter()
    rgb, note = _read(path)
    device = next(colorizer.parameters()).device
    pred, lab = colorizer(rgb[None].to(device), temperature)
    pred = pred[0].cpu()
    out_dir.mkdir(parents=True, exist_ok=True)
    output = write_image(out_dir / f"{path.stem}_color.png", pred)
    row: dict[str, Any] = {"image": str(path), "output": str(output)}
    if panel:
        gray = grayscale_from_lab(lab.cpu())[0]
        has_colour = not (note and "grayscale" in note)
        row["panel"] = str(
            write_image(out_dir / f"{path.stem}_panel.png", _panel(gray, pred, rgb if has_colour else None))
        )
    row["note"] = note or ""
    row["seconds"] = round(time.perf_counter() - t0, 4)
    return row


def colorize(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    *,
    temperature: float | None = None,
    panel: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Colorize photo files and folders (recursively, keeping their sub-folders) into ``out_dir``; write
    ``colorize.csv``.

    Unreadable files are reported by name on stderr, recorded with their error, and skipped.
    """
    from tinct.colorization.photos import list_photos

    colorizer, _ = load_colorizer(model, temperature)
    paths: list[Path] = []
    subdirs: list[Path] = []  # a folder's sub-folders are kept, so equal names never overwrite each other
    for item in inputs:
        try:
            found = list_photos(item)
        except DataError as err:  # one bad argument does not cancel the others
            print(f"tinct: skipped {err}", file=sys.stderr)
            continue
        if Path(item).is_dir() and not found:
            print(f"tinct: {item}: no photos (jpg, png, tif, bmp)", file=sys.stderr)
        paths += found
        subdirs += [p.parent.relative_to(item) if Path(item).is_dir() else Path() for p in found]
    if not paths:
        raise DataError(f"no photos among {', '.join(map(str, inputs))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        for path, subdir in track(list(zip(paths, subdirs, strict=True)), "colorizing", enabled=progress):
            try:
                rows.append(colorize_file(colorizer, path, out / subdir, temperature, panel))
            except DataError as err:
                print(f"tinct: skipped {err}", file=sys.stderr)
                rows.append({"image": str(path), "error": str(err)})
            else:
                if rows[-1]["note"]:
                    print(f"tinct: {path}: {rows[-1]['note']}", file=sys.stderr)
    finally:
        if rows:
            import pandas as pd

            atomic_write_text(out / "colorize.csv", pd.DataFrame(rows).to_csv(index=False))
    return rows


def evaluate_colorization(
    model: str | os.PathLike[str] | None,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = "colorization_metrics.json",
    *,
    temperature: float | None = None,
    progress: bool = True,
    limit: int | None = None,
) -> dict[str, Any]:
    """The paper's metrics of a colorizer on every photo of ``data`` (a folder, searched recursively, or a
    list of files), at full resolution, beside the grayscale baseline (ab = 0).

    - ``auc_raw``: area under the cumulative curve of the per-pixel ab error (L2, CIELAB units) over
      thresholds 0-150, normalised to [0, 1], pooled over all pixels;
    - ``auc_rebalanced``: the same with each pixel weighted by 1 / p of its true ab bin under the reference
      (ImageNet) prior, so rare colours count as much as common ones;
    - ``psnr``: mean over photos of the PSNR (dB) of the sRGB result against the original;
    - ``colorfulness``: mean over photos of Hasler & Süsstrunk's colourfulness of the sRGB result.

    Grayscale photos (no reference colours) and unreadable files are skipped and counted.

    Returns:
        The model's four metrics at the top level, the same under ``"model"`` and the baseline's under
        ``"gray"``, plus ``"original"`` (the photos' own colourfulness), counts and the model's source.
        Written to ``out`` (and, for a run directory, also into it) unless ``out`` is None.
    """
    from tinct.color.lab import lab_to_rgb, rgb_to_lab
    from tinct.colorization.metrics import (
        ABAccuracy,
        ab_errors,
        colorfulness,
        grayscale_from_lab,
        pixel_rebalancing_weights,
        psnr,
    )
    from tinct.colorization.photos import list_photos

    if isinstance(data, (str, os.PathLike)):
        root = Path(data)
        if not root.exists():
            raise DataError(f"{root}: evaluation data folder not found")
        paths = list_photos(root)[:limit]
        label = str(root)
    else:
        paths = [Path(p) for p in data][:limit]
        label = f"{len(paths)} listed photos"
    if not paths:
        raise DataError(f"{label}: no photos (jpg, png, tif, bmp) found")
    colorizer, info = load_colorizer(model, temperature)
    raw = {"model": ABAccuracy(), "gray": ABAccuracy()}
    reb = {"model": ABAccuracy(), "gray": ABAccuracy()}
    per_image: dict[str, dict[str, list[float]]] = {
        k: {"psnr": [], "colorfulness": []} for k in ("model", "gray")
    }
    original_cf: list[float] = []
    skipped: list[str] = []
    for path in track(paths, "evaluating", enabled=progress):
        try:
            rgb, note = _read(path)
        except DataError as err:
            print(f"tinct: skipped {err}", file=sys.stderr)
            skipped.append(str(path))
            continue
        if note and "grayscale" in note:
            skipped.append(str(path))
            continue
        rgb = rgb[None]
        true_lab = rgb_to_lab(rgb)
        with torch.no_grad():  # the colorizer works from the L computed here (one Lab conversion per photo)
            pred_lab = torch.cat([true_lab[:, :1], colorizer.predict_ab(true_lab[:, :1], temperature)], 1)
        pred_rgb = lab_to_rgb(pred_lab, clip=True)
        gray_lab = torch.cat([true_lab[:, :1], torch.zeros_like(true_lab[:, 1:])], 1)
        weights = pixel_rebalancing_weights(true_lab[:, 1:])
        for name, lab, out_rgb in (
            ("model", pred_lab, pred_rgb),
            ("gray", gray_lab, grayscale_from_lab(true_lab)),
        ):
            errors = ab_errors(lab[:, 1:], true_lab[:, 1:])
            raw[name].update(errors)
            reb[name].update(errors, weights)
            per_image[name]["psnr"].append(float(psnr(out_rgb, rgb)[0]))
            per_image[name]["colorfulness"].append(float(colorfulness(out_rgb)[0]))
        original_cf.append(float(colorfulness(rgb)[0]))
    if not original_cf:
        raise DataError(f"{label}: none of the {len(paths)} files is a readable colour photo")
    result: dict[str, Any] = {}
    for name in ("model", "gray"):
        result[name] = {
            "auc_raw": raw[name].auc(),
            "auc_rebalanced": reb[name].auc(),
            "psnr": float(np.mean(np.minimum(per_image[name]["psnr"], 100.0))),
            "colorfulness": float(np.mean(per_image[name]["colorfulness"])),
        }
    metrics = {
        **result["model"],
        "model": result["model"],
        "gray": result["gray"],
        "original": {"colorfulness": float(np.mean(original_cf))},
        "n_images": len(original_cf),
        "skipped": skipped,
        "data": label,
        "model_source": info["source"],
        "temperature": colorizer.temperature if temperature is None else temperature,
    }
    if out is not None:
        atomic_write_json(out, metrics)
        if model is not None and Path(model).is_dir():
            atomic_write_json(Path(model) / "colorization_metrics.json", metrics)
    if skipped:
        warnings.warn(f"{len(skipped)} file(s) skipped (unreadable or grayscale)", stacklevel=2)
    return metrics
