"""The SimpleCube++ / Cube++ layout (Ershov et al. 2020).

```
ROOT/
  train/PNG/<stem>.png   train/gt.csv
  test/PNG/<stem>.png    test/gt.csv
```

PNGs are 16-bit, written as RGB, with the black level (2048) *not* subtracted and a saturation level of
2**14 - 1; the SpyderCube calibration object in the bottom-right corner is zeroed, i.e. below black, so it is
masked with the saturated pixels after black subtraction. ``gt.csv`` has a column ``image`` (the file stem,
with or without ``.png``) and the illuminant as ``r,g,b`` (or upstream's ``mean_r,mean_g,mean_b``).

References:
    Ershov, E. et al. (2020). The Cube++ illumination estimation dataset. IEEE Access 8.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from tinct.constancy.folder import illuminant_columns, read_csv_table
from tinct.core.exceptions import DataError

__all__ = ["SIMPLE_CUBE_BLACK", "SIMPLE_CUBE_SATURATION", "is_simple_cube", "read_simple_cube"]

SIMPLE_CUBE_BLACK = 2048.0
SIMPLE_CUBE_SATURATION = float(2**14 - 1)
_SPLITS = ("train", "test")


def is_simple_cube(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` has the SimpleCube++ layout (``train/gt.csv`` and ``train/PNG``, or the same for test)."""
    r = Path(root)
    return any((r / s / "gt.csv").is_file() and (r / s / "PNG").is_dir() for s in _SPLITS)


def read_simple_cube(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The validated table of a SimpleCube++ folder: columns ``image, path, r, g, b, split``.

    Raises:
        DataError: a ``gt.csv`` is unreadable or lacks columns, an illuminant is not finite and positive,
            a listed image is missing, or a PNG has no row in its ``gt.csv`` (naming the file).
    """
    r = Path(root)
    frames = []
    for split in _SPLITS:
        gt_path, png_dir = r / split / "gt.csv", r / split / "PNG"
        if not gt_path.is_file():
            continue
        if not png_dir.is_dir():
            raise DataError(f"{png_dir}: folder missing (SimpleCube++ layout: {split}/PNG/<stem>.png)")
        df = read_csv_table(gt_path)
        cols = ["r", "g", "b"] if {"r", "g", "b"} <= set(df.columns) else ["mean_r", "mean_g", "mean_b"]
        missing = [c for c in ["image", *cols] if c not in df.columns]
        if missing:
            raise DataError(
                f"{gt_path}: missing column(s) {', '.join(missing)}; expected image,r,g,b "
                f"(or image,mean_r,mean_g,mean_b); found {', '.join(map(str, df.columns))}"
            )
        stems = [str(s).removesuffix(".png").removesuffix(".PNG") for s in df["image"]]
        rgb = illuminant_columns(df, cols, stems, gt_path)
        paths = [png_dir / f"{s}.png" for s in stems]
        for s, p in zip(stems, paths, strict=True):
            if not p.is_file():
                raise DataError(f"{gt_path}: image {s!r} listed but {p} not found")
        listed = set(stems)
        for p in sorted(png_dir.glob("*.png")):
            if p.stem not in listed:
                raise DataError(f"{p}: no ground-truth row in {gt_path}")
        frames.append(
            pd.DataFrame(
                {
                    "image": stems,
                    "path": [str(p) for p in paths],
                    "r": rgb[:, 0],
                    "g": rgb[:, 1],
                    "b": rgb[:, 2],
                    "split": split,
                }
            )
        )
    if not frames:
        raise DataError(f"{r}: not a SimpleCube++ folder (no train/gt.csv or test/gt.csv)")
    return pd.concat(frames, ignore_index=True)
