"""Bad-input matrix, data sets (issue 16, item 9): values that used to be accepted silently now stop with
the file (and line) named. Generated files only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tinct.core.exceptions import DataError


def _constancy_folder(tmp_path, images: dict[str, np.ndarray], gt: dict[str, list[float]] | None = None):
    root = tmp_path / "constancy"
    root.mkdir()
    for name, array in images.items():
        np.save(root / name, array.astype(np.float32))
    rows = [{"image": n, **dict(zip("rgb", (gt or {}).get(n, [0.3, 0.4, 0.3]), strict=True))} for n in images]
    pd.DataFrame(rows).to_csv(root / "gt.csv", index=False)
    return root


def _first_items(root):
    from tinct.constancy.layouts import ConstancyThumbnails, open_constancy

    data = ConstancyThumbnails(open_constancy(root), size=8)
    return [data[i] for i in range(len(data))]


def test_all_saturated_raw_image_is_an_error_naming_the_file(tmp_path) -> None:
    rng = np.random.default_rng(0)
    root = _constancy_folder(
        tmp_path, {"good.npy": rng.uniform(0.1, 0.8, (16, 16, 3)), "white.npy": np.ones((16, 16, 3))}
    )
    with pytest.raises(DataError, match=r"white\.npy: no usable pixel: every pixel is saturated"):
        _first_items(root)


def test_all_black_raw_image_is_an_error_naming_the_file(tmp_path) -> None:
    rng = np.random.default_rng(0)
    root = _constancy_folder(
        tmp_path, {"black.npy": np.zeros((16, 16, 3)), "good.npy": rng.uniform(0.1, 0.8, (16, 16, 3))}
    )
    with pytest.raises(DataError, match=r"black\.npy: an all-black image"):
        _first_items(root)


def test_all_below_black_level_raw_image_is_an_error(tmp_path) -> None:
    from tinct.constancy.folder import load_linear

    path = tmp_path / "dark.png"
    import cv2

    cv2.imwrite(str(path), np.full((8, 8, 3), 100, np.uint16))  # every pixel below black level 2048
    with pytest.raises(DataError, match=r"dark\.png: no usable pixel.*below the black level"):
        load_linear(path, black=2048.0)


def test_a_usable_image_still_loads(tmp_path) -> None:
    rng = np.random.default_rng(1)
    image = rng.uniform(0.1, 0.8, (16, 16, 3))
    image[:4] = 1.0  # a saturated band is masked, not an error
    root = _constancy_folder(tmp_path, {"ok.npy": image})
    (item,) = _first_items(root)
    assert np.isfinite(item["image"].numpy()).all()


@pytest.mark.parametrize("value", ["1e308", "1e16", "1e-300"])
def test_absurd_ground_truth_illuminant_stops_naming_the_row(tmp_path, value) -> None:
    from tinct.constancy.folder import read_ground_truth

    root = _constancy_folder(tmp_path, {"a.npy": np.full((4, 4, 3), 0.5)})
    (root / "gt.csv").write_text(f"image,r,g,b\na.npy,{value},0.4,0.3\n")
    with pytest.raises(DataError, match=r"gt\.csv: row 2 \(a\.npy\): illuminant must be finite and positive"):
        read_ground_truth(root)


def _patch_folder(tmp_path, **row):
    import cv2

    root = tmp_path / "patches"
    root.mkdir()
    cv2.imwrite(str(root / "p.jpg"), np.full((16, 16, 3), 128, np.uint8))
    base = {
        "image": "p.jpg",
        "L": 60.0,
        "a": 12.0,
        "b": 15.0,
        "exposure_time": 0.01,
        "iso": 100,
        "f_number": 4,
    }
    pd.DataFrame([{**base, **row}]).to_csv(root / "labels.csv", index=False)
    return root


@pytest.mark.parametrize(
    ("column", "value"), [("a", 500.0), ("b", -250.0), ("a", 1e308), ("L", 1e308), ("L", -1.0)]
)
def test_out_of_range_patch_target_stops_with_line_and_image(tmp_path, column, value) -> None:
    from tinct.patch.labels import read_patch_table

    root = _patch_folder(tmp_path, **{column: value})
    with pytest.raises(DataError, match=rf"labels\.csv: line 2 \(image 'p\.jpg'\): {column} must be in"):
        read_patch_table(root, check_images=False)


@pytest.mark.parametrize(("column", "value"), [("exposure_time", 1e308), ("iso", 1e308), ("f_number", 5000)])
def test_absurd_patch_metadata_stops_with_line_and_image(tmp_path, column, value) -> None:
    from tinct.patch.labels import read_patch_table

    root = _patch_folder(tmp_path, **{column: value})
    with pytest.raises(DataError, match=rf"line 2 \(image 'p\.jpg'\): {column} must be > 0 and <="):
        read_patch_table(root, check_images=False)


def test_plausible_patch_row_is_read(tmp_path) -> None:
    from tinct.patch.labels import read_patch_table

    table = read_patch_table(_patch_folder(tmp_path, a=-40.0, b=90.0), check_images=False)
    assert len(table) == 1
