"""Dataset layouts behind open_constancy: generic, SimpleCube++, INTEL-TAU, cameras; folds; bad files name themselves."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from tinct.constancy.layouts import (
    ConstancyThumbnails,
    convert_constancy,
    detect_layout,
    fold_ids,
    open_constancy,
)
from tinct.core.exceptions import DataError, UnknownNameError


def _png16(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]).astype(np.uint16))


def _generic(root: Path, n: int = 6, folds: bool = False) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        illum = rng.uniform(0.3, 1.0, 3)
        img = (rng.uniform(0.05, 0.9, (12, 16, 1)) * illum).astype(np.float32)
        np.save(root / f"im{i}.npy", img)
        rows.append({"image": f"im{i}.npy", "r": illum[0], "g": illum[1], "b": illum[2]})
    pd.DataFrame(rows).to_csv(root / "gt.csv", index=False)
    if folds:
        pd.DataFrame({"image": [r["image"] for r in rows], "fold": [i % 2 for i in range(n)]}).to_csv(
            root / "folds.csv", index=False
        )
    return root


def _simple_cube(root: Path) -> Path:
    """Two train and one test image; raw = 2048 + signal, SpyderCube corner zeroed, one saturated pixel."""
    for split, stems in (("train", ["a", "b"]), ("test", ["c"])):
        rows = []
        for s in stems:
            img = np.full((8, 10, 3), 2048 + np.array([4000, 8000, 2000]), dtype=np.uint16)
            img[-2:, -2:] = 0
            img[0, 0] = 2**14 - 1
            _png16(root / split / "PNG" / f"{s}.png", img)
            rows.append({"image": s, "r": 4000, "g": 8000, "b": 2000})
        pd.DataFrame(rows).to_csv(root / split / "gt.csv", index=False)
    return root


def _intel_tau(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        _png16(root / f"x{i}.png", np.full((6, 6, 3), [100 * (i + 1), 300, 200], dtype=np.uint16))
        (root / f"x{i}_metadata.json").write_text(json.dumps({"illuminant_color_raw": [i + 1, 3, 2]}))
    return root


def test_detect_each_layout(tmp_path: Path) -> None:
    assert detect_layout(_generic(tmp_path / "g")) == "generic"
    assert detect_layout(_simple_cube(tmp_path / "s")) == "simplecube"
    assert detect_layout(_intel_tau(tmp_path / "i")) == "intel_tau"
    _generic(tmp_path / "cams" / "a")
    _generic(tmp_path / "cams" / "b")
    assert detect_layout(tmp_path / "cams") == "cameras"
    assert open_constancy(tmp_path / "cams").table["image"].tolist()[:2] == ["a/im0.npy", "a/im1.npy"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="unknown dataset layout"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        detect_layout(tmp_path / "missing")
    with pytest.raises(UnknownNameError, match="generic"):
        open_constancy(tmp_path / "g", layout="cube")


def test_simple_cube_black_level_saturation_and_corner(tmp_path: Path) -> None:
    src = open_constancy(_simple_cube(tmp_path / "s"))
    assert (src.black_level, src.saturation) == (2048.0, 16383.0)
    assert src.has_split and list(src.table["split"]) == ["train", "train", "test"]
    image, mask = src.load(0)
    # (x - 2048) / (16383 - 2048): hand-computed for the uniform part
    np.testing.assert_allclose(image[:, 3, 3].numpy(), np.array([4000, 8000, 2000]) / 14335, rtol=1e-6)
    assert mask[0, -2:, -2:].all(), "the zeroed SpyderCube corner is below black: masked"
    assert mask[0, 0, 0], "saturated pixel masked"
    assert mask.sum() == 5
    torch.testing.assert_close(
        src.illuminant(0), torch.nn.functional.normalize(torch.tensor([4.0, 8, 2]), dim=0)
    )


def test_simple_cube_accepts_upstream_columns_and_stems_with_extension(tmp_path: Path) -> None:
    root = _simple_cube(tmp_path / "s")
    gt = pd.read_csv(root / "train" / "gt.csv").rename(columns={"r": "mean_r", "g": "mean_g", "b": "mean_b"})
    gt["image"] = gt["image"] + ".png"
    gt.to_csv(root / "train" / "gt.csv", index=False)
    assert len(open_constancy(root)) == 3


def test_intel_tau_reads_metadata_json(tmp_path: Path) -> None:
    src = open_constancy(_intel_tau(tmp_path / "i"))
    assert src.layout == "intel_tau" and len(src) == 3 and not src.has_split
    torch.testing.assert_close(
        src.illuminant(1), torch.nn.functional.normalize(torch.tensor([2.0, 3, 2]), dim=0)
    )


def test_generic_folds_and_random_folds(tmp_path: Path) -> None:
    src = open_constancy(_generic(tmp_path / "g", n=6, folds=True))
    assert src.has_folds
    np.testing.assert_array_equal(fold_ids(src), [0, 1, 0, 1, 0, 1])
    plain = open_constancy(_generic(tmp_path / "p", n=7))
    ids = fold_ids(plain, 3, seed=1)
    assert sorted(np.bincount(ids).tolist()) == [2, 2, 3]
    np.testing.assert_array_equal(ids, fold_ids(plain, 3, seed=1))
    with pytest.raises(ValueError, match="folds"):
        fold_ids(plain, 8)


def test_thumbnails_exclude_masked_pixels(tmp_path: Path) -> None:
    src = open_constancy(_simple_cube(tmp_path / "s"))
    item = ConstancyThumbnails(src, [0], size=2)[0]
    assert item["image"].shape == (3, 2, 2) and item["mask"].shape == (1, 2, 2)
    # every usable pixel has the same colour, so every cell equals it despite the corner and the saturated pixel
    expected = torch.tensor([4000, 8000, 2000]) / 14335
    torch.testing.assert_close(item["image"], expected[:, None, None].expand(3, 2, 2), rtol=1e-5, atol=1e-6)
    assert int(item["index"]) == 0


def test_convert_writes_generic_thumbnails(tmp_path: Path) -> None:
    out = convert_constancy(_simple_cube(tmp_path / "s"), tmp_path / "out", size=4, progress=False)
    src = open_constancy(out)
    assert src.layout == "generic" and len(src) == 3
    arr = np.load(out / src.table["image"].iloc[0])
    assert arr.shape == (4, 4, 3) and arr.dtype == np.float32 and arr.max() == pytest.approx(1.0)
    assert set(pd.read_csv(out / "split.csv")["split"]) == {"train", "test"}


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing_row", r"im5\.npy: no ground-truth row"),
        ("nan_label", r"row 2 \(im0\.npy\): illuminant must be finite"),
        ("missing_file", r"image 'im1\.npy' listed but not found"),
        ("bad_folds", r"folds\.csv: no fold for image 'im5\.npy'"),
    ],
)
def test_generic_bad_ground_truth_names_the_file(tmp_path: Path, breakage: str, message: str) -> None:
    root = _generic(tmp_path / "g", folds=breakage == "bad_folds")
    gt = pd.read_csv(root / "gt.csv")
    if breakage == "missing_row":
        gt.iloc[:-1].to_csv(root / "gt.csv", index=False)
    elif breakage == "nan_label":
        gt.loc[0, "g"] = float("nan")
        gt.to_csv(root / "gt.csv", index=False)
    elif breakage == "missing_file":
        (root / "im1.npy").unlink()
    else:
        pd.read_csv(root / "folds.csv").iloc[:-1].to_csv(root / "folds.csv", index=False)
    with pytest.raises(DataError, match=message):
        open_constancy(root)


def test_bad_image_files_name_the_file(tmp_path: Path) -> None:
    root = _intel_tau(tmp_path / "i")
    # wrong bit depth: an 8-bit file is display-encoded, not raw
    cv2.imwrite(str(root / "x0.png"), np.full((6, 6, 3), 100, dtype=np.uint8))
    (root / "x1.png").write_bytes(b"not a png")
    src = open_constancy(root)
    with pytest.raises(DataError, match=r"x0\.png: 8-bit / JPEG files are display-encoded"):
        src.load(0)
    with pytest.raises(DataError, match=r"x1\.png: cannot decode"):
        src.load(1)
    (root / "x2_metadata.json").unlink()
    with pytest.raises(DataError, match=r"x2\.png: no ground truth"):
        open_constancy(root)


def test_simple_cube_png_without_row(tmp_path: Path) -> None:
    root = _simple_cube(tmp_path / "s")
    _png16(root / "test" / "PNG" / "extra.png", np.zeros((4, 4, 3), dtype=np.uint16))
    with pytest.raises(DataError, match=r"extra\.png: no ground-truth row"):
        open_constancy(root)


def test_real_intel_tau_sample(shared_data: Path) -> None:
    src = open_constancy(shared_data / "constancy" / "intel_tau_imx135")
    assert src.layout == "intel_tau" and len(src) == 30
    image, _mask = src.load(0)
    assert image.shape == (3, 256, 384) and 0 < image.max() <= 1
