"""``data.split_file``: splits written by the first run and reused by every later one."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from tinct.core.exceptions import ConfigError, DataError
from tinct.core.splits import fixed_splits
from tinct.engine.config import config_from_dict

OWN = {"train": ["a", "b"], "val": ["c"], "test": ["d"]}


def test_first_run_writes_later_runs_read(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    assert fixed_splits(path, OWN, {"root": "x"}) == OWN
    other = {"train": ["d", "c"], "val": ["b"], "test": ["a"]}
    assert fixed_splits(path, other, {"root": "x"}) == OWN  # the file wins
    assert json.loads(path.read_text())["test"] == ["d"]


def test_other_data_missing_images_and_garbage_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    fixed_splits(path, OWN, {"root": "x"})
    with pytest.raises(ConfigError, match="splits of other data"):
        fixed_splits(path, OWN, {"root": "y"})
    with pytest.raises(DataError, match=r"not in the data any more.*'d'"):
        fixed_splits(path, OWN, {"root": "x"}, available=["a", "b", "c"])
    path.write_text("{not json")
    with pytest.raises(DataError, match=r"split\.json: not a tinct split file"):
        fixed_splits(path, OWN, {"root": "x"})


def _photos(folder: Path, n: int = 12) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"p{i:02d}.png"), (rng.random((24, 32, 3)) * 255).astype(np.uint8))
    return folder


def test_colorization_splits_follow_the_file_not_the_seed(tmp_path: Path) -> None:
    from tinct.colorization.task import ColorizationDataModule

    root = _photos(tmp_path / "photos")

    def splits(seed: int, split_file: Path | None) -> dict[str, list[str]]:
        data = {
            "kind": "folder",
            "root": str(root),
            "split_seed": seed,
            "val_fraction": 0.2,
            "test_fraction": 0.3,
        }
        if split_file is not None:
            data["split_file"] = str(split_file)
        cfg = config_from_dict({"task": "colorization", "data": data})
        return {k: sorted(p.name for p in v) for k, v in ColorizationDataModule(cfg).resolve_splits().items()}

    assert splits(0, None) != splits(1, None)  # the seed moves photos between splits ...
    file = tmp_path / "split.json"
    first = splits(0, file)
    assert splits(1, file) == first  # ... unless the split file fixes them
    assert sorted(json.loads(file.read_text())["test"]) == first["test"]


def test_illuminant_folder_splits_follow_the_file(tmp_path: Path) -> None:
    from tinct.constancy.task import IlluminantDataModule

    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        np.save(folder / f"{i:02d}.npy", rng.random((16, 16, 3), dtype=np.float32))
    pd.DataFrame({"image": [f"{i:02d}.npy" for i in range(20)], "r": 0.5, "g": 1.0, "b": 0.7}).to_csv(
        folder / "gt.csv", index=False
    )

    def test_names(seed: int, split_file: Path | None) -> list[int]:
        data = {"kind": "folder", "root": str(folder), "split_seed": seed, "size": 16}
        if split_file is not None:
            data["split_file"] = str(split_file)
        dm = IlluminantDataModule(config_from_dict({"task": "illuminant", "data": data}))
        dm.setup("fit")
        return sorted(dm.split_indices["test"])

    assert test_names(0, None) != test_names(1, None)
    file = tmp_path / "split.json"
    assert test_names(1, file) == test_names(0, file) == test_names(1, None)
