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

Splits are in :mod:`tinct.patch.splits`, the torch data set of crops in :mod:`tinct.patch.dataset`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tinct.core.exceptions import DataError
from tinct.io.exif import PhotoMeta, normalize_meta, read_json_meta

__all__ = [
    "LABEL_COLUMNS",
    "LAB_RANGES",
    "META_COLUMNS",
    "META_FEATURES",
    "PatchTable",
    "photos_table",
    "read_patch_table",
]

LABEL_COLUMNS = ("image", "L", "a", "b")
META_COLUMNS = ("exposure_time", "iso", "f_number", "brightness")
META_FEATURES = ("log2_exposure_time", "log2_iso_100", "ev100", "brightness")

# Metadata that must be positive, with the largest plausible value (a day's exposure, ISO 10 million,
# f/1000): beyond them a value is a unit mix-up or an overflow (1e308), not a photo.
_POSITIVE = {"exposure_time": 86400.0, "iso": 1e7, "f_number": 1000.0}

# Valid CIELAB targets: L* by definition; a* and b* wider than any object colour (the optimal colours,
# MacAdam's limits, stay well within +-200 under D65), so a typo (a = 500) or an overflow (1e308) stops.
LAB_RANGES = {"L": (0.0, 100.0), "a": (-200.0, 200.0), "b": (-200.0, 200.0)}


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
            [0, 100] or a/b outside [-200, 200], duplicate image names, missing or unreadable images, a metadata value that is not a
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
    for col, (low, high) in LAB_RANGES.items():
        out_of_range = np.flatnonzero((lab[col] < low) | (lab[col] > high))
        if out_of_range.size:
            i = int(out_of_range[0])
            raise DataError(
                f"{csv}: line {_line(i)} (image {names[i]!r}): {col} must be in [{low:g}, {high:g}], got "
                f"{lab[col][i]}" + _more(out_of_range.size)
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
    table = _table(names, lab, group, camera, meta)
    for c in df.columns:
        if c not in table.columns:  # ev100 and exposure_offset are always recomputed
            table[c] = df[c].to_numpy()
    return PatchTable(root, table)


def _table(
    names: list[str],
    lab: dict[str, np.ndarray],
    group: list[str | None],
    camera: list[str | None],
    meta: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The table's standard columns; ``ev100`` and ``exposure_offset`` derived from the metadata."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ev100 = np.log2(meta["f_number"] ** 2 / meta["exposure_time"]) - np.log2(meta["iso"] / 100.0)
    return pd.DataFrame(
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


def photos_table(paths: Sequence[str | os.PathLike[str]]) -> PatchTable:
    """A :class:`PatchTable` of photos without targets (``L``, ``a``, ``b`` are NaN), for prediction: each
    photo's metadata from ``<stem>.json`` beside it, else its EXIF, as :func:`read_patch_table` reads them.

    ``image`` holds each photo's absolute path (the table's root is the file system's).

    Raises:
        DataError: a photo is missing or unreadable (named).
    """
    files = [Path(p).resolve() for p in paths]
    for f in files:
        if not f.is_file():
            raise DataError(f"{f}: no such photo")
    meta = {c: np.full(len(files), np.nan) for c in META_COLUMNS}
    camera: list[str | None] = []
    for i, f in enumerate(files):
        found = _image_meta(f, need_meta=True, check=True)
        for c in META_COLUMNS:
            value = getattr(found, c, None)
            if value is not None:
                meta[c][i] = value
        camera.append(getattr(found, "camera", None))
    nan = np.full(len(files), np.nan, dtype=np.float64)
    lab = {"L": nan.copy(), "a": nan.copy(), "b": nan.copy()}
    names = [str(f) for f in files]
    return PatchTable(
        Path(files[0].anchor if files else "/"), _table(names, lab, [None] * len(files), camera, meta)
    )


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
        bad = np.flatnonzero((values <= 0) | (values > _POSITIVE[col]))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{csv}: line {_line(i)} (image {names[i]!r}): {col} must be > 0 and <= {_POSITIVE[col]:g}, "
                f"got {values[i]}" + _more(bad.size)
            )
    return values


def _image_meta(path: Path, *, need_meta: bool, check: bool) -> PhotoMeta | None:
    """Open ``path`` (header only) when ``check`` or its EXIF is needed; the metadata when ``need_meta``."""
    from tinct.io.exif import exif_tags

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
            tags = exif_tags(path)
    if not need_meta:
        return None
    return read_json_meta(side) if has_json else normalize_meta(tags, str(path))
