"""Photo folders: recursive listing, 8/16-bit reading, conversion notes, stable splits, corrupt files."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from tinct.colorization.photos import (
    PhotoCrops,
    PhotoImages,
    describe_mode,
    list_photos,
    load_photos,
    read_photo,
    resize_short_side,
    skimage_photos,
    split_photos,
)
from tinct.core.exceptions import DataError


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array[..., ::-1] if array.ndim == 3 else array)
    return path


def test_list_recursive_and_types(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    for name in ("a.png", "sub/b.jpg", "sub/deeper/c.tif", "sub/d.bmp"):
        _write(tmp_path / name, rgb)
    (tmp_path / "notes.txt").write_text("not a photo")
    assert [p.relative_to(tmp_path).as_posix() for p in list_photos(tmp_path)] == [
        "a.png", "sub/b.jpg", "sub/d.bmp", "sub/deeper/c.tif",
    ]  # fmt: skip
    assert list_photos(tmp_path / "a.png") == [tmp_path / "a.png"]
    with pytest.raises(DataError, match="no such photo folder"):
        list_photos(tmp_path / "missing")


def test_read_8_and_16_bit_as_srgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a8 = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    a16 = rng.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    assert np.allclose(read_photo(_write(tmp_path / "8.png", a8)), a8 / 255.0, atol=1e-7)
    assert np.allclose(read_photo(_write(tmp_path / "16.png", a16)), a16 / 65535.0, atol=1e-7)
    gray = read_photo(_write(tmp_path / "g.png", a8[..., 0]))
    assert gray.shape == (6, 7, 3) and np.array_equal(gray[..., 0], gray[..., 2])


def test_conversion_notes(tmp_path: Path) -> None:
    rgb = (np.random.default_rng(1).random((8, 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert "palette" in describe_mode(tmp_path / "palette.png")
    assert "alpha" in describe_mode(tmp_path / "rgba.png")
    assert "grayscale" in describe_mode(tmp_path / "gray.png")
    assert describe_mode(tmp_path / "rgb.png") is None
    # A colour file whose three channels are equal has no colours to compare with either.
    flat = np.repeat(rgb[..., :1], 3, axis=2)
    Image.fromarray(flat).save(tmp_path / "flat.png")
    assert "grayscale" in describe_mode(tmp_path / "flat.png", read_photo(tmp_path / "flat.png"))
    for name in ("palette", "rgba"):
        assert read_photo(tmp_path / f"{name}.png").shape == (8, 8, 3)


def test_split_is_deterministic_disjoint_and_stable(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i:03d}.png" for i in range(200)]
    s = split_photos(paths, 0.1, 0.2, seed=0)
    assert sorted(s["train"] + s["val"] + s["test"]) == paths
    assert not set(s["train"]) & set(s["test"]) and not set(s["val"]) & set(s["test"])
    assert 20 <= len(s["test"]) <= 60 and 5 <= len(s["val"]) <= 35
    assert split_photos(paths, 0.1, 0.2, seed=0) == s
    assert split_photos(paths, 0.1, 0.2, seed=1) != s
    # Adding files never moves an existing file to another split.
    more = split_photos(paths + [tmp_path / f"new{i}.png" for i in range(50)], 0.1, 0.2, seed=0)
    for key in s:
        assert set(s[key]) <= set(more[key])
    with pytest.raises(ValueError, match="sum"):
        split_photos(paths, 0.6, 0.5)


def test_corrupt_files_are_skipped_by_name(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.png", np.full((10, 12, 3), 128, np.uint8))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.warns(UserWarning, match="bad.jpg"):
        images, kept = load_photos([good, bad], short_side=5)
    assert kept == [good] and images[0].shape == (5, 6, 3) and images[0].dtype == np.uint8
    with pytest.raises(DataError, match=r"bad\.jpg"):
        load_photos([bad], strict=True)


def test_crops_and_centre_images() -> None:
    torch.manual_seed(0)
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    crops = PhotoCrops([image], crop=16, samples_per_epoch=5)
    assert len(crops) == 5
    item = crops[3]["image"]
    assert item.shape == (3, 16, 16) and item.dtype == torch.float32 and 0 <= item.min() <= item.max() <= 1
    small = PhotoCrops([image[:8, :8]], crop=16)  # smaller than the crop: upscaled first
    assert small[0]["image"].shape == (3, 16, 16)
    centre = PhotoImages([image], 16)[0]["image"]
    assert torch.equal(centre, torch.from_numpy(image[2:18, 7:23].transpose(2, 0, 1).copy()).float() / 255)
    assert resize_short_side(image, 10).shape == (10, 15, 3)
    with pytest.raises(DataError, match="no photos"):
        PhotoCrops([], crop=16)


def test_skimage_photos_are_bundled() -> None:
    paths = skimage_photos()
    assert len(paths) == 5 and all(p.is_file() for p in paths)
