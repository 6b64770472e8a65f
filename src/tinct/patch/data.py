"""Colour patches in photos with CIELAB targets and camera metadata (``data.patches``).

A data set is a folder of photos plus ``labels.csv``::

    image,L,a,b,group,camera,exposure_time,iso,f_number,brightness,patch_x0,patch_y0,patch_x1,patch_y1
    p001.jpg,62.1,14.3,18.0,shade-07,Canon EOS R5,0.0166667,400,2.8,-1.25,120,80,180,140

``image`` (relative to the folder), ``L``, ``a``, ``b`` (CIELAB, L in [0, 100]) are required. ``group`` (a
shade or set id; default: the image itself), ``camera`` and the metadata columns ``exposure_time``
(seconds), ``iso``, ``f_number`` and ``brightness`` (APEX Bv) are optional, and any other column is kept.
Metadata the CSV lacks (a missing column or an empty cell) is read per image from ``<stem>.json`` beside
the image, else from its EXIF, with the unit rules of :mod:`tinct.io.exif`; the CSV always wins.
``camera`` falls back to EXIF Make/Model, then ``"unknown"``.

The table gains ``ev100`` (exposure value at ISO 100) and ``exposure_offset`` (``(Bv + 5) - EV100``, see
:func:`tinct.io.exif.exposure_offset`), NaN where unknown. A model sees :data:`META_FEATURES` with a
known/unknown mask (:meth:`PatchTable.meta_features`).

:func:`split_patches` splits at random, by group (no shade in two splits) or by camera (unseen cameras
in test); :class:`PatchDataset` yields square crops around each patch plus robust colour statistics.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from tinct.core.checks import check_choice
from tinct.core.exceptions import DataError
from tinct.io.exif import PhotoMeta, normalize_meta, read_json_meta

__all__ = [
    "LABEL_COLUMNS",
    "META_COLUMNS",
    "META_FEATURES",
    "PatchDataset",
    "PatchTable",
    "read_patch_table",
    "split_patches",
]

LABEL_COLUMNS = ("image", "L", "a", "b")
META_COLUMNS = ("exposure_time", "iso", "f_number", "brightness")
META_FEATURES = ("log2_exposure_time", "log2_iso_100", "ev100", "brightness")
SPLIT_METHODS = ("random", "group", "camera")

_POSITIVE = ("exposure_time", "iso", "f_number")


@dataclass
class PatchTable:
    """A patch data set: its folder and one table row per image.

    Attributes:
        root: the data folder; ``table.image`` is relative to it.
        table: columns ``image``, ``L``, ``a``, ``b``, ``group``, ``camera`` (str), ``exposure_time``,
            ``iso``, ``f_number``, ``brightness``, ``ev100``, ``exposure_offset`` (float, NaN when
            unknown), then any extra CSV columns. Rows are in CSV order with a 0-based range index.
    """

    root: Path
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    def cameras(self) -> list[str]:
        """Sorted unique camera names."""
        return sorted(set(self.table["camera"].astype(str)))

    def meta_features(self) -> tuple[np.ndarray, np.ndarray]:
        """The :data:`META_FEATURES` of every row and which of them are known.

        Returns:
            ``(values, mask)``: ``(N, 4)`` float32 ``log2(t)``, ``log2(ISO / 100)``, ``EV100``, ``Bv`` with
            unknown entries set to 0, and the ``(N, 4)`` bool mask (True = known).
        """
        t = self.table
        with np.errstate(divide="ignore", invalid="ignore"):
            feats = np.stack(
                [
                    np.log2(t["exposure_time"].to_numpy(np.float64)),
                    np.log2(t["iso"].to_numpy(np.float64) / 100.0),
                    t["ev100"].to_numpy(np.float64),
                    t["brightness"].to_numpy(np.float64),
                ],
                axis=1,
            ).reshape(len(t), len(META_FEATURES))
        mask = np.isfinite(feats)
        return np.where(mask, feats, 0.0).astype(np.float32), mask


def _line(i: int) -> int:
    return i + 2  # 1-based, after the header line


def read_patch_table(
    root: str | os.PathLike[str],
    *,
    labels: str = "labels.csv",
    metadata: bool = True,
    check_images: bool = True,
) -> PatchTable:
    """Read and validate a patch data set (the format is in the module docstring).

    Args:
        root: the data folder.
        labels: the CSV file name inside ``root``.
        metadata: fill metadata the CSV lacks from ``<stem>.json`` beside each image, else its EXIF.
        check_images: open every image with Pillow (header only) so a corrupt file fails here, not mid-run.

    Returns:
        The table (see :class:`PatchTable`).

    Raises:
        DataError: naming the file (and the CSV line and image for a bad row): missing folder or CSV,
            unparsable or empty CSV, missing required columns, a non-finite or non-numeric L/a/b, L outside
            [0, 100], duplicate image names, missing or unreadable images, a metadata value that is not a
            number or (exposure time, ISO, f-number) not positive.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such data folder")
    csv = root / labels
    if not csv.is_file():
        raise DataError(f"{csv}: no such labels file (expected columns {', '.join(LABEL_COLUMNS)})")
    try:
        df = pd.read_csv(csv, dtype={"image": str, "group": str, "camera": str}, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{csv}: empty file; expected a header with columns {', '.join(LABEL_COLUMNS)}"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{csv}: cannot parse as CSV ({err})") from err
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{csv}: missing required column(s) {missing}; found {list(df.columns)}")
    if df.empty:
        raise DataError(f"{csv}: no rows")
    df = df.reset_index(drop=True)
    n = len(df)

    blank = df["image"].isna() | (df["image"].astype(str).str.strip() == "")
    if blank.any():
        raise DataError(f"{csv}: line {_line(int(np.flatnonzero(blank)[0]))}: empty image name")
    names = [str(x).strip() for x in df["image"]]

    lab = {c: _numeric_column(df, c, csv, names, finite=True) for c in ("L", "a", "b")}
    out_of_range = np.flatnonzero((lab["L"] < 0) | (lab["L"] > 100))
    if out_of_range.size:
        i = int(out_of_range[0])
        raise DataError(
            f"{csv}: line {_line(i)} (image {names[i]!r}): L must be in [0, 100], got {lab['L'][i]}"
            + _more(out_of_range.size)
        )

    dup = pd.Series(names).duplicated(keep=False).to_numpy()
    if dup.any():
        first = names[int(np.flatnonzero(dup)[0])]
        lines = [_line(i) for i, name in enumerate(names) if name == first]
        count = len({names[i] for i in np.flatnonzero(dup)})
        raise DataError(
            f"{csv}: image {first!r} is listed more than once (lines {', '.join(map(str, lines))})"
            + (f"; {count} duplicated names in all" if count > 1 else "")
        )

    paths = [root / name for name in names]
    absent = [name for name, p in zip(names, paths, strict=True) if not p.is_file()]
    if absent:
        shown = ", ".join(map(repr, absent[:3])) + (", ..." if len(absent) > 3 else "")
        raise DataError(f"{root}: {len(absent)} image(s) listed in {csv.name} do not exist: {shown}")

    meta = {c: _meta_column(df, c, csv, names) for c in META_COLUMNS}
    camera: list[str | None] = [_cell_text(x) for x in df["camera"]] if "camera" in df.columns else [None] * n
    for i, path in enumerate(paths):
        need = metadata and (camera[i] is None or any(math.isnan(meta[c][i]) for c in META_COLUMNS))
        found = _image_meta(path, need_meta=need, check=check_images)
        if found is None:
            continue
        for c in META_COLUMNS:
            value = getattr(found, c)
            if math.isnan(meta[c][i]) and value is not None:
                meta[c][i] = value
        if camera[i] is None:
            camera[i] = found.camera

    group = [_cell_text(x) for x in df["group"]] if "group" in df.columns else [None] * n
    with np.errstate(divide="ignore", invalid="ignore"):
        ev100 = np.log2(meta["f_number"] ** 2 / meta["exposure_time"]) - np.log2(meta["iso"] / 100.0)
    table = pd.DataFrame(
        {
            "image": pd.Series(names, dtype=str),
            **lab,
            "group": pd.Series(
                [g if g is not None else name for g, name in zip(group, names, strict=True)], dtype=str
            ),
            "camera": pd.Series([c if c is not None else "unknown" for c in camera], dtype=str),
            **meta,
            "ev100": ev100,
            "exposure_offset": meta["brightness"] + 5.0 - ev100,
        }
    )
    for c in df.columns:
        if c not in table.columns:  # ev100 and exposure_offset are always recomputed
            table[c] = df[c].to_numpy()
    return PatchTable(root, table)


def _more(count: int) -> str:
    return f" ({count - 1} more row(s) like it)" if count > 1 else ""


def _cell_text(value: object) -> str | None:
    if value is None or pd.isna(value):
        return None
    text = str(value).strip()
    return text or None


def _numeric_column(df: pd.DataFrame, col: str, csv: Path, names: list[str], *, finite: bool) -> np.ndarray:
    """Column ``col`` as float64; DataError for a non-numeric cell (and any NaN/inf when ``finite``)."""
    raw = df[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64, copy=True)
    blank = raw.isna().to_numpy()
    bad = ~np.isfinite(values) if finite else (np.isnan(values) & ~blank) | np.isinf(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a finite number" if finite else "a finite number or empty"
        raise DataError(
            f"{csv}: line {_line(i)} (image {names[i]!r}): {col} must be {what}, got {raw.iloc[i]!r}"
            + _more(int(bad.sum()))
        )
    return values


def _meta_column(df: pd.DataFrame, col: str, csv: Path, names: list[str]) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), np.nan)
    values = _numeric_column(df, col, csv, names, finite=False)
    if col in _POSITIVE:
        bad = np.flatnonzero(values <= 0)
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{csv}: line {_line(i)} (image {names[i]!r}): {col} must be > 0, got {values[i]}"
                + _more(bad.size)
            )
    return values


def _image_meta(path: Path, *, need_meta: bool, check: bool) -> PhotoMeta | None:
    """Open ``path`` (header only) when ``check`` or its EXIF is needed; the metadata when ``need_meta``."""
    from tinct.io.exif import _exif_tags

    side = path.with_name(path.stem + ".json")
    has_json = need_meta and side.is_file()
    tags: dict[str, object] = {}
    if check or (need_meta and not has_json):
        if path.suffix.lower() == ".npy":
            try:
                np.load(path, mmap_mode="r", allow_pickle=False)
            except Exception as err:  # numpy raises several types for corrupt files
                raise DataError(f"{path}: cannot read as a .npy array ({err})") from err
        else:
            tags = _exif_tags(path)
    if not need_meta:
        return None
    return read_json_meta(side) if has_json else normalize_meta(tags, str(path))


# ---------------------------------------------------------------------------------------------- splits


def split_patches(
    table: pd.DataFrame,
    by: Literal["random", "group", "camera"] = "group",
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
    test_cameras: Sequence[str] | None = None,
) -> dict[str, list[int]]:
    """Deterministic train / val / test split of the rows of a patch table.

    - ``"random"``: rows are shuffled; ``round(test_fraction * N)`` go to test, then
      ``round(val_fraction * rest)`` to val.
    - ``"group"``: whole groups (column ``group``; without it each row is its own group) are shuffled and
      added to test until it holds ``>= test_fraction * N`` rows, then to val until ``>= val_fraction *
      rest``; no group is in two splits.
    - ``"camera"``: test holds the rows of ``test_cameras`` (default: one camera drawn with ``seed``),
      ``test_fraction`` is not used; val is drawn by group from the other cameras as above.

    Args:
        table: a :class:`PatchTable`'s ``table`` (any frame with the columns the method needs).
        by: the split method.
        val_fraction: share of the non-test rows for validation, in [0, 1).
        test_fraction: share of all rows for test, in [0, 1).
        seed: the random seed; the same seed and table give the same split.
        test_cameras: camera names held out for test (``by="camera"``).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``: sorted 0-based row positions.

    Raises:
        UnknownNameError: ``by`` is not a split method.
        ValueError: a fraction outside [0, 1).
        DataError: fewer than 2 cameras or an unknown camera name (valid ones listed) for ``by="camera"``,
            or a split that leaves no training rows.

    Example:
        >>> df = pd.DataFrame({"group": ["a", "a", "b", "b", "c", "c", "d", "d"]})
        >>> s = split_patches(df, "group", val_fraction=0.3, test_fraction=0.25, seed=0)
        >>> sorted(len(v) for v in s.values()), sorted(i for v in s.values() for i in v)
        ([2, 2, 4], [0, 1, 2, 3, 4, 5, 6, 7])
    """
    check_choice(by, SPLIT_METHODS, "split method")
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= f < 1:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    n = len(table)
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    groups = table["group"].astype(str).to_numpy() if "group" in table.columns else rows.astype(str)
    if by == "random":
        order = rng.permutation(n)
        n_test = round(test_fraction * n)
        n_val = round(val_fraction * (n - n_test))
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    elif by == "group":
        test, rest = _take_groups(groups, rows, test_fraction * n, rng)
        val, train = _take_groups(groups, rest, val_fraction * len(rest), rng)
    else:
        if "camera" not in table.columns:
            raise DataError(f"split by camera needs a 'camera' column; found {list(table.columns)}")
        cameras = table["camera"].astype(str).to_numpy()
        valid = sorted(set(cameras))
        if len(valid) < 2:
            raise DataError(f"split by camera needs at least 2 cameras, the data has {valid}")
        if test_cameras is None:
            chosen = [valid[int(rng.integers(len(valid)))]]
        else:
            chosen = [test_cameras] if isinstance(test_cameras, str) else [str(c) for c in test_cameras]
            unknown = [c for c in chosen if c not in valid]
            if unknown or not chosen:
                raise DataError(f"unknown test camera(s) {unknown or chosen}; valid cameras: {valid}")
        held = np.isin(cameras, chosen)
        test, rest = rows[held], rows[~held]
        val, train = _take_groups(groups, rest, val_fraction * len(rest), rng)
    if len(train) == 0:
        raise DataError(
            f"split by {by} of {n} row(s) with test_fraction={test_fraction}, val_fraction={val_fraction} "
            f"leaves no training rows (test {len(test)}, val {len(val)})"
        )
    return {"train": sorted(map(int, train)), "val": sorted(map(int, val)), "test": sorted(map(int, test))}


def _take_groups(
    groups: np.ndarray, rows: np.ndarray, target: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of shuffled whole groups until at least ``target`` rows are taken, and the rows left."""
    if target <= 0 or len(rows) == 0:
        return rows[:0], rows
    names = np.unique(groups[rows])
    taken: list[str] = []
    count = 0
    sizes = pd.Series(groups[rows]).value_counts()
    for g in names[rng.permutation(len(names))]:
        if count >= target:
            break
        taken.append(g)
        count += int(sizes[g])
    mask = np.isin(groups[rows], taken)
    return rows[mask], rows[~mask]


# ---------------------------------------------------------------------------------------------- dataset


class PatchDataset(Dataset[dict[str, Tensor]]):
    """Square crops around each patch with its CIELAB target, metadata and robust colour statistics.

    The crop is the tight patch box grown by ``context`` pixels per side (clipped to the image), resized to
    ``size x size`` (bilinear with antialiasing, on sRGB-encoded values). Images are read with
    :func:`tinct.io.image.read_image` and taken as sRGB-encoded whatever their bit depth (as
    :mod:`tinct.colorization.photos`); boxes are in the stored pixel grid (EXIF Orientation is not applied).

    Each sample is a dict:

    - ``image``: ``(3, size, size)`` float32 sRGB in [0, 1];
    - ``lab``: ``(3,)`` float32 CIELAB target;
    - ``meta``, ``meta_mask``: ``(4,)`` float32 :data:`META_FEATURES` (0 where unknown) and bool known-mask;
    - ``camera``: long, ``camera_index[camera]`` (0 = unknown camera or no index; give known cameras ids from 1);
    - ``stats``: ``(12,)`` float32, on linear RGB: per-channel median and median absolute deviation (not
      scaled) of the tight box shrunk by 10 % per side, then per-channel median and 95th percentile of the
      context ring (crop minus tight box); zeros for the ring when ``context == 0`` or the ring is empty;
    - ``index``: long row position in the table.

    Args:
        data: the patch table.
        indices: the table rows this data set serves (e.g. one split of :func:`split_patches`).
        boxes: image name -> tight box ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive; None: the
            whole image is the patch.
        size: output side in pixels.
        context: pixels of surround added on each side of the box.
        camera_index: camera name -> id (ids from 1).
        cache: keep prepared samples in memory after the first read (per process: each DataLoader worker
            has its own cache).

    Raises:
        DataError: a box is missing for an image, malformed or outside its image, or an image is unreadable
            (the file is named).
        IndexError: an index outside the table.
    """

    def __init__(
        self,
        data: PatchTable,
        indices: Sequence[int],
        *,
        boxes: Mapping[str, tuple[int, int, int, int]] | None,
        size: int = 64,
        context: int = 0,
        camera_index: Mapping[str, int] | None = None,
        cache: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        n = len(data)
        self.indices = [int(i) for i in indices]
        outside = [i for i in self.indices if not 0 <= i < n]
        if outside:
            raise IndexError(f"row index {outside[0]} outside the table of {n} rows")
        self.data = data
        self.size = size
        self.context = context
        self.cache = cache
        table = data.table
        self._names = [str(x) for x in table["image"]]
        if boxes is not None:
            missing = [self._names[i] for i in self.indices if self._names[i] not in boxes]
            if missing:
                raise DataError(
                    f"{data.root}: no patch box for {len(missing)} image(s): "
                    + ", ".join(map(repr, missing[:3]))
                    + (", ..." if len(missing) > 3 else "")
                )
            for i in self.indices:
                _check_box(boxes[self._names[i]], data.root / self._names[i])
        self.boxes = boxes
        feats, mask = data.meta_features()
        self._meta = torch.from_numpy(feats)
        self._mask = torch.from_numpy(mask)
        self._lab = torch.from_numpy(table[["L", "a", "b"]].to_numpy(np.float32, copy=True))
        index = camera_index or {}
        self._camera = [int(index.get(str(c), 0)) for c in table["camera"]]
        self._cache: dict[int, dict[str, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        row = self.indices[i]
        sample = self._cache.get(row)
        if sample is None:
            sample = self._load(row)
            if self.cache:
                self._cache[row] = sample
        return {k: v.clone() for k, v in sample.items()}

    def _load(self, row: int) -> dict[str, Tensor]:
        from tinct.io.image import RawImage, read_image, to_tensor_image

        path = self.data.root / self._names[row]
        try:
            raw = read_image(path)
        except DataError:
            raise
        except Exception as err:  # OpenCV and numpy raise several types for corrupt files
            raise DataError(f"{path}: cannot read image ({err})") from err
        h, w = raw.array.shape[:2]
        box = (0, 0, w, h) if self.boxes is None else tuple(int(v) for v in self.boxes[self._names[row]])
        x0, y0, x1, y1 = box
        if x1 > w or y1 > h:
            raise DataError(f"{path}: patch box {box} is outside the {w}x{h} image")
        c = self.context
        cx0, cy0, cx1, cy1 = max(0, x0 - c), max(0, y0 - c), min(w, x1 + c), min(h, y1 + c)
        stored = raw.array[cy0:cy1, cx0:cx1]
        crop = to_tensor_image(RawImage(path, stored, raw.white_level, raw.linear))
        resized = F.interpolate(
            crop[None], size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
        )[0]
        linear = _linear(stored, crop)
        return {
            "image": resized.contiguous(),
            "lab": self._lab[row],
            "meta": self._meta[row],
            "meta_mask": self._mask[row],
            "camera": torch.tensor(self._camera[row], dtype=torch.long),
            "stats": _patch_stats(linear, (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0), c > 0),
            "index": torch.tensor(row, dtype=torch.long),
        }


@functools.cache
def _srgb_lut(levels: int) -> np.ndarray:
    """srgb_to_linear of every code value ``k / (levels - 1)`` (the values to_tensor_image produces)."""
    from tinct.color.rgb import srgb_to_linear

    codes = torch.arange(levels, dtype=torch.float32) / float(levels - 1)
    return srgb_to_linear(codes[:, None].expand(levels, 3), dim=-1)[:, 0].numpy()


def _linear(stored: np.ndarray, encoded: Tensor) -> np.ndarray:
    """Linear RGB ``(3, h, w)`` of a crop: a table look-up for 8/16-bit files, else srgb_to_linear."""
    if stored.dtype in (np.uint8, np.uint16):
        return _srgb_lut(int(np.iinfo(stored.dtype).max) + 1)[stored].transpose(2, 0, 1)
    from tinct.color.rgb import srgb_to_linear

    return srgb_to_linear(encoded).numpy()


def _check_box(box: object, path: Path) -> None:
    try:
        x0, y0, x1, y1 = (int(v) for v in box)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise DataError(f"{path}: patch box must be 4 integers (x0, y0, x1, y1), got {box!r}") from None
    if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
        raise DataError(f"{path}: patch box {box!r} must have 0 <= x0 < x1 and 0 <= y0 < y1")


def _patch_stats(arr: np.ndarray, box: tuple[int, int, int, int], ring: bool) -> Tensor:
    """Median and MAD of the shrunk tight box, then median and p95 of the ring (or zeros), per channel."""
    x0, y0, x1, y1 = box
    dx, dy = int(0.1 * (x1 - x0)), int(0.1 * (y1 - y0))
    inner = arr[:, y0 + dy : y1 - dy, x0 + dx : x1 - dx].reshape(3, -1)
    med = np.median(inner, axis=1)
    mad = np.median(np.abs(inner - med[:, None]), axis=1)
    out = np.zeros(12, np.float32)
    out[:3], out[3:6] = med, mad
    if ring:
        keep = np.ones(arr.shape[1:], bool)
        keep[y0:y1, x0:x1] = False
        if keep.any():
            around = arr[:, keep]
            out[6:9] = np.median(around, axis=1)
            out[9:12] = np.percentile(around, 95, axis=1)
    return torch.from_numpy(out)
