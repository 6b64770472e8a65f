"""Patch data sets: labels.csv + photos + EXIF, validation errors, leak-free splits, the crop dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tinct.color.rgb import srgb_to_linear
from tinct.core.exceptions import DataError, UnknownNameError
from tinct.io.exif import PhotoMeta, exif_bytes
from tinct.patch.dataset import PatchDataset
from tinct.patch.labels import META_FEATURES, PatchTable, read_patch_table
from tinct.patch.splits import split_patches

W, H = 40, 30
BOX = (10, 8, 30, 22)  # x0, y0, x1, y1 (exclusive)
RED, BLUE = (200, 40, 30), (20, 60, 220)
CAMERAS = [("Canon", "Canon EOS R5"), ("Apple", "iPhone 12")]


def _photo(
    path: Path, meta: PhotoMeta | None = None, make: str | None = None, model: str | None = None
) -> None:
    """A blue image with a red patch in BOX; PNG keeps exact pixels, JPEG carries EXIF."""
    arr = np.empty((H, W, 3), np.uint8)
    arr[:] = BLUE
    arr[BOX[1] : BOX[3], BOX[0] : BOX[2]] = RED
    kwargs = {"exif": exif_bytes(meta, make=make, model=model)} if meta is not None else {}
    Image.fromarray(arr).save(path, **kwargs)


def _dataset(root: Path, n: int = 8, *, suffix: str = ".jpg", extra: dict | None = None) -> Path:
    """n photos in 4 groups, the first half from one camera, the rest from another; EXIF metadata."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        name = f"img{i}{suffix}"
        make, model = CAMERAS[i * 2 // n]
        meta = PhotoMeta(
            exposure_time=1 / 60 * (i + 1), iso=100 * (i + 1), f_number=2.8, brightness=-1.25 + i
        )
        _photo(root / name, meta, make, model)
        rows.append({"image": name, "L": 40 + i, "a": 10.0, "b": -5.0 + i, "group": f"g{i % 4}", **BOX_COLS})
    df = pd.DataFrame(rows)
    for col, values in (extra or {}).items():
        df[col] = values
    df.to_csv(root / "labels.csv", index=False)
    return root


BOX_COLS = dict(zip(("patch_x0", "patch_y0", "patch_x1", "patch_y1"), BOX, strict=True))


def _rewrite(root: Path, edit) -> None:
    df = pd.read_csv(root / "labels.csv", dtype={"image": str})
    df = edit(df)
    df.to_csv(root / "labels.csv", index=False)


# ---------------------------------------------------------------------------------------------- table


def test_read_fills_metadata_from_exif(tmp_path: Path) -> None:
    data = read_patch_table(_dataset(tmp_path / "set"))
    t = data.table
    assert isinstance(data, PatchTable) and len(data) == 8
    assert list(t.columns[:12]) == [
        "image", "L", "a", "b", "group", "camera", "exposure_time", "iso", "f_number", "brightness",
        "ev100", "exposure_offset",
    ]  # fmt: skip
    assert list(t.columns[12:]) == list(BOX_COLS)  # extra columns kept
    assert data.cameras() == ["Apple iPhone 12", "Canon EOS R5"]
    assert t["exposure_time"][2] == pytest.approx(3 / 60) and t["iso"][2] == 300.0
    assert t["f_number"][0] == 2.8 and t["brightness"][1] == -0.25
    ev = np.log2(2.8**2 / t["exposure_time"]) - np.log2(t["iso"] / 100)
    assert np.allclose(t["ev100"], ev)
    assert np.allclose(t["exposure_offset"], t["brightness"] + 5 - ev)
    values, mask = data.meta_features()
    assert values.shape == mask.shape == (8, len(META_FEATURES))
    assert values.dtype == np.float32 and mask.dtype == bool and mask.all()
    assert values[0, 0] == pytest.approx(-np.log2(60)) and values[3, 1] == pytest.approx(2.0)


def test_csv_wins_over_exif_and_json_over_exif(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "set")
    _rewrite(root, lambda df: df.assign(iso=[800] + [None] * 7, camera=["Mine"] + [""] * 7))
    (root / "img1.json").write_text(json.dumps({"ISOSpeedRatings": 1600, "Make": "Sony", "Model": "A7"}))
    t = read_patch_table(root).table
    assert t["iso"][0] == 800.0 and t["camera"][0] == "Mine"
    assert t["iso"][1] == 1600.0 and t["camera"][1] == "Sony A7" and np.isnan(t["exposure_time"][1])
    assert t["iso"][2] == 300.0 and t["camera"][2] == "Canon EOS R5"


def test_without_metadata_and_defaults(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "set")
    _rewrite(root, lambda df: df.drop(columns=["group"]))
    data = read_patch_table(root, metadata=False)
    t = data.table
    assert list(t["group"]) == list(t["image"])  # each image its own group
    assert set(t["camera"]) == {"unknown"}
    assert (
        t[["exposure_time", "iso", "f_number", "brightness", "ev100", "exposure_offset"]].isna().all().all()
    )
    values, mask = data.meta_features()
    assert not mask.any() and not values.any()


def test_partial_metadata_mask(tmp_path: Path) -> None:
    root = tmp_path / "set"
    root.mkdir()
    _photo(root / "a.png")
    _photo(root / "b.jpg", PhotoMeta(iso=200))
    pd.DataFrame({"image": ["a.png", "b.jpg"], "L": [50, 60], "a": [0, 1], "b": [0, 1]}).to_csv(
        root / "labels.csv", index=False
    )
    values, mask = read_patch_table(root).meta_features()
    assert mask.tolist() == [[False] * 4, [False, True, False, False]]
    assert values[1, 1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda df: df.drop(columns=["L", "b"]),
            r"labels\.csv: missing required column\(s\) \['L', 'b'\]; found \[",
        ),
        (
            lambda df: df.assign(L=[50.0] * 3 + [np.nan] + [50.0] * 4),
            r"labels\.csv: line 5 \(image 'img3\.jpg'\): L",
        ),
        (
            lambda df: df.assign(a=["x"] + [0.0] * 7),
            r"line 2 \(image 'img0\.jpg'\): a must be a finite number, got 'x'",
        ),
        (
            lambda df: df.assign(L=[50.0] * 7 + [120.0]),
            r"line 9 \(image 'img7\.jpg'\): L must be in \[0, 100\]",
        ),
        (
            lambda df: df.assign(image=[*df.image[:6], "img2.jpg", "img7.jpg"]),
            r"labels\.csv: image 'img2\.jpg' is listed more than once \(lines 4, 8\)",
        ),
        (
            lambda df: df.assign(image=[f"gone{i}.jpg" for i in range(5)] + list(df.image[5:])),
            r"5 image\(s\) listed in labels\.csv do not exist: 'gone0\.jpg', 'gone1\.jpg', 'gone2\.jpg', \.\.\.",
        ),
        (
            lambda df: df.assign(exposure_time=[0.01] * 2 + [-0.5] + [0.01] * 5),
            r"labels\.csv: line 4 \(image 'img2\.jpg'\): exposure_time must be > 0",
        ),
        (
            lambda df: df.assign(iso=["fast"] * 8),
            r"line 2 \(image 'img0\.jpg'\): iso must be a finite number or empty",
        ),
        (lambda df: df.iloc[:0], r"labels\.csv: no rows"),
    ],
)
def test_bad_csv(tmp_path: Path, edit, match: str) -> None:
    root = _dataset(tmp_path / "set")
    _rewrite(root, edit)
    with pytest.raises(DataError, match=match):
        read_patch_table(root)


def test_missing_folder_labels_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere: no such data folder"):
        read_patch_table(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"labels\.csv: no such labels file"):
        read_patch_table(tmp_path)
    (tmp_path / "labels.csv").write_text("")
    with pytest.raises(DataError, match=r"labels\.csv: empty file"):
        read_patch_table(tmp_path)
    (tmp_path / "labels.csv").write_bytes(b'image,L,a,b\n"x.jpg,1,2,3\n')
    with pytest.raises(DataError, match=r"labels\.csv: cannot parse as CSV"):
        read_patch_table(tmp_path)


def test_unreadable_image_and_bad_json_are_named(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "set")
    (root / "img5.jpg").write_bytes(b"\xff\xd8 truncated garbage")
    with pytest.raises(DataError, match=r"img5\.jpg"):
        read_patch_table(root)
    with pytest.raises(DataError, match=r"img5\.jpg"):
        read_patch_table(root, metadata=False)
    read_patch_table(root, metadata=False, check_images=False)  # no file is opened
    _photo(root / "img5.jpg")
    (root / "img6.json").write_text("{not json")
    with pytest.raises(DataError, match=r"img6\.json: not a valid JSON"):
        read_patch_table(root)


# ---------------------------------------------------------------------------------------------- splits


def _frame(n_groups: int = 12, per: int = 3, cameras: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    groups = [f"shade{g}" for g in range(n_groups) for _ in range(per)]
    cams = [f"cam{int(c)}" for c in rng.integers(0, cameras, len(groups))]
    return pd.DataFrame({"image": [f"{i}.jpg" for i in range(len(groups))], "group": groups, "camera": cams})


def _check_partition(split: dict[str, list[int]], n: int) -> None:
    assert set(split) == {"train", "val", "test"}
    assert sorted(i for rows in split.values() for i in rows) == list(range(n))
    assert all(v == sorted(v) for v in split.values())


@pytest.mark.parametrize("seed", range(6))
def test_group_split_has_no_leakage(seed: int) -> None:
    df = _frame()
    split = split_patches(df, "group", val_fraction=0.2, test_fraction=0.25, seed=seed)
    _check_partition(split, len(df))
    g = {k: set(df["group"].iloc[v]) for k, v in split.items()}
    assert not g["train"] & g["val"] and not g["train"] & g["test"] and not g["val"] & g["test"]
    assert len(split["test"]) >= 0.25 * len(df) and len(split["val"]) >= 0.2 * (len(df) - len(split["test"]))


def test_random_split_sizes_and_determinism() -> None:
    df = _frame()
    split = split_patches(df, "random", val_fraction=0.25, test_fraction=0.25, seed=3)
    _check_partition(split, 36)
    assert (len(split["test"]), len(split["val"])) == (9, 7)
    assert split == split_patches(df, "random", val_fraction=0.25, test_fraction=0.25, seed=3)
    others = [split_patches(df, "random", seed=s)["test"] for s in range(4)]
    assert len({tuple(t) for t in others}) > 1


def test_camera_split() -> None:
    df = _frame()
    split = split_patches(df, "camera", test_cameras=["cam1"], seed=1)
    _check_partition(split, len(df))
    assert set(df["camera"].iloc[split["test"]]) == {"cam1"}
    assert "cam1" not in set(df["camera"].iloc[split["train"] + split["val"]])
    drawn = split_patches(df, "camera", seed=7)
    assert len(set(df["camera"].iloc[drawn["test"]])) == 1
    assert drawn == split_patches(df, "camera", seed=7)
    with pytest.raises(
        DataError, match=r"unknown test camera\(s\) \['cam9'\]; valid cameras: \['cam0', 'cam1', 'cam2'\]"
    ):
        split_patches(df, "camera", test_cameras=["cam9"])
    with pytest.raises(DataError, match="at least 2 cameras"):
        split_patches(df.assign(camera="cam0"), "camera")
    with pytest.raises(DataError, match="leaves no training rows"):
        split_patches(df, "camera", test_cameras=["cam0", "cam1", "cam2"])


def test_split_errors() -> None:
    df = _frame(n_groups=1, per=4)
    with pytest.raises(
        DataError, match=r"split by group of 4 row\(s\) .* leaves no training rows \(test 4, val 0\)"
    ):
        split_patches(df, "group")
    with pytest.raises(UnknownNameError, match="'random', 'group', 'camera'"):
        split_patches(df, "shade")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="test_fraction"):
        split_patches(df, "random", test_fraction=1.0)


# ---------------------------------------------------------------------------------------------- dataset


def _png_table(tmp_path: Path) -> PatchTable:
    return read_patch_table(_dataset(tmp_path / "png", n=4, suffix=".png"), metadata=False)


def test_dataset_sample_shapes_and_dtypes(tmp_path: Path) -> None:
    data = read_patch_table(_dataset(tmp_path / "set"))
    boxes = {name: BOX for name in data.table["image"]}
    ds = PatchDataset(
        data, [1, 6], boxes=boxes, size=16, camera_index={"Canon EOS R5": 1, "Apple iPhone 12": 2}
    )
    assert len(ds) == 2
    s = ds[1]
    assert s["image"].shape == (3, 16, 16) and s["image"].dtype == torch.float32
    assert s["lab"].tolist() == [46.0, 10.0, 1.0] and s["lab"].dtype == torch.float32
    assert s["meta"].shape == (4,) and s["meta"].dtype == torch.float32
    assert s["meta_mask"].dtype == torch.bool and s["meta_mask"].all()
    assert s["stats"].shape == (12,) and s["stats"].dtype == torch.float32
    assert s["camera"].dtype == torch.long and int(s["camera"]) == 2 and int(ds[0]["camera"]) == 1
    assert s["index"].dtype == torch.long and int(s["index"]) == 6
    assert int(PatchDataset(data, [0], boxes=None)[0]["camera"]) == 0


def test_crop_context_and_stats(tmp_path: Path) -> None:
    data = _png_table(tmp_path)
    boxes = {name: BOX for name in data.table["image"]}
    red = torch.tensor(RED, dtype=torch.float32) / 255
    blue = torch.tensor(BLUE, dtype=torch.float32) / 255

    tight = PatchDataset(data, [0], boxes=boxes, size=8)[0]
    assert torch.allclose(tight["image"], red[:, None, None].expand(3, 8, 8), atol=1e-6)
    assert torch.allclose(tight["stats"][:3], srgb_to_linear(red, dim=-1), atol=1e-6)
    assert torch.all(tight["stats"][3:] == 0)  # flat patch: MAD 0; no context: ring zeros

    wide = PatchDataset(data, [0], boxes=boxes, size=30, context=5)[0]
    # the crop is 30 x 24 px around a 20 x 14 box: the border is the blue surround, the centre the patch
    assert torch.allclose(wide["image"][:, 0, 0], blue, atol=1e-6)
    assert torch.allclose(wide["image"][:, 15, 15], red, atol=1e-6)
    assert torch.allclose(wide["stats"][6:9], srgb_to_linear(blue, dim=-1), atol=1e-6)
    assert torch.allclose(wide["stats"][9:12], srgb_to_linear(blue, dim=-1), atol=1e-6)
    assert torch.allclose(wide["stats"][:3], tight["stats"][:3])

    whole = PatchDataset(data, [0], boxes=None, size=8, context=3)[0]  # the whole image: no ring
    assert torch.all(whole["stats"][6:] == 0)
    # robust: the red patch is under half of the (shrunk) image, so median and MAD are the blue surround's
    assert torch.allclose(whole["stats"][:3], srgb_to_linear(blue, dim=-1), atol=1e-6)
    assert torch.all(whole["stats"][3:6] == 0)


def test_cache_and_errors(tmp_path: Path) -> None:
    data = _png_table(tmp_path)
    boxes = {name: BOX for name in data.table["image"]}
    ds = PatchDataset(data, [0, 1], boxes=boxes, size=8, context=2)
    first = ds[0]
    first["image"].zero_()  # callers may modify samples in place
    (data.root / "img0.png").unlink()
    again = ds[0]
    assert again["image"].max() > 0
    assert torch.equal(again["stats"], ds[0]["stats"])
    uncached = PatchDataset(data, [0], boxes=boxes, cache=False)
    with pytest.raises(DataError, match=r"img0\.png"):
        uncached[0]
    (data.root / "img1.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"img1\.png"):
        ds[1]
    with pytest.raises(DataError, match=r"no patch box for 1 image\(s\): 'img2\.png'"):
        PatchDataset(data, [2], boxes={"img3.png": BOX})
    with pytest.raises(DataError, match=r"img3\.png: patch box"):
        PatchDataset(data, [3], boxes={"img3.png": (5, 5, 5, 9)})
    with pytest.raises(DataError, match=r"img3\.png: patch box \(0, 0, 41, 30\) is outside the 40x30 image"):
        PatchDataset(data, [3], boxes={"img3.png": (0, 0, 41, 30)})[0]
    with pytest.raises(IndexError):
        PatchDataset(data, [4], boxes=None)
