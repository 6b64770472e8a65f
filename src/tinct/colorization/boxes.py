"""Object boxes for instance-aware colorization (InstColorization): read from files or found by a detector.

InstColorization (Su et al. 2020) colorizes each detected object from its own crop and fuses the crops into
the full image. The paper keeps the boxes a COCO detector scores above :data:`MIN_SCORE` (0.7), at most
:data:`TOP_K` (8) per image, best first: :meth:`Boxes.select`.

Boxes come from a :class:`BoxSource`, made by :func:`open_box_source` for boxes stored in files, or by
:func:`tinct.colorization.detector.detector_source` for a torchvision detector whose weights the user
names. File formats:

- **YOLO** text: a folder of ``<stem>.txt`` files, or a dataset folder with a ``labels/`` subfolder
  (``images/foo.jpg`` -> ``labels/foo.txt``; ``images/a/foo.jpg`` -> ``labels/a/foo.txt`` when it exists).
  One box a line, ``class cx cy w h [score]``, centre and size normalised by the image's width and height.
  As in YOLO, an image without a label file, or with an empty one, has no objects (a background image).
- **COCO** JSON: ``{"images": [{"id", "file_name", "width", "height"}], "annotations": [{"image_id",
  "bbox": [x, y, w, h], "category_id", "score" (optional)}]}``, in pixels, images matched by file name.
  When the JSON's width and height differ from the photo's, the photo is taken for a resized copy and the
  boxes are scaled to it; an aspect ratio more than 1 % off is an error.
- **Per-image JSON** of ``[x0, y0, x1, y1]`` or ``[x0, y0, x1, y1, score]`` lists, in pixels: one file
  mapping photos to their lists (``{"foo.jpg": [[10, 20, 200, 180, 0.93]], "bar": []}``; a key matches a
  photo by file name, stem or trailing path parts, like the hint files), or a folder of ``<stem>.json``
  files each holding one photo's list.

Photos without an entry in a source have no boxes. Coordinates are pixels of the photo as tinct reads it
(upright after its EXIF rotation, :func:`tinct.io.image.read_image`), ``[x0, y0, x1, y1]`` with the
origin at the top-left corner of the top-left pixel. A box may reach up to 1 pixel (YOLO: 0.001 of the
side) beyond the photo and is then clipped to it; further out is an error. Every error is a
:class:`~tinct.core.exceptions.DataError` whose one line names the file and the line or entry.

References:
    Su, Chu, Huang, "Instance-aware Image Colorization", CVPR 2020, section 4 (implementation details).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tinct.core.exceptions import ConfigError, DataError, ShapeError
from tinct.core.naming import key_matches

__all__ = ["MIN_SCORE", "TOP_K", "BoxSource", "Boxes", "as_box_source", "open_box_source"]

#: InstColorization keeps the detections scoring above 0.7 ...
MIN_SCORE = 0.7
#: ... and at most 8 of them per image, best first.
TOP_K = 8

_PIXEL_TOLERANCE = 1.0
_YOLO_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class Boxes:
    """Object boxes of one image (read-only arrays).

    Attributes:
        xyxy: ``(N, 4)`` float64 ``[x0, y0, x1, y1]`` pixel coordinates in the image as tinct reads it
            (EXIF-upright), ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.
        scores: ``(N,)`` float64 in [0, 1]; 1.0 for ground-truth boxes.
        labels: ``(N,)`` int64 class ids of the source (COCO category ids, YOLO class indices), -1 when
            unknown.

    Raises:
        ShapeError: the arrays are not ``(N, 4)``, ``(N,)``, ``(N,)``.
        ValueError: a coordinate or score is not finite, a box is empty or starts below 0, or a score is
            outside [0, 1].

    Example:
        >>> xyxy = np.array([[0.0, 0.0, 2.0, 1.0], [1.0, 1.0, 3.0, 3.0]])
        >>> b = Boxes(xyxy, scores=np.array([0.9, 0.6]), labels=np.array([1, 5]))
        >>> len(b), len(b.select()), b.scaled(2.0, 1.0).xyxy[0].tolist()
        (2, 1, [0.0, 0.0, 4.0, 1.0])
        >>> b.mask(3, 3).astype(int)
        array([[1, 1, 0],
               [0, 1, 1],
               [0, 1, 1]])
    """

    xyxy: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.array(self.xyxy, dtype=np.float64)  # a copy: freezing it leaves the caller's array alone
        xyxy = xyxy.reshape(0, 4) if xyxy.size == 0 else xyxy
        scores = np.array(self.scores, dtype=np.float64)
        labels = np.array(self.labels)
        n = len(scores) if scores.ndim == 1 else -1
        if xyxy.shape != (n, 4) or labels.shape != (n,):
            raise ShapeError(
                f"Boxes needs xyxy (N, 4), scores (N,) and labels (N,), got {np.shape(self.xyxy)}, "
                f"{np.shape(self.scores)} and {np.shape(self.labels)}"
            )
        integral = labels.dtype.kind in "iu" or (
            labels.dtype.kind == "f" and np.array_equal(labels, np.round(labels))
        )
        if not integral:
            raise ValueError(f"Boxes labels must be integers, got {labels.tolist()}")
        if not (np.isfinite(xyxy).all() and np.isfinite(scores).all()):
            raise ValueError("Boxes coordinates and scores must be finite")
        bad = (xyxy[:, 0] < 0) | (xyxy[:, 1] < 0) | (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
        if bad.any():
            raise ValueError(
                f"box {int(np.argmax(bad))} {xyxy[bad][0].tolist()} is not 0 <= x0 < x1, 0 <= y0 < y1"
            )
        if ((scores < 0) | (scores > 1)).any():
            raise ValueError(f"Boxes scores must be in [0, 1], got {scores.min()} .. {scores.max()}")
        for name, value in (("xyxy", xyxy), ("scores", scores), ("labels", labels.astype(np.int64))):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        return f"Boxes({len(self)} boxes, scores {np.round(self.scores, 3).tolist()})"

    @classmethod
    def empty(cls) -> Boxes:
        """No boxes."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))

    def select(self, min_score: float = MIN_SCORE, top_k: int = TOP_K) -> Boxes:
        """The boxes scoring above ``min_score`` (strictly), best first, at most ``top_k`` of them.

        Boxes of equal score keep their order (a stable sort), so the selection is deterministic.

        Args:
            min_score: keep a box when its score is greater than this (the paper: 0.7).
            top_k: the most boxes to keep (the paper: 8), >= 0.

        Returns:
            The selected boxes, sorted by score, highest first.

        Raises:
            ValueError: ``min_score`` is not finite or ``top_k`` is negative.
        """
        if not math.isfinite(min_score):
            raise ValueError(f"min_score must be finite, got {min_score}")
        if int(top_k) != top_k or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0, got {top_k}")
        keep = np.flatnonzero(self.scores > min_score)
        keep = keep[np.argsort(-self.scores[keep], kind="stable")][: int(top_k)]
        return Boxes(self.xyxy[keep], self.scores[keep], self.labels[keep])

    def scaled(self, sx: float, sy: float) -> Boxes:
        """The boxes with x coordinates multiplied by ``sx`` and y by ``sy`` (for a resized image).

        Raises:
            ValueError: a factor is not finite and > 0.
        """
        if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
            raise ValueError(f"scale factors must be finite and > 0, got sx={sx}, sy={sy}")
        return Boxes(self.xyxy * np.array([sx, sy, sx, sy]), self.scores, self.labels)

    def mask(self, height: int, width: int) -> np.ndarray:
        """Where the boxes are: a bool ``(height, width)`` array, True inside the union of the boxes.

        Pixel ``(r, c)`` is inside a box when its centre is: ``x0 <= c + 0.5 <= x1`` and
        ``y0 <= r + 0.5 <= y1``.

        Raises:
            ValueError: ``height`` or ``width`` is negative.
        """
        if height < 0 or width < 0:
            raise ValueError(f"mask size must be >= 0, got {height} x {width}")
        out = np.zeros((height, width), dtype=bool)
        rows, cols = np.arange(height) + 0.5, np.arange(width) + 0.5
        for x0, y0, x1, y1 in self.xyxy:
            r0, r1 = np.searchsorted(rows, y0, "left"), np.searchsorted(rows, y1, "right")
            c0, c1 = np.searchsorted(cols, x0, "left"), np.searchsorted(cols, x1, "right")
            out[r0:r1, c0:c1] = True
        return out


@runtime_checkable
class BoxSource(Protocol):
    """Where the boxes of each image come from (:func:`open_box_source`, :func:`tinct.colorization.detector.detector_source`).

    Attributes:
        description: one line for the user, e.g. ``"YOLO labels in data/labels"``.
    """

    description: str

    def boxes_for(self, image: Path, size: tuple[int, int], rgb: np.ndarray | None = None) -> Boxes:
        """All boxes of ``image`` (not yet selected: see :meth:`Boxes.select`), in pixels of ``size``.

        Args:
            image: the photo's path (its name finds its boxes in a file source).
            size: ``(H, W)`` of the photo as tinct reads it; file boxes are converted to and checked
                against it.
            rgb: the photo as an ``H x W x 3`` float array in [0, 1] when the caller has read it already
                (a detector uses it; file sources ignore it). Without it the photo must exist on disk.

        Raises:
            DataError: the photo does not exist (and no ``rgb``), or its boxes are invalid; the message
                names the file.
        """
        ...


def as_box_source(boxes: str | os.PathLike[str] | BoxSource | None) -> BoxSource | None:
    """``boxes`` as a box source: a path is opened (:func:`open_box_source`), a source (anything with
    ``boxes_for``, e.g. :func:`tinct.colorization.detector.detector_source`) is returned as it is, None stays
    None.

    Raises:
        DataError: a path that holds no readable boxes.
        ConfigError: neither a path nor a box source.
    """
    if boxes is None or isinstance(boxes, (str, os.PathLike)):
        return None if boxes is None else open_box_source(boxes)
    if not callable(getattr(boxes, "boxes_for", None)):
        raise ConfigError(
            f"boxes: expected a path or a box source with boxes_for(), got {type(boxes).__name__}"
        )
    return boxes


def open_box_source(spec: str | os.PathLike[str]) -> BoxSource:
    """The boxes stored in a file or folder (the formats are described in the module's docstring).

    Args:
        spec: a folder of YOLO ``<stem>.txt`` files, a dataset folder with a ``labels/`` subfolder, a COCO
            JSON file, a JSON file mapping photos to ``[x0, y0, x1, y1, score]`` lists, or a folder of
            ``<stem>.json`` files each holding such a list.

    Returns:
        A :class:`BoxSource`; files are read when the boxes of a photo are asked for, except a single JSON
        file, which is read (and its structure checked) now.

    Raises:
        DataError: ``spec`` does not exist, is a folder with no box files, or a JSON file that is empty, not
            valid JSON or of no known structure.

    Example:
        >>> import tempfile
        >>> from tinct.colorization.photos import skimage_photos
        >>> photo = skimage_photos()[0]  # astronaut.png, 512 x 512
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (Path(d) / f"{photo.stem}.txt").write_text("0 0.5 0.25 0.5 0.5\\n")
        ...     source = open_box_source(d)
        ...     boxes = source.boxes_for(photo, (512, 512))
        >>> source.description.startswith("YOLO labels in"), boxes.xyxy.tolist(), boxes.labels.tolist()
        (True, [[128.0, 0.0, 384.0, 256.0]], [0])
    """
    p = Path(spec)
    if p.is_file():
        if p.suffix.lower() != ".json":
            raise DataError(
                f"{p}: not a box file: expected a COCO or per-image .json file, or a folder of YOLO .txt "
                "label files"
            )
        data = _load_json(p)
        if isinstance(data, dict) and ("images" in data or "annotations" in data):
            return _CocoSource(p, data)
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            return _JsonFileSource(p, data)
        raise DataError(
            f"{p}: unrecognised JSON structure: expected COCO ('images' and 'annotations') or an object "
            'mapping photo names to box lists such as {"photo.jpg": [[x0, y0, x1, y1, score]]}'
        )
    if p.is_dir():
        if (p / "labels").is_dir():
            return _YoloSource(p / "labels", p / "images")
        has_txt = any(q.name != "classes.txt" for q in p.glob("*.txt"))
        has_json = any(p.glob("*.json"))
        if has_txt and has_json:
            raise DataError(f"{p}: holds both .txt and .json files: cannot tell YOLO labels from JSON boxes")
        if has_txt:
            return _YoloSource(p, None)
        if has_json:
            return _JsonFolderSource(p)
        raise DataError(
            f"{p}: no box files: expected YOLO <stem>.txt files, a labels/ subfolder, or <stem>.json files"
        )
    raise DataError(f"{p}: no such box file or folder")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
        ok = h > 0 and w > 0 and (h, w) == tuple(size)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"size must be (H, W), two integers > 0, got {size!r}")
    return h, w


def _check_image(image: Path, rgb: np.ndarray | None) -> None:
    if rgb is None and not Path(image).is_file():
        raise DataError(f"{image}: no such image file")


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: {what} must be a number, got {json.dumps(value)}")
    if not math.isfinite(value):
        raise DataError(f"{where}: {what} is {value} (NaN and infinity are not allowed)")
    return float(value)


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _score(value: float, where: str) -> float:
    if not 0 <= value <= 1:
        raise DataError(f"{where}: score {value:g} is outside [0, 1]")
    return value


def _inside(
    box: Sequence[float],
    extent: tuple[float, float],
    where: str,
    image: str,
    shown: str = "",
    yolo: bool = False,
) -> list[float]:
    """``box`` (x0, y0, x1, y1, non-empty) clipped to ``[0, W] x [0, H]``; an error when it reaches beyond
    the tolerance (1 pixel, or 0.001 for normalised YOLO boxes) or lies in the margin only."""
    x0, y0, x1, y1 = box
    w, h = extent
    tol = _YOLO_TOLERANCE if yolo else _PIXEL_TOLERANCE
    if x0 < -tol or y0 < -tol or x1 > w + tol or y1 > h + tol or x0 >= w or y0 >= h or x1 <= 0 or y1 <= 0:
        shown = shown or f"{_fmt(box)} (x0 y0 x1 y1)"
        by = "0.001 of its side" if yolo else "1 pixel"
        raise DataError(f"{where}: box {shown} is outside {image} (by more than {by})")
    return [max(x0, 0.0), max(y0, 0.0), min(x1, w), min(y1, h)]


def _boxes(rows: list[tuple[list[float], float, int]], sx: float = 1.0, sy: float = 1.0) -> Boxes:
    if not rows:
        return Boxes.empty()
    xyxy = np.array([r[0] for r in rows], dtype=np.float64) * np.array([sx, sy, sx, sy])
    return Boxes(xyxy, np.array([r[1] for r in rows]), np.array([r[2] for r in rows], dtype=np.int64))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the box file ({err})") from err


def _load_json(path: Path) -> Any:
    from tinct.core.jsonfile import read_json

    return read_json(path, "JSON file", "expected boxes")


def _xyxy_list(entries: Any, where: str, size: tuple[int, int], image: Path) -> Boxes:
    """Boxes from a JSON list of ``[x0, y0, x1, y1(, score)]`` pixel lists."""
    if not isinstance(entries, list):
        raise DataError(
            f"{where}: expected a list of [x0, y0, x1, y1, score] boxes, got {json.dumps(entries)}"
        )
    h, w = size
    rows = []
    for k, entry in enumerate(entries):
        at = f"{where} box {k}"
        if not isinstance(entry, list) or len(entry) not in (4, 5):
            raise DataError(
                f"{at}: expected [x0, y0, x1, y1] or [x0, y0, x1, y1, score], got {json.dumps(entry)}"
            )
        values = [_number(v, at, "each value") for v in entry]
        if values[2] <= values[0] or values[3] <= values[1]:
            raise DataError(f"{at}: box {_fmt(values[:4])} has width or height <= 0 (x1 <= x0 or y1 <= y0)")
        score = _score(values[4], at) if len(values) == 5 else 1.0
        rows.append((_inside(values[:4], (w, h), at, _image_text(image, w, h)), score, -1))
    return _boxes(rows)


def _image_text(image: Path, w: float, h: float) -> str:
    return f"the {w:g} x {h:g} (width x height) image {Path(image).name}"


class _YoloSource:
    """YOLO label files ``<stem>.txt`` in ``labels`` (``images``: the dataset's image folder, if any)."""

    def __init__(self, labels: Path, images: Path | None) -> None:
        if not any(q.name != "classes.txt" for q in labels.rglob("*.txt")):
            raise DataError(f"{labels}: no YOLO .txt label files")
        self.labels = labels
        self.images = images
        self.description = f"YOLO labels in {labels}"

    def _label_file(self, image: Path) -> Path:
        if self.images is not None:
            try:
                relative = image.resolve().relative_to(self.images.resolve())
            except ValueError:
                relative = None
            if relative is not None and (self.labels / relative.with_suffix(".txt")).is_file():
                return self.labels / relative.with_suffix(".txt")
        return self.labels / f"{image.stem}.txt"

    def boxes_for(self, image: Path, size: tuple[int, int], rgb: np.ndarray | None = None) -> Boxes:
        h, w = _check_size(size)
        _check_image(image, rgb)
        label = self._label_file(Path(image))
        if not label.is_file():
            return Boxes.empty()
        rows = []
        for n, line in enumerate(_read_text(label).splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            at = f"{label}:{n}"
            if len(fields) not in (5, 6):
                hint = " (a segmentation polygon? only boxes are read)" if len(fields) > 6 else ""
                raise DataError(
                    f"{at}: expected 5 or 6 fields (class cx cy w h [score]), got {len(fields)}{hint}"
                )
            try:
                values = [float(f) for f in fields]
            except ValueError:
                raise DataError(f"{at}: not a number in {line.strip()!r}") from None
            if not all(math.isfinite(v) for v in values):
                raise DataError(f"{at}: NaN or infinity in {line.strip()!r}")
            if values[0] < 0 or values[0] != int(values[0]):
                raise DataError(f"{at}: class {fields[0]!r} is not an integer >= 0")
            cx, cy, bw, bh = values[1:5]
            if bw <= 0 or bh <= 0:
                raise DataError(f"{at}: box width {bw:g} or height {bh:g} <= 0")
            score = _score(values[5], at) if len(values) == 6 else 1.0
            box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
            shown = f"{_fmt(values[1:5])} (cx cy w h, normalised)"
            x0, y0, x1, y1 = _inside(box, (1.0, 1.0), at, _image_text(image, w, h), shown, yolo=True)
            rows.append(([x0 * w, y0 * h, x1 * w, y1 * h], score, int(values[0])))
        return _boxes(rows)


class _CocoSource:
    """A COCO annotation file (detections too: an annotation may carry a ``score``)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        images, annotations = data.get("images"), data.get("annotations")
        if not isinstance(images, list) or not isinstance(annotations, list):
            raise DataError(f"{path}: a COCO JSON needs the lists 'images' and 'annotations'")
        self.path = path
        self.description = f"COCO boxes in {path}"
        self._by_name: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for i, record in enumerate(images):
            if (
                not isinstance(record, dict)
                or not _is_id(record.get("id"))
                or not isinstance(record.get("file_name"), str)
            ):
                raise DataError(f"{path}: images[{i}] needs an 'id' (integer or string) and a 'file_name'")
            name = PurePosixPath(record["file_name"].replace("\\", "/")).name
            self._by_name.setdefault(name, []).append((i, record))
        self._annotations: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
        for j, ann in enumerate(annotations):
            if not isinstance(ann, dict) or not _is_id(ann.get("image_id")) or "bbox" not in ann:
                raise DataError(f"{path}: annotations[{j}] needs an 'image_id' and a 'bbox'")
            self._annotations.setdefault(ann["image_id"], []).append((j, ann))

    def boxes_for(self, image: Path, size: tuple[int, int], rgb: np.ndarray | None = None) -> Boxes:
        h, w = _check_size(size)
        _check_image(image, rgb)
        records = self._by_name.get(Path(image).name, [])
        if len(records) > 1:
            where = ", ".join(f"images[{i}]" for i, _ in records)
            raise DataError(
                f"{self.path}: {where} are all named {Path(image).name!r}; cannot tell which is {image}"
            )
        if not records:
            return Boxes.empty()
        i, record = records[0]
        jw, jh = self._size(i, record, (w, h))
        if (jw, jh) != (w, h) and abs((w / h) / (jw / jh) - 1) > 0.01:
            swapped = abs((w / h) / (jh / jw) - 1) <= 0.01
            hint = (
                "; width and height swapped: give boxes for the upright (EXIF-rotated) photo"
                if swapped
                else ""
            )
            raise DataError(
                f"{self.path}: images[{i}] is {jw:g} x {jh:g} but {image} is {w} x {h} (width x height): "
                f"another aspect ratio, not a resized copy{hint}"
            )
        rows = []
        for j, ann in self._annotations.get(record["id"], []):
            at = f"{self.path}: annotations[{j}]"
            bbox = ann["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise DataError(f"{at}: 'bbox' must be [x, y, width, height], got {json.dumps(bbox)}")
            x, y, bw, bh = (_number(v, at, "each bbox value") for v in bbox)
            if bw <= 0 or bh <= 0:
                raise DataError(f"{at}: bbox {_fmt([x, y, bw, bh])} has width or height <= 0")
            score = _score(_number(ann["score"], at, "'score'"), at) if "score" in ann else 1.0
            label = ann.get("category_id", -1)
            if isinstance(label, bool) or not isinstance(label, int):
                raise DataError(f"{at}: 'category_id' must be an integer, got {json.dumps(label)}")
            shown = f"{_fmt([x, y, bw, bh])} (x y w h)"
            box = _inside([x, y, x + bw, y + bh], (jw, jh), at, _image_text(image, jw, jh), shown)
            rows.append((box, score, label))
        return _boxes(rows, w / jw, h / jh)

    def _size(self, i: int, record: dict[str, Any], actual: tuple[int, int]) -> tuple[float, float]:
        if "width" not in record and "height" not in record:
            return actual
        at = f"{self.path}: images[{i}]"
        jw, jh = (_number(record.get(k), at, f"'{k}'") for k in ("width", "height"))
        if jw <= 0 or jh <= 0:
            raise DataError(f"{at}: width and height must be > 0, got {jw:g} x {jh:g}")
        return jw, jh


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


class _JsonFileSource:
    """One JSON object mapping photo keys (name, stem, trailing path parts) to box lists."""

    def __init__(self, path: Path, data: dict[str, list[Any]]) -> None:
        self.path = path
        self.data = data
        self.description = f"per-image boxes in {path}"

    def boxes_for(self, image: Path, size: tuple[int, int], rgb: np.ndarray | None = None) -> Boxes:
        size = _check_size(size)
        _check_image(image, rgb)
        keys = [k for k in self.data if key_matches(k, Path(image))]
        if len(keys) > 1:
            raise DataError(
                f"{self.path}: keys {', '.join(map(repr, keys))} all name {image}; give its boxes once"
            )
        if not keys:
            return Boxes.empty()
        return _xyxy_list(self.data[keys[0]], f"{self.path}: entry {keys[0]!r}", size, Path(image))


class _JsonFolderSource:
    """A folder of ``<stem>.json`` files, each holding one photo's box list."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"per-image box files in {folder}"

    def boxes_for(self, image: Path, size: tuple[int, int], rgb: np.ndarray | None = None) -> Boxes:
        size = _check_size(size)
        _check_image(image, rgb)
        path = self.folder / f"{Path(image).stem}.json"
        if not path.is_file():
            return Boxes.empty()
        return _xyxy_list(_load_json(path), str(path), size, Path(image))
