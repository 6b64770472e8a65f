"""Image files that are hostile or broken: planted links, unwritable folders, pixel bombs, truncated
files, empty files, and ``.npy`` arrays whose meaning would have to be guessed. Every file is generated."""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from tinct.core.exceptions import ConfigError, DataError
from tinct.io.image import MAX_PIXELS_ENV, image_size, max_pixels, read_image, write_image

ONE_COLOR = torch.tensor([0.2, 0.4, 0.6]).view(3, 1, 1).expand(3, 4, 5)


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)


# -- writing ------------------------------------------------------------------------------------------


def test_planted_link_at_the_old_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".one_color.png.tmp.png").symlink_to(victim)  # the name the old writer used, predictably
    path = write_image(out / "one_color.png", ONE_COLOR)
    assert victim.read_text() == "precious"
    assert read_image(path).array[0, 0].tolist() == [51, 102, 153]
    assert sorted(p.name for p in out.iterdir()) == [".one_color.png.tmp.png", "one_color.png"]


def test_link_at_the_destination_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.png").symlink_to(victim)
    write_image(tmp_path / "out.png", ONE_COLOR)
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out.png").is_symlink() and read_image(tmp_path / "out.png").array.shape == (
        4,
        5,
        3,
    )


def test_unwritable_folder_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(DataError, match=r"x\.png: .*folder .* is not writable \(permission denied\)"):
        write_image(tmp_path / "x.png", ONE_COLOR)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(DataError, match="is not writable"):
            write_image(folder / "x.png", ONE_COLOR)
    finally:
        folder.chmod(0o700)


def test_unsupported_extension_and_depth(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"x\.gif: .*unsupported extension '\.gif'"):
        write_image(tmp_path / "x.gif", ONE_COLOR)
    with pytest.raises(DataError, match=r"x\.jpg: a \.jpg file holds 8 bits"):
        write_image(tmp_path / "x.jpg", ONE_COLOR, bit_depth=16)  # OpenCV would saturate it to 8 bits
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "x.png", ONE_COLOR)
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DataError, match=r"x\.png: cannot write the image \(No space left on device\)"):
        write_image(path, torch.zeros(3, 4, 5))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.png"]


# -- pixel limit --------------------------------------------------------------------------------------


def _jpeg_claiming(path: Path, width: int, height: int) -> Path:
    """A small JPEG whose header claims ``width x height`` (a decompression bomb, as far as a header says)."""
    Image.new("RGB", (16, 16), (10, 20, 30)).save(path)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    path.write_bytes(bytes(data))
    return path


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A 16-bit PNG whose IHDR claims ``width x height`` (CRC fixed, so only the size is a lie)."""
    assert cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint16))
    data = bytearray(path.read_bytes())
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_limit_is_checked_on_the_header_before_decoding(tmp_path: Path) -> None:
    rgb = np.zeros((100, 100, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    assert cv2.imwrite(str(tmp_path / "b.png"), rgb.astype(np.uint16))
    np.save(tmp_path / "c.npy", rgb.astype(np.float32))
    for name in ("a.jpg", "b.png", "c.npy"):
        with pytest.raises(
            DataError,
            match=rf"{name[0]}\.\w+: image of 100 x 100 = 10,000 pixels exceeds the limit of 1,000 pixels; raise it with .*{MAX_PIXELS_ENV}",
        ):
            read_image(tmp_path / name, max_pixels=1000)
        assert read_image(tmp_path / name, max_pixels=10_000).array.shape == (100, 100, 3)
        assert image_size(tmp_path / name) == (100, 100)
    # A 20000 x 20000 header on a tiny file: refused by its header (decoding would need 1.2 GB).
    for path in (
        _jpeg_claiming(tmp_path / "bomb.jpg", 20000, 20000),
        _png_claiming(tmp_path / "bomb.png", 20000, 20000),
    ):
        with pytest.raises(DataError, match=rf"{path.name}: .*exceeds the limit of {max_pixels():,} pixels"):
            read_image(path)
        assert image_size(path) == (20000, 20000)


def test_limit_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (100, 100)).save(tmp_path / "a.png")
    assert max_pixels() == 2 * Image.MAX_IMAGE_PIXELS
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    assert max_pixels() == 1000
    with pytest.raises(DataError, match=r"a\.png: image of 100 x 100 .* limit of 1,000 pixels"):
        read_image(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", max_pixels=10_000).array.shape == (100, 100, 3)
    for bad in ("lots", "0", "-5", "1.5e8"):
        monkeypatch.setenv(MAX_PIXELS_ENV, bad)
        with pytest.raises(ConfigError, match=rf"{MAX_PIXELS_ENV}="):
            read_image(tmp_path / "a.png")
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        read_image(tmp_path / "a.png", max_pixels=0)


def test_pillow_bomb_checks_neither_warn_nor_override_tincts_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow warns above 1000 pixels, fails above 2000
    Image.new("RGB", (40, 30)).save(tmp_path / "warned.jpg")  # 1200 pixels
    Image.new("RGB", (60, 50)).save(tmp_path / "refused.png")  # 3000 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "warned.jpg").array.shape == (30, 40, 3)
        assert read_image(tmp_path / "refused.png", max_pixels=5000).array.shape == (50, 60, 3)
        assert image_size(tmp_path / "refused.png") == (60, 50)
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(DataError, match=r"refused\.png: .*exceeds the limit of 2,000 pixels"):
        read_image(tmp_path / "refused.png")  # the default: Pillow's error threshold


# -- truncated, corrupt and empty files -------------------------------------------------------------


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_jpeg_is_an_error_not_grey(tmp_path: Path, keep: float) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "cut.jpg")
    _truncate(tmp_path / "cut.jpg", keep)
    assert cv2.imread(str(tmp_path / "cut.jpg")) is not None  # OpenCV alone fills it with grey
    with pytest.raises(DataError, match=r"cut\.jpg: cannot decode image: truncated or corrupt"):
        read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("name", ["cut8.png", "cut16.png", "cut8.tif", "cut16.tif", "cut.bmp"])
def test_truncated_lossless_files(tmp_path: Path, name: str) -> None:
    depth = np.uint16 if "16" in name else np.uint8
    arr = np.random.default_rng(1).integers(0, np.iinfo(depth).max, (64, 64, 3), dtype=depth)
    if name.endswith(".tif") and depth == np.uint8:
        Image.fromarray(arr).save(tmp_path / name)  # pixel data after the header: the cut hits pixels
    else:
        assert cv2.imwrite(str(tmp_path / name), arr)
    _truncate(tmp_path / name, 0.6)
    with pytest.raises(
        DataError, match=rf"{name.replace('.', '[.]')}: cannot decode image: .*truncated or corrupt"
    ):
        read_image(tmp_path / name)


@pytest.mark.parametrize("name", ["empty.png", "empty.jpg", "empty.tif", "empty.npy"])
def test_empty_files(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match=rf"{name.replace('.', '[.]')}: empty file \(0 bytes\)"):
        read_image(tmp_path / name)


def test_garbage_tiff(tmp_path: Path) -> None:
    (tmp_path / "x.tif").write_bytes(b"II*\0" + b"\xff" * 40)
    with pytest.raises(DataError, match=r"x\.tif: cannot decode image"):
        read_image(tmp_path / "x.tif")


def test_corrupt_icc_profile_warns_and_reads_as_srgb(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    bogus = b"\0\0\1\0" + b"\0" * 32 + b"acsp" + b"\xff" * 216  # a header that claims a profile
    Image.fromarray(rgb).save(tmp_path / "p.png", icc_profile=bogus)
    with pytest.warns(UserWarning, match=r"p\.png: cannot use its embedded ICC profile"):
        raw = read_image(tmp_path / "p.png")
    assert np.array_equal(raw.array, rgb) and raw.notes == (
        "embedded ICC profile unreadable: colours read as sRGB",
    )


def test_cmyk_jpeg_without_profile_says_its_colours_are_approximate(tmp_path: Path) -> None:
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    with pytest.warns(UserWarning, match=r"cmyk\.jpg: CMYK image without an ICC profile"):
        raw = read_image(tmp_path / "cmyk.jpg")
    assert raw.array.shape == (4, 6, 3) and raw.array[2, 3, 0] > 200 and raw.array[2, 3, 1:].max() < 50
    assert raw.notes == ("CMYK converted to RGB without a colour profile (approximate colours)",)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_says_so(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "locked.png")
    (tmp_path / "locked.png").chmod(0)
    with pytest.raises(DataError, match=r"locked\.png: cannot read the file \(permission denied\)"):
        read_image(tmp_path / "locked.png")


# -- .npy arrays --------------------------------------------------------------------------------------


def test_2d_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "g.npy", np.zeros((4, 6), np.float32))
    with pytest.raises(DataError, match=r"g\.npy: expected an H x W x 3 float array, got shape \(4, 6\)"):
        read_image(tmp_path / "g.npy")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_integer_npy_is_refused(tmp_path: Path, dtype: type) -> None:
    np.save(tmp_path / "i.npy", np.full((4, 6, 3), 200, dtype))
    with pytest.raises(
        DataError, match=r"i\.npy: integer \.npy is not supported .*astype\(np\.float32\) / white_level"
    ):
        read_image(tmp_path / "i.npy")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_npy_of_any_precision_is_float32(tmp_path: Path, dtype: type) -> None:
    values = np.random.default_rng(3).random((4, 6, 3)).astype(dtype)
    np.save(tmp_path / "f.npy", values)
    raw = read_image(tmp_path / "f.npy")
    assert raw.array.dtype == np.float32 and raw.white_level == 1.0 and raw.linear
    assert np.array_equal(raw.array, values.astype(np.float32))
    np.save(tmp_path / "big.npy", np.full((2, 2, 3), 1e300))
    with pytest.raises(DataError, match=r"big\.npy: .*inf"):
        read_image(tmp_path / "big.npy")  # beyond float32: not silently infinite


def test_shared_float16_thumbnails_still_load(shared_file: Callable[[str], Path]) -> None:
    folder = shared_file("constancy/cube_plus_64")
    for path in sorted(folder.glob("*.npy"))[:3]:
        raw = read_image(path)
        assert raw.array.dtype == np.float32 and raw.array.ndim == 3 and raw.array.shape[2] == 3


def test_corrupt_tiff_tag_is_said_once_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A float TIFF (read with tifffile's header) whose ICC profile tag has an invalid data type: tifffile
    # skips the tag and logs an error; the reader says it as one warning naming the file, and reads on.
    stored = np.random.default_rng(4).random((4, 6, 3), dtype=np.float32)
    path = tmp_path / "bad_tag.tif"
    tifffile.imwrite(path, stored, photometric="rgb", extratags=[(34675, 7, 200, b"\1" * 200, True)])
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        struct.pack_into(tif.byteorder + "H", data, tif.pages[0].tags[34675].offset + 2, 0)
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = read_image(path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{path}: corrupt TIFF header, read without what tifffile skipped (")
    assert "invalid data type 0" in message
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]
    assert np.array_equal(raw.array, stored) and raw.notes == ()


def test_header_beyond_opencvs_limits_is_a_data_error(tmp_path: Path) -> None:
    # Under tinct's pixel limit (32 million pixels), but wider than OpenCV decodes (2**20): its assertion
    # must not escape as a cv2.error.
    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, np.zeros((16, 12, 3), np.float32), photometric="rgb")
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[0].tags[256].overwrite(2_000_000)
    with pytest.raises(DataError, match=r"wide\.tif: cannot decode image: .*OpenCV"):
        read_image(path)
