"""One entry point to colour-constancy datasets, whatever their layout.

:func:`open_constancy` detects the layout of a folder and returns a :class:`ConstancySource`: a validated
table (``image, path, r, g, b, split, fold, camera``) plus the black and saturation levels that turn its files
into linear RGB in [0, 1] with a mask of unusable pixels. Layouts:

==============  ==========================================================  =====================
layout          files                                                       black / saturation
==============  ==========================================================  =====================
``generic``     ``gt.csv`` (image,r,g,b), optional ``folds.csv``, images    0 / type maximum
``simplecube``  ``{train,test}/PNG/*.png`` + ``{train,test}/gt.csv``        2048 / 2**14 - 1
``intel_tau``   ``<name>.png`` + ``<name>_metadata.json``                   0 / 65535
``cameras``     ``<camera>/``: one folder of one layout above per camera    that layout's
==============  ==========================================================  =====================

A ``cameras`` folder (NUS-8 as ``nus8_64/<camera>/``) is read as one source: ``image`` is
``<camera>/<file>`` (unique across cameras), ``camera`` the sub-folder name (``""`` for the other layouts)
and ``fold`` each camera's own ``folds.csv``, so k-fold cross-validation keeps the official per-camera
folds while :func:`camera_ids` holds out whole cameras. Every camera must share one layout and one kind of
file (all float ``.npy``, black 0 / saturation 1.0, or all 16-bit PNG / TIFF), so one black level and one
saturation mean the same thing for all of them.

Float ``.npy`` arrays saturate at 1.0. Pixels below ``black - tolerance`` are masked (a zeroed calibration
target such as SimpleCube++'s SpyderCube corner); the tolerance is half the black level, so read noise
around black is kept. :class:`ConstancyThumbnails` serves ``size x size`` thumbnails (area-averaged over
usable pixels only) and caches them per process, so k folds decode each file once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tinct.core.checks import check_choice, check_fold_count
from tinct.core.exceptions import ConfigError, DataError, TinctError, some_of

__all__ = [
    "LAYOUTS",
    "ConstancySource",
    "ConstancyThumbnails",
    "camera_ids",
    "check_camera_split",
    "convert_constancy",
    "detect_layout",
    "fold_ids",
    "layout_levels",
    "open_constancy",
]

LAYOUTS = ("generic", "simplecube", "intel_tau", "cameras")


def _camera_folders(root: Path) -> list[Path]:
    """The sub-folders of ``root`` that may be cameras: all but hidden (``.x``) and private (``_x``) ones."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _single_layout(r: Path) -> str | None:
    from tinct.constancy.intel_tau import is_intel_tau
    from tinct.constancy.simple_cube import is_simple_cube

    if (r / "gt.csv").is_file():
        return "generic"
    if is_simple_cube(r):
        return "simplecube"
    if is_intel_tau(r):
        return "intel_tau"
    return None


def detect_layout(root: str | os.PathLike[str]) -> str:
    """The layout of a dataset folder (one of :data:`LAYOUTS`).

    A folder matching no single-folder layout is ``cameras`` when each of its sub-folders matches one.

    Raises:
        DataError: the folder does not exist or matches no layout, or only some of its sub-folders are
            datasets (the others are named).
    """
    r = Path(root)
    if not r.is_dir():
        raise DataError(f"{r}: dataset folder not found")
    layout = _single_layout(r)
    if layout is not None:
        return layout
    subs = _camera_folders(r)
    found = {p.name: _single_layout(p) for p in subs}
    if subs and all(found.values()):
        return "cameras"
    if any(found.values()):
        others = [name for name, lay in found.items() if lay is None]
        raise DataError(
            f"{r}: a folder of camera folders needs a dataset in every sub-folder; not a dataset: "
            f"{some_of(others)}"
        )
    raise DataError(
        f"{r}: unknown dataset layout; expected gt.csv (generic), train/ and test/ with PNG/ and gt.csv "
        "(SimpleCube++), <name>.png + <name>_metadata.json (INTEL-TAU), or one such folder per camera"
    )


@dataclass
class ConstancySource:
    """A validated colour-constancy dataset: a table of images and illuminants plus its raw levels.

    Attributes:
        root: the dataset folder.
        layout: one of :data:`LAYOUTS`.
        table: columns ``image`` (as listed; ``<camera>/<image>`` in a ``cameras`` folder), ``path``,
            ``r, g, b`` (ground truth, any scale), ``split`` (``"train"`` / ``"test"``, or ``""`` when the
            layout has no official split), ``fold`` (from ``folds.csv``, or -1) and ``camera`` (the camera
            folder's name, ``""`` outside a ``cameras`` folder).
        black_level: raw black level (``None``: 0).
        saturation: raw saturation level (``None``: the file type's maximum, 1.0 for floats).
    """

    root: Path
    layout: str
    table: pd.DataFrame
    black_level: float | None = None
    saturation: float | None = None

    def __len__(self) -> int:
        return len(self.table)

    @property
    def has_split(self) -> bool:
        """True when the layout has an official train / test split (SimpleCube++)."""
        return bool((self.table["split"] != "").all())

    @property
    def has_folds(self) -> bool:
        """True when the folder ships a ``folds.csv`` (every camera folder does, for ``cameras``)."""
        return bool((self.table["fold"] >= 0).all())

    @property
    def cameras(self) -> list[str]:
        """The sorted camera names of a ``cameras`` folder (empty for other layouts)."""
        return sorted({str(c) for c in self.table["camera"] if c != ""})

    def illuminant(self, i: int) -> Tensor:
        """The ground-truth illuminant of image ``i`` as a unit-norm ``(3,)`` float32 tensor."""
        row = self.table.iloc[i]
        rgb = torch.tensor([row["r"], row["g"], row["b"]], dtype=torch.float32)
        return rgb / rgb.norm()

    def illuminants(self) -> Tensor:
        """All ground-truth illuminants, ``(N, 3)`` unit norm."""
        rgb = torch.from_numpy(self.table[["r", "g", "b"]].to_numpy(np.float32, copy=True))
        return rgb / rgb.norm(dim=-1, keepdim=True)

    def load(self, i: int) -> tuple[Tensor, Tensor]:
        """Image ``i`` as ``(linear (3, H, W) float32 in [0, 1], mask (1, H, W) bool, True = unusable)``.

        Raises:
            DataError: the file is unreadable, or is 8-bit / JPEG (display-encoded, not linear).
        """
        from tinct.constancy.folder import load_linear

        return load_linear(self.table["path"].iloc[i], self.black_level or 0.0, self.saturation)


def layout_levels(
    layout: str, black_level: float | None = None, saturation: float | None = None
) -> tuple[float | None, float | None]:
    """``(black_level, saturation)`` of a layout: the given values, else the layout's defaults (see the
    module table; ``None`` saturation means the file type's maximum)."""
    from tinct.constancy.simple_cube import SIMPLE_CUBE_BLACK, SIMPLE_CUBE_SATURATION

    if layout == "simplecube":
        black_level = SIMPLE_CUBE_BLACK if black_level is None else black_level
        saturation = SIMPLE_CUBE_SATURATION if saturation is None else saturation
    return black_level, saturation


def open_constancy(
    root: str | os.PathLike[str],
    layout: str = "auto",
    black_level: float | None = None,
    saturation: float | None = None,
) -> ConstancySource:
    """Open a colour-constancy dataset folder, validating its ground truth (see the module table).

    Args:
        root: dataset folder.
        layout: ``"auto"`` (detect) or one of :data:`LAYOUTS`.
        black_level: raw black level; ``None`` takes the layout's default.
        saturation: raw saturation level; ``None`` takes the layout's default.

    Raises:
        DataError: the folder or its ground truth is missing or invalid (the message names the file).
        UnknownNameError: unknown ``layout``.
    """
    from tinct.constancy.folder import read_folds, read_ground_truth
    from tinct.constancy.intel_tau import read_intel_tau
    from tinct.constancy.simple_cube import read_simple_cube

    r = Path(root)
    check_choice(layout, ("auto", *LAYOUTS), "dataset layout")
    if layout == "auto":
        layout = detect_layout(r)
    if layout == "cameras":
        return _open_cameras(r, black_level, saturation)
    if layout == "generic":
        table = read_ground_truth(r)
        table = table.assign(path=[str(r / str(n)) for n in table["image"]], split="")
        folds = read_folds(r, [str(n) for n in table["image"]])
        table["fold"] = folds if folds is not None else -1
    elif layout == "simplecube":
        table = read_simple_cube(r).assign(fold=-1)
    else:
        table = read_intel_tau(r).assign(split="", fold=-1)
    table = table.assign(camera="")[list(_COLUMNS)].reset_index(drop=True)
    return ConstancySource(r, layout, table, *layout_levels(layout, black_level, saturation))


_COLUMNS = ("image", "path", "r", "g", "b", "split", "fold", "camera")


def _file_kind(path: str) -> str:
    """``"float .npy"`` or ``"16-bit PNG / TIFF"`` (the bit depth is checked when the file is read).

    Raises:
        DataError: an integer (or otherwise non-float) ``.npy``, named, read from its header only.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix != ".npy":
        return "16-bit PNG / TIFF" if suffix in (".png", ".tif", ".tiff") else suffix
    try:
        with p.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            dtype = read(f)[2]
    except Exception as err:  # numpy raises several types for corrupt files
        raise DataError(f"{p}: cannot read as a .npy array ({err})") from err
    if dtype.kind != "f":
        raise DataError(
            f"{p}: {dtype} .npy in a folder of cameras; every camera's arrays must be float (black 0, "
            "saturation 1.0), so that one black level and saturation hold for all cameras"
        )
    return "float .npy"


def _open_cameras(r: Path, black_level: float | None, saturation: float | None) -> ConstancySource:
    """One source over the camera sub-folders of ``r`` (see the module docstring)."""
    subs = _camera_folders(r)
    if not subs:
        raise DataError(f"{r}: no camera sub-folders (layout 'cameras' needs one dataset folder per camera)")
    layouts = {p.name: _single_layout(p) for p in subs}
    missing = [name for name, lay in layouts.items() if lay is None]
    if missing:
        raise DataError(f"{r}: camera sub-folder(s) with no dataset layout: {some_of(missing)}")
    if len(set(layouts.values())) > 1:
        mixed = ", ".join(f"{name}: {lay}" for name, lay in layouts.items())
        raise DataError(
            f"{r}: camera folders of different layouts ({mixed}); their black levels and saturations would "
            "differ, convert them first (tinct data convert-constancy) so that all share one layout"
        )
    inner = next(iter(layouts.values()))
    assert inner is not None
    tables, first_kind = [], None
    for p in subs:
        t = open_constancy(p, inner, black_level, saturation).table
        for path in t["path"]:
            kind = _file_kind(path)
            if first_kind is None:
                first_kind = (kind, path)
            elif kind != first_kind[0]:
                raise DataError(
                    f"{path}: a {kind} among {first_kind[0]} files (e.g. {first_kind[1]}); all cameras must "
                    "share one kind of file so that one black level and saturation hold for all"
                )
        tables.append(t.assign(image=[f"{p.name}/{n}" for n in t["image"]], camera=p.name))
    table = pd.concat(tables, ignore_index=True)[list(_COLUMNS)]
    return ConstancySource(r, "cameras", table, *layout_levels(inner, black_level, saturation))


def camera_ids(source: ConstancySource, k: int | None = None) -> np.ndarray:
    """Camera id of every image: its index in the sorted :attr:`ConstancySource.cameras` (fold ``k`` of a
    leave-one-camera-out split holds camera ``k`` out).

    Args:
        source: a ``cameras`` source.
        k: the number of folds asked for; must equal the number of cameras when given.

    Raises:
        DataError: the source has no cameras, or a single one (nothing to train on).
        ConfigError: ``k`` is not the number of cameras (the message lists them).
    """
    names = source.cameras
    if len(names) < 2:
        raise DataError(
            f"{source.root}: holding out cameras needs a folder of at least 2 camera folders (layout "
            f"'cameras'); this one is {source.layout!r} with {len(names)} camera(s)"
        )
    if k is not None and k != len(names):
        raise ConfigError(
            f"data.folds={k}: a split by camera has one fold per camera, {len(names)} here "
            f"({', '.join(names)}); set data.folds={len(names)}"
        )
    return np.searchsorted(np.asarray(names), source.table["camera"].astype(str).to_numpy())


def check_camera_split(source: ConstancySource, test: Sequence[int], **others: Sequence[int]) -> None:
    """Raise unless no camera of the ``test`` rows appears in any of the ``others`` splits (rows).

    Raises:
        TinctError: naming the split, the cameras found in both and how many images of each leaked.
    """
    cam = source.table["camera"].astype(str).to_numpy()
    held = set(cam[list(test)])
    for split, rows in others.items():
        both = held & set(cam[list(rows)])
        if both:
            counts = {c: int((cam[list(rows)] == c).sum()) for c in sorted(both)}
            raise TinctError(
                f"{source.root}: camera(s) {', '.join(sorted(both))} in both the {split} and the test set "
                f"({counts} {split} images); a held-out camera must be unseen"
            )


def fold_ids(source: ConstancySource, k: int | None = None, seed: int = 0) -> np.ndarray:
    """Fold id (0 .. K-1) of every image: ``folds.csv`` when present (and ``k`` is None or matches it),
    else a seeded random assignment into ``k`` (default 3) near-equal folds.

    Raises:
        ConfigError: ``k < 2`` or more folds than images (a ``ValueError``).
        DataError: ``folds.csv`` holds a single fold (and ``k`` is None).
    """
    n = len(source)
    check_fold_count(k, n, source.root)
    if source.has_folds:
        given = source.table["fold"].to_numpy()
        values = np.unique(given)
        if k is None and len(values) < 2:  # nothing to train on, or to tune on
            raise DataError(
                f"{source.root / 'folds.csv'}: cross-validation needs at least 2 folds, the file has 1; "
                "pass folds=K (--folds K) for K seeded random folds"
            )
        if k is None or k == len(values):
            return np.searchsorted(values, given)
    if k is None:
        k = check_fold_count(3, n, source.root)  # the default needs 3 images too
    order = np.random.default_rng(seed).permutation(n)
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.arange(n) % k
    return ids


_THUMBS: dict[tuple[Any, ...], tuple[Tensor, Tensor]] = {}
_THUMBS_MAX = 50_000


def _thumbnail(source: ConstancySource, i: int, size: int) -> tuple[Tensor, Tensor]:
    from tinct.constancy.folder import thumbnail_and_mask

    key = (source.table["path"].iloc[i], source.black_level, source.saturation, size)
    hit = _THUMBS.get(key)
    if hit is None:
        hit = thumbnail_and_mask(*source.load(i), size)
        if len(_THUMBS) < _THUMBS_MAX:
            _THUMBS[key] = hit
    return hit


class ConstancyThumbnails(Dataset[dict[str, Tensor]]):
    """``size x size`` linear thumbnails of a :class:`ConstancySource` as ``{"image", "illuminant", "mask", "index"}``.

    ``mask`` flags thumbnail cells without a single usable pixel. Thumbnails are cached per process (a few
    KB each), so epochs and cross-validation folds after the first decode nothing.
    """

    def __init__(self, source: ConstancySource, indices: Sequence[int] | None = None, size: int = 64) -> None:
        self.source = source
        self.indices = list(range(len(source))) if indices is None else [int(i) for i in indices]
        self.size = size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        j = self.indices[i]
        image, mask = _thumbnail(self.source, j, self.size)
        return {
            "image": image,
            "mask": mask,
            "illuminant": self.source.illuminant(j),
            "index": torch.tensor(j),
        }


def convert_constancy(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    size: int = 64,
    layout: str = "auto",
    black_level: float | None = None,
    saturation: float | None = None,
    progress: bool = True,
) -> Path:
    """Write any supported dataset as generic-layout linear thumbnails (tinct's recommended input).

    Each image becomes ``<stem>.npy``: float32 ``size x size x 3``, black level subtracted, unusable pixels
    (saturated, below black: the colour checker) excluded from the area average (cells with none left are 0),
    scaled by its maximum. ``gt.csv`` keeps the illuminants; ``folds.csv`` is copied, and an official
    train / test split is kept as ``split.csv`` (image,split) for reference.

    Returns:
        ``out`` as a Path.
    """
    from tinct.core.atomic import atomic_write_text
    from tinct.core.progress import track

    src = open_constancy(root, layout, black_level, saturation)
    o = Path(out)
    if src.layout == "cameras":  # one converted folder per camera: the result is a cameras folder again
        for camera in src.cameras:
            convert_constancy(
                Path(root) / camera, o / camera, size, "auto", black_level, saturation, progress
            )
        return o
    o.mkdir(parents=True, exist_ok=True)
    names = []
    for i in track(range(len(src)), "converting", total=len(src), enabled=progress):
        thumb, _ = _thumbnail(src, i, size)
        thumb = thumb / thumb.max().clamp_min(1e-12)
        stem = Path(str(src.table["image"].iloc[i])).stem
        if src.has_split:
            stem = f"{src.table['split'].iloc[i]}_{stem}"
        names.append(f"{stem}.npy")
        np.save(o / names[-1], thumb.permute(1, 2, 0).numpy().astype(np.float32))
    t = src.table
    gt = pd.DataFrame({"image": names, "r": t["r"], "g": t["g"], "b": t["b"]})
    atomic_write_text(o / "gt.csv", gt.to_csv(index=False))
    if src.has_folds:
        atomic_write_text(
            o / "folds.csv", pd.DataFrame({"image": names, "fold": t["fold"]}).to_csv(index=False)
        )
    if src.has_split:
        atomic_write_text(
            o / "split.csv", pd.DataFrame({"image": names, "split": t["split"]}).to_csv(index=False)
        )
    return o
