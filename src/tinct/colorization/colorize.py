"""``tinct colorize`` and ``tinct evaluate colorization``: colorizers applied to whole photos.

A model is named by a run directory, a training checkpoint (``.ckpt``), an exported weights file
(``.pt``, see :mod:`tinct.colorization.pretrained`), or nothing: the pretrained colorizer shipped with tinct.
Photos of any size are colorized at full resolution (:class:`tinct.colorization.networks.Colorizer`), in
bounded memory: the photo stays 8 (or 16) bit, its L is computed strip by strip (4 bytes a pixel), the
network runs at its own resolution, and the output is made strip by strip into an 8-bit image, so a
12000 x 9000 photo needs about 1.5 GB in all (see :func:`colorize_file`). A file that cannot be read
(corrupt, truncated, above the pixel limit) is reported by name and skipped; the rest of the job goes on.

Output names: within one output folder a photo's outputs are ``<stem>_color.png`` and ``<stem>_panel.png``;
photos whose stems are equal (ignoring case) use ``<stem>_<ext>`` instead, and ``-2``, ``-3`` ... are
appended in input order where that is still not unique (:func:`tinct.core.naming.unique_output_names`).

``colorize.csv`` (columns :data:`CSV_COLUMNS`) is started afresh, header only, when a job starts, and one
row is appended and flushed to disk as each photo finishes, so a job that is killed keeps the rows of every
photo it finished (at most the photo in flight has outputs but no row). A rerun into the same folder starts
a new table: it colorizes every photo again.
"""

from __future__ import annotations

import csv
import io
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
from tinct.core.naming import collect_inputs, unique_output_names
from tinct.core.progress import track
from tinct.io.limits import check_max_pixels

__all__ = [
    "CSV_COLUMNS",
    "METRIC_KEYS",
    "ColorizeInterrupted",
    "colorize",
    "colorize_file",
    "evaluate_colorization",
    "load_colorizer",
]

METRIC_KEYS = ("auc_raw", "auc_rebalanced", "psnr", "colorfulness")

#: Columns of ``colorize.csv``: a colorized photo fills ``output`` (``panel``, ``note``) and ``seconds``, a
#: skipped one ``error``.
CSV_COLUMNS = ("image", "output", "panel", "note", "seconds", "error")


class ColorizeInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`colorize`: ``done`` of ``total`` photos were colorized, each listed in ``table``.

    A ``KeyboardInterrupt``, so code that catches that still does; the photo in flight was dropped (its
    outputs removed), so the table lists exactly the photos whose outputs exist from this job.
    """

    def __init__(self, done: int, total: int, table: Path) -> None:
        super().__init__(f"interrupted after {done} of {total} photos (listed in {table})")
        self.done, self.total, self.table = done, total, table


def load_colorizer(
    model: str | os.PathLike[str] | None = None, temperature: float | None = None
) -> tuple[Any, dict[str, Any]]:
    """The colorizer of a run directory, checkpoint, exported weights file, or (None) the shipped model.

    Returns:
        ``(colorizer, info)``: a :class:`~tinct.colorization.networks.Colorizer` in eval mode and a dict
        describing where it came from (``source``, ``config``).

    Raises:
        ConfigError: ``temperature`` is NaN, infinite or negative (checked before any model is loaded).
        RunDirError: the path is missing or holds no colorization model.
    """
    from tinct.colorization.networks import check_temperature
    from tinct.colorization.pretrained import DEFAULT_COLORIZER, load_colorizer_file

    if temperature is not None:
        temperature = check_temperature(temperature)
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
    from tinct.engine.run_dir import read_checkpoint
    from tinct.engine.task import TASKS

    ckpt = read_checkpoint(path)
    if "tinct_config" not in ckpt:
        raise RunDirError(f"{path}: not a tinct checkpoint (no tinct_config)")
    cfg = config_from_dict(ckpt["tinct_config"], source=str(path))
    task = TASKS.get(cfg.task)(cfg)
    task.load_state_dict(ckpt["state_dict"])
    return task.eval()


def _read_raw(path: Path, max_pixels: int | None) -> Any:
    """The file as stored (:class:`tinct.io.image.RawImage`: 8 or 16 bit stays so), upright, refused above
    the pixel limit before it is decoded."""
    from tinct.io.image import read_image

    return read_image(path, max_pixels=max_pixels)


def _notes(path: Path, raw: Any) -> str | None:
    """The reader's notes (EXIF rotation, colour profile) and how the file was converted to RGB."""
    from tinct.colorization.photos import describe_mode

    with warnings.catch_warnings():  # Pillow warns on opening large files the reader has accepted
        warnings.simplefilter("ignore")
        return describe_mode(path, raw.array, raw.notes)


def _read(path: Path, max_pixels: int | None = None) -> tuple[torch.Tensor, str | None]:
    from tinct.colorization.photos import photo_array

    raw = _read_raw(path, max_pixels)
    note = _notes(path, raw)
    array = photo_array(raw)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))), note


@torch.no_grad()
def colorize_file(
    colorizer: Any,
    path: Path,
    out_dir: Path,
    temperature: float | None = None,
    panel: bool = True,
    *,
    stem: str | None = None,
    max_pixels: int | None = None,
    tile_rows: int | None = None,
) -> dict[str, Any]:
    """Colorize one photo at full resolution; write ``<stem>_color.png`` and ``<stem>_panel.png`` (grayscale /
    predicted / original, the last only when the file has colours to compare with; each at most 384 high).

    Memory is bounded (:mod:`tinct.colorization.strips`): the photo is kept as read (8 bit: 3 bytes a
    pixel), its L computed strip by strip (4 bytes a pixel), the photo dropped, the network run at its own
    resolution, and the output made strip by strip (``tile_rows`` rows at a time) into an 8-bit array (3
    bytes a pixel); the panel is shrunk from the strips as they pass. The result equals colorizing the
    whole photo at once (:class:`~tinct.colorization.networks.Colorizer`) up to float rounding.

    Args:
        stem: output file stem (default: the photo's own; :func:`colorize` makes them unique).
        max_pixels: refuse larger photos (default: the reader's limit, :func:`tinct.io.image.read_image`).
        tile_rows: rows per strip (default: about :data:`~tinct.colorization.strips.TILE_PIXELS` pixels).

    Raises:
        DataError: the file cannot be read, is above the pixel limit, or an output cannot be written
            (named). No output of the photo is left behind when it fails or is interrupted.
    """
    from tinct.colorization import strips
    from tinct.io.image import write_image

    t0 = time.perf_counter()
    raw = _read_raw(path, max_pixels)
    note = _notes(path, raw)
    h, w = raw.array.shape[:2]
    size = strips.panel_size(h, w)
    with_original = panel and not (note and "grayscale" in note)
    shrink = {name: strips.Shrink((h, w), size) if panel else None for name in ("gray", "pred")}
    shrink["original"] = strips.Shrink((h, w), size) if with_original else None
    lightness = strips.lightness(raw.array, raw.white_level, tile_rows, shrink["original"])
    del raw  # only L is needed from here on
    l_map = torch.from_numpy(lightness)[None, None]
    ab = colorizer.predict_ab_lowres(l_map, temperature).float().cpu()
    rgb = strips.render(lightness, ab, tile_rows, shrink["pred"], shrink["gray"])
    del lightness, l_map
    stem = path.stem if stem is None else stem
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        written.append(write_image(out_dir / f"{stem}_color.png", rgb))
        del rgb
        row: dict[str, Any] = {"image": str(path), "output": str(written[0])}
        if panel:
            parts = [
                s.result() for s in (shrink["gray"], shrink["pred"], shrink["original"]) if s is not None
            ]
            written.append(write_image(out_dir / f"{stem}_panel.png", strips.join_panel(parts)))
            row["panel"] = str(written[-1])
    except BaseException:  # a failed or interrupted photo leaves no outputs
        for p in written:
            p.unlink(missing_ok=True)
        raise
    row["note"] = note or ""
    row["seconds"] = round(time.perf_counter() - t0, 4)
    return row


class _Table:
    """``colorize.csv``: started (header only) atomically, then one row appended and fsynced per photo."""

    def __init__(self, path: Path) -> None:
        self.path = path
        atomic_write_text(path, self._line(dict(zip(CSV_COLUMNS, CSV_COLUMNS, strict=True))))

    @staticmethod
    def _line(row: dict[str, Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([row.get(c, "") for c in CSV_COLUMNS])
        return buf.getvalue()

    def append(self, row: dict[str, Any]) -> None:
        data = self._line(row).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, data)  # one write of one line: a kill never leaves half a row
            os.fsync(fd)
        finally:
            os.close(fd)


def colorize(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    *,
    temperature: float | None = None,
    panel: bool = True,
    progress: bool = True,
    max_pixels: int | None = None,
) -> list[dict[str, Any]]:
    """Colorize photo files and folders (recursively, keeping their sub-folders) into ``out_dir``; write
    ``colorize.csv``.

    Each photo's outputs are named after it, made unique within their folder (``<stem>_<ext>``, then
    ``-2`` ...: see the module's description); the table's ``output`` column names them. The table gets
    one row per photo as it finishes (see the module's description), so a killed job keeps the rows of the
    photos it finished. Unreadable files (corrupt, truncated, above ``max_pixels``) and photos that do not
    fit in memory are reported by name on stderr, recorded with their error, and skipped; so are the
    reader's notes (EXIF rotation ...) and conversions (grayscale, palette, alpha), in the ``note`` column.

    Args:
        max_pixels: refuse photos with more pixels (default: the reader's limit, ``TINCT_MAX_PIXELS`` or
            Pillow's decompression-bomb limit).

    Returns:
        The table's rows (a skipped photo's has ``image`` and ``error``).

    Raises:
        DataError: none of ``inputs`` holds a photo.
        ConfigError: ``temperature`` or ``max_pixels`` is invalid.
        RunDirError: ``model`` cannot be loaded.
        ColorizeInterrupted: Ctrl-C (a ``KeyboardInterrupt``); the table lists the photos finished.
    """
    from tinct.colorization.photos import PHOTO_SUFFIXES

    max_pixels = None if max_pixels is None else check_max_pixels(max_pixels)
    colorizer, _ = load_colorizer(model, temperature)
    paths, roots, missing = collect_inputs(inputs, PHOTO_SUFFIXES)  # a folder's sub-folders are kept
    found_under = set(roots)
    for item in inputs:
        if Path(item).is_dir() and Path(item) not in found_under:
            print(f"tinct: {item}: no photos (jpg, png, tif, bmp)", file=sys.stderr)
    if not paths:
        raise DataError(f"no photos among {', '.join(map(str, inputs))}")
    names = unique_output_names(paths, roots)
    subdirs, stems = [n.parent for n in names], [n.name for n in names]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = _Table(out / "colorize.csv")
    rows: list[dict[str, Any]] = []
    for item in missing:  # one bad argument does not cancel the others, and fails the job at the end
        row = {"image": item, "error": f"{item}: no such photo folder or file"}
        print(f"tinct: skipped {row['error']}", file=sys.stderr)
        table.append(row)
        rows.append(row)
    jobs = list(zip(paths, subdirs, stems, strict=True))
    try:
        for path, subdir, stem in track(jobs, "colorizing", enabled=progress):
            try:
                row = colorize_file(
                    colorizer, path, out / subdir, temperature, panel, stem=stem, max_pixels=max_pixels
                )
            except DataError as err:
                print(f"tinct: skipped {err}", file=sys.stderr)
                row = {"image": str(path), "error": str(err)}
            except MemoryError:
                err = DataError(
                    f"{path}: not enough memory to colorize it; --max-pixels skips photos this large"
                )
                print(f"tinct: skipped {err}", file=sys.stderr)
                row = {"image": str(path), "error": str(err)}
            else:
                if row["note"]:
                    print(f"tinct: {path}: {row['note']}", file=sys.stderr)
            table.append(row)
            rows.append(row)
    except KeyboardInterrupt:
        done = sum("error" not in r for r in rows)
        raise ColorizeInterrupted(done, len(jobs), table.path) from None
    return rows


def evaluate_colorization(
    model: str | os.PathLike[str] | None,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = "colorization_metrics.json",
    *,
    temperature: float | None = None,
    progress: bool = True,
    limit: int | None = None,
    max_pixels: int | None = None,
) -> dict[str, Any]:
    """The paper's metrics of a colorizer on every photo of ``data`` (a folder, searched recursively, or a
    list of files), at full resolution, beside the grayscale baseline (ab = 0).

    - ``auc_raw``: area under the cumulative curve of the per-pixel ab error (L2, CIELAB units) over
      thresholds 0-150, normalised to [0, 1], pooled over all pixels;
    - ``auc_rebalanced``: the same with each pixel weighted by 1 / p of its true ab bin under the reference
      (ImageNet) prior, so rare colours count as much as common ones;
    - ``psnr``: mean over photos of the PSNR (dB) of the sRGB result against the original;
    - ``colorfulness``: mean over photos of Hasler & Süsstrunk's colourfulness of the sRGB result.

    Grayscale photos (no reference colours), unreadable files and photos above ``max_pixels`` (default: the
    reader's limit, see :func:`tinct.io.image.read_image`) are skipped and counted.

    Returns:
        The model's four metrics at the top level, the same under ``"model"`` and the baseline's under
        ``"gray"``, plus ``"original"`` (the photos' own colourfulness), counts and the model's source.
        Written to ``out`` (and, for a run directory, also into it) unless ``out`` is None.

    Raises:
        DataError: ``data`` is missing or holds no readable colour photo.
        ConfigError: ``temperature`` or ``max_pixels`` is invalid.
        RunDirError: ``model`` cannot be loaded.
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
    max_pixels = None if max_pixels is None else check_max_pixels(max_pixels)
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
            rgb, note = _read(path, max_pixels)
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
