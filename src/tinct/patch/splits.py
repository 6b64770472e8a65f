"""Deterministic train / val / test splits of a patch table (:class:`tinct.patch.labels.PatchTable`).

:func:`split_patches` splits at random, by group (no shade in two splits) or by camera (unseen cameras
in test).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from tinct.core.checks import check_choice
from tinct.core.exceptions import DataError

__all__ = ["split_patches"]

SPLIT_METHODS = ("random", "group", "camera")


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
        table: a :class:`~tinct.patch.labels.PatchTable`'s ``table`` (any frame with the columns the method
            needs).
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
