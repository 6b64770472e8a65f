"""``tinct colorize`` and ``tinct evaluate colorization``: colorizers applied to whole photos.

A model is named by a run directory, a training checkpoint (``.ckpt``), an exported weights file
(``.pt``, see :mod:`tinct.colorization.pretrained`), an ONNX graph (``.onnx``, run by onnxruntime; see
:mod:`tinct.colorization.export`), or nothing: the pretrained colorizer shipped with tinct.
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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tinct.core.atomic import atomic_write_text
from tinct.core.exceptions import DataError, RunDirError
from tinct.core.naming import collect_inputs, unique_output_names
from tinct.core.progress import track
from tinct.io.limits import check_max_pixels

if TYPE_CHECKING:
    from tinct.colorization.boxes import Boxes, BoxSource
    from tinct.colorization.hints import HintFile, Hints

__all__ = [
    "BACKENDS",
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


#: Where a colorizer's network runs (``backend=`` of :func:`load_colorizer`).
BACKENDS = ("torch", "onnxruntime")


def load_colorizer(
    model: str | os.PathLike[str] | None = None,
    temperature: float | None = None,
    *,
    backend: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Any, dict[str, Any]]:
    """The colorizer of a run directory, checkpoint, exported weights file, ONNX graph (``.onnx``, from
    ``tinct export``), or (None) the shipped model.

    Args:
        model: where the model is (None: the shipped default colorizer).
        temperature: annealed-mean temperature (default: the model's).
        backend: ``"torch"`` or ``"onnxruntime"``; None: onnxruntime for an ``.onnx`` file, else torch. With
            onnxruntime, any other model is exported to ONNX in memory first (a few seconds; nothing is
            written) and checked against torch (:func:`tinct.colorization.export.onnx_colorizer`); an
            instance-aware model then colours with its full-image network (noted on stderr).
        device: torch device of the network (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...); onnxruntime runs on
            the CPU only.

    Returns:
        ``(colorizer, info)``: a :class:`~tinct.colorization.networks.Colorizer` in eval mode (an
        :class:`~tinct.colorization.instance.InstanceColorizer` for a fusion-stage ``instance_colorization``
        run, an :class:`~tinct.colorization.export.OnnxColorizer` with onnxruntime) and a dict describing
        where it came from (``source``, ``config``; ``backend`` with onnxruntime).

    Raises:
        ConfigError: ``temperature`` is NaN, infinite or negative, ``backend`` or ``device`` is invalid or
            unavailable (checked before any model is loaded), or a ``.onnx`` graph decodes at another
            temperature.
        RunDirError: the path is missing or holds no colorization model.
        DataError: a ``.onnx`` file is not a tinct colorizer graph.
    """
    from tinct.colorization.networks import check_temperature

    if temperature is not None:
        temperature = check_temperature(temperature)
    onnx_file = model is not None and Path(model).suffix.lower() == ".onnx"
    backend = _check_backend(backend, model, onnx_file)
    dev = _check_device(device, backend)
    if onnx_file:
        from tinct.colorization.export import load_onnx_colorizer

        if not Path(model).is_file():  # type: ignore[arg-type]
            raise RunDirError(f"{model}: no such ONNX file")
        return load_onnx_colorizer(model, temperature)  # type: ignore[arg-type]
    colorizer, info = _load_torch_colorizer(model, temperature)
    if backend == "onnxruntime":
        from tinct.colorization.export import onnx_colorizer

        if getattr(colorizer, "uses_boxes", False):
            print(
                f"tinct: {info['source']} is instance-aware; onnxruntime runs its full-image network (boxes "
                "are not used; --backend torch uses them)",
                file=sys.stderr,
            )
        return onnx_colorizer(colorizer, info, temperature)
    return colorizer.to(dev), info


def _check_backend(backend: str | None, model: Any, onnx_file: bool) -> str:
    from tinct.core.exceptions import ConfigError

    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid choices: {', '.join(BACKENDS)}")
    if onnx_file and backend == "torch":
        raise ConfigError(f"{model}: an ONNX graph runs with the onnxruntime backend, not torch")
    return backend or ("onnxruntime" if onnx_file else "torch")


def _check_device(device: str | torch.device, backend: str) -> torch.device:
    from tinct.core.checks import check_device
    from tinct.core.exceptions import ConfigError

    if backend == "onnxruntime" and str(device) != "cpu":
        raise ConfigError(
            f"the onnxruntime backend runs on the CPU (its CPU execution provider); device {device} needs "
            "--backend torch"
        )
    return check_device(device)


def _load_torch_colorizer(
    model: str | os.PathLike[str] | None, temperature: float | None
) -> tuple[Any, dict[str, Any]]:
    from tinct.colorization.pretrained import COLORIZER_TASKS, DEFAULT_COLORIZER, load_colorizer_file

    if model is None:
        colorizer, info = load_colorizer_file(DEFAULT_COLORIZER.path(), temperature)
        return colorizer, {**info, "source": f"shipped:{DEFAULT_COLORIZER.name}"}
    p = Path(model)
    if p.is_dir() or p.suffix == ".ckpt":
        from tinct.engine.modelfile import load_model

        task = load_model(p)
        if task.cfg.task not in COLORIZER_TASKS:
            raise RunDirError(f"{p}: a {task.cfg.task!r} run, not a colorization model")
        return task.colorizer(temperature).eval(), {
            "source": str(p),
            "config": task.cfg.model_dump(mode="json"),
        }
    if p.is_file():
        colorizer, info = load_colorizer_file(p, temperature)
        return colorizer, {**info, "source": str(p)}
    raise RunDirError(f"{p}: no such run directory or weights file")


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
    hints: Hints | None = None,
    boxes: BoxSource | None = None,
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
        hints: the photo's colour hints (:class:`~tinct.colorization.hints.Hints`, in the photo's upright
            pixels), for colorizers with hint channels (SIGGRAPH17); counted in the ``note`` column.
        boxes: where the photo's object boxes come from (:mod:`tinct.colorization.boxes`: files or a
            detector), for instance-aware colorizers (:attr:`~tinct.colorization.networks.Colorizer.uses_boxes`);
            the boxes kept (score > 0.7, at most 8) are counted in ``note`` and drawn on the panel's
            predicted image. Without boxes an instance-aware colorizer is its full-image network alone.

    Raises:
        DataError: the file cannot be read, is above the pixel limit, a hint lies outside it, or an output
            cannot be written (named). No output of the photo is left behind when it fails or is interrupted.
        ConfigError: ``hints`` given to a colorizer without hint channels (ECCV16).
    """
    from tinct.colorization import strips
    from tinct.io.image import write_image

    t0 = time.perf_counter()
    if hints is not None:
        _check_takes_hints(colorizer, None)
    raw = _read_raw(path, max_pixels)
    note = _notes(path, raw)
    h, w = raw.array.shape[:2]
    extra: dict[str, Any] = {}
    if getattr(colorizer, "uses_boxes", False):
        found = _photo_boxes(boxes, path, raw)
        extra["boxes"] = torch.tensor(found.xyxy, dtype=torch.float32).reshape(-1, 4)
        count = (
            f"{len(found)} box{'' if len(found) == 1 else 'es'}"
            if boxes is not None
            else "no boxes: full-image network alone"
        )
        note = f"{note}; {count}" if note else count
    if hints is not None:
        ab_map, mask = hints.rasterize((h, w), colorizer.network_size(h, w), photo=path)
        extra["hints"] = (ab_map, mask)
        count = f"{len(hints)} hint{'' if len(hints) == 1 else 's'}"
        note = f"{note}; {count}" if note else count
    size = strips.panel_size(h, w)
    with_original = panel and not (note and "grayscale" in note)
    shrink = {name: strips.Shrink((h, w), size) if panel else None for name in ("gray", "pred")}
    shrink["original"] = strips.Shrink((h, w), size) if with_original else None
    lightness = strips.lightness(raw.array, raw.white_level, tile_rows, shrink["original"])
    del raw  # only L is needed from here on
    l_map = torch.from_numpy(lightness)[None, None]
    ab = colorizer.predict_ab_lowres(l_map, temperature, **extra).float().cpu()
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
    hints: str | os.PathLike[str] | HintFile | None = None,
    boxes: str | os.PathLike[str] | BoxSource | None = None,
    backend: str | None = None,
    device: str | torch.device = "cpu",
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
        hints: a JSON hint file (or a loaded :class:`~tinct.colorization.hints.HintFile`) of colour hints
            for a model with hint channels (SIGGRAPH17); its format is described in
            :mod:`tinct.colorization.hints`. Keys naming no input are reported on stderr; a photo one of
            whose points lies outside it is skipped (named), as an unreadable one.
        boxes: object boxes for an instance-aware model: a box file or folder
            (:func:`tinct.colorization.boxes.open_box_source`) or a source such as
            :func:`tinct.colorization.detector.detector_source`. A photo whose boxes cannot be read is skipped
            (named). Given to a model that is not instance-aware, they are ignored with a note.
        backend, device: where the network runs (:func:`load_colorizer`): ``"torch"`` on ``device``, or
            ``"onnxruntime"`` on the CPU (an ``.onnx`` model always; another is exported in memory).

    Returns:
        The table's rows (a skipped photo's has ``image`` and ``error``).

    Raises:
        DataError: none of ``inputs`` holds a photo; the hint file is missing or invalid, gives one list
            of points for several photos, or names a photo ambiguously (before any photo is colorized).
        ConfigError: ``temperature`` or ``max_pixels`` is invalid, or ``hints`` are given to a model
            without hint channels (before any photo is colorized).
        RunDirError: ``model`` cannot be loaded.
        ColorizeInterrupted: Ctrl-C (a ``KeyboardInterrupt``); the table lists the photos finished.
    """
    from tinct.colorization.photos import PHOTO_SUFFIXES

    max_pixels = None if max_pixels is None else check_max_pixels(max_pixels)
    hint_file = _hint_file(hints)
    from tinct.colorization.boxes import as_box_source

    box_source = as_box_source(boxes)
    colorizer, info = load_colorizer(model, temperature, backend=backend, device=device)
    if hint_file is not None:
        _check_takes_hints(colorizer, info.get("source") or model)
    if box_source is not None and not getattr(colorizer, "uses_boxes", False):
        print(
            f"tinct: model {info.get('source') or model} is not instance-aware: the boxes are not used "
            "(--instances, or a run of configs/colorization/instance_fusion.yaml, uses them)",
            file=sys.stderr,
        )
        box_source = None
    elif box_source is None and getattr(colorizer, "uses_boxes", False):
        print(
            "tinct: no boxes given (--boxes or --detector): the instance-aware model colorizes each photo "
            "with its full-image network alone",
            file=sys.stderr,
        )
    paths, roots, missing = collect_inputs(inputs, PHOTO_SUFFIXES)  # a folder's sub-folders are kept
    found_under = set(roots)
    for item in inputs:
        if Path(item).is_dir() and Path(item) not in found_under:
            print(f"tinct: {item}: no photos (jpg, png, tif, bmp)", file=sys.stderr)
    if not paths:
        raise DataError(f"no photos among {', '.join(map(str, inputs))}")
    photo_hints: list[Hints | None] = [None] * len(paths)
    if hint_file is not None:
        photo_hints, unused = hint_file.assign(paths)
        for key in unused:
            print(
                f"tinct: {hint_file.source}: {key!r} names none of the photos; its hints are unused",
                file=sys.stderr,
            )
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
    jobs = list(zip(paths, subdirs, stems, photo_hints, strict=True))
    try:
        for path, subdir, stem, hints_of_photo in track(jobs, "colorizing", enabled=progress):
            try:
                row = colorize_file(
                    colorizer,
                    path,
                    out / subdir,
                    temperature,
                    panel,
                    stem=stem,
                    max_pixels=max_pixels,
                    hints=hints_of_photo,
                    boxes=box_source,
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


def _photo_boxes(source: BoxSource | None, path: Path, raw: Any) -> Boxes:
    """The selected boxes of a photo (score > 0.7, best 8) from ``source`` (none without a source)."""
    from tinct.colorization.boxes import Boxes

    if source is None:
        return Boxes.empty()
    h, w = raw.array.shape[:2]
    rgb = None
    if getattr(source, "needs_pixels", False):  # a detector looks at the photo; box files do not
        rgb = raw.array.astype(np.float32) / np.float32(raw.white_level)
    return source.boxes_for(path, (h, w), rgb).select()


def _hint_file(hints: str | os.PathLike[str] | HintFile | None) -> HintFile | None:
    from tinct.colorization.hints import HintFile, load_hints

    if hints is None or isinstance(hints, HintFile):
        return hints
    return load_hints(hints)


def _check_takes_hints(colorizer: Any, source: Any) -> None:
    """ConfigError unless the colorizer's network reads colour hints (SIGGRAPH17: ``hint_channels``)."""
    from tinct.core.exceptions import ConfigError

    net = getattr(colorizer, "net", None)
    if not getattr(net, "hint_channels", 0):
        name = f"model {source}" if source else "this colorizer"
        raise ConfigError(
            f"{name} ({type(net).__name__}) takes no colour hints; use a SIGGRAPH17 model (model.arch: "
            "siggraph17, e.g. a run of configs/colorization/siggraph17_photos.yaml) with --hints"
        )


# Moved to tinct.colorization.evaluation (whole photos and inside boxes, SSIM, LPIPS, FID); still importable
# from here. evaluation imports this module only inside its functions, so there is no import cycle.
from tinct.colorization.evaluation import evaluate_colorization  # noqa: E402
