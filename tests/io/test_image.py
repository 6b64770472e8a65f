"""Image files: bit depth and channel order, EXIF orientation, ICC profiles, pixel-exact ordinary files."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import colour
import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, ImageOps

from tinct.colorization.photos import describe_mode
from tinct.core.exceptions import DataError
from tinct.io.image import image_size, read_image, to_tensor_image, write_image


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: np.ndarray) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def icc_profile(space: str = "Display P3", name: str = "Display P3") -> bytes:
    """A minimal ICC v2 matrix/TRC display profile of a colour-science RGB space with the sRGB curve.

    The colorants are the space's primaries adapted from its D65 white to the D50 connection space with
    Bradford, as the ICC specification asks (and as littleCMS builds its own sRGB profile).
    """
    cs = colour.RGB_COLOURSPACES[space]
    d50 = np.array([0.9642, 1.0, 0.8249])
    x, y = cs.whitepoint
    white = np.array([x / y, 1.0, (1 - x - y) / y])
    m = colour.adaptation.matrix_chromatic_adaptation_VonKries(white, d50, transform="Bradford")
    m = m @ cs.matrix_RGB_to_XYZ
    curve = colour.models.eotf_sRGB(np.linspace(0, 1, 1024))
    curv = b"curv\0\0\0\0" + struct.pack(">I", 1024) + np.round(curve * 65535).astype(">u2").tobytes()
    text = name.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 78  # no Unicode / Mac names
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz(d50)),
        (b"rXYZ", _xyz(m[:, 0])),
        (b"gXYZ", _xyz(m[:, 1])),
        (b"bXYZ", _xyz(m[:, 2])),
        (b"rTRC", curv),
        (b"gTRC", curv),
        (b"bTRC", curv),
        (b"cprt", b"text\0\0\0\0tinct test profile\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = struct.pack(">I", offset + len(body)) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
    header += b"\0" * 12 + b"acsp" + b"\0" * 28 + b"".join(_s15(v) for v in d50) + b"\0" * 48
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def add_png_chunk(path: Path, kind: bytes, data: bytes) -> Path:
    """Insert a chunk right after a PNG's IHDR (``iCCP``, ``eXIf``: OpenCV cannot write them)."""
    raw = path.read_bytes()
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(raw[:33] + chunk + raw[33:])  # 8-byte signature + 25-byte IHDR chunk
    return path


def _stored(path: Path) -> np.ndarray:
    """The pixels as stored, by OpenCV (which ignores orientation and profiles with IMREAD_UNCHANGED)."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return arr[..., ::-1] if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=2)


def _pillow_upright(arr: np.ndarray, orientation: int) -> np.ndarray:
    """The reference: ``PIL.ImageOps.exif_transpose``, channel by channel (it handles 32-bit int images)."""
    out = []
    for c in range(arr.shape[2]):
        im = Image.fromarray(arr[..., c].astype(np.int32))
        im.getexif()[0x0112] = orientation
        out.append(np.asarray(ImageOps.exif_transpose(im)))
    return np.stack(out, -1).astype(arr.dtype)


def test_16bit_png_round_trip_keeps_bits_and_channel_order(tmp_path) -> None:
    # Distinct channels catch a BGR/RGB swap; values that need all 16 bits catch 8-bit truncation.
    img = torch.zeros(3, 4, 5, dtype=torch.float64)
    img[0], img[1], img[2] = 1.0, 0.5, 12345 / 65535
    path = write_image(tmp_path / "x.png", img, bit_depth=16)
    raw = read_image(path)
    assert raw.array.dtype == np.uint16 and raw.linear and raw.bit_depth == 16
    assert raw.array[0, 0].tolist() == [65535, 32768, 12345]
    assert torch.allclose(
        to_tensor_image(raw, torch.float64)[:, 0, 0],
        torch.tensor([1.0, 32768 / 65535, 12345 / 65535], dtype=torch.float64),
    )
    assert raw.notes == ()


def test_8bit_is_not_linear(tmp_path) -> None:
    path = write_image(tmp_path / "x.jpg", torch.rand(3, 8, 8))
    raw = read_image(path)
    assert raw.array.dtype == np.uint8 and not raw.linear and raw.white_level == 255


def test_npy_and_grayscale(tmp_path) -> None:
    np.save(tmp_path / "a.npy", np.full((4, 6, 3), 0.25, dtype=np.float32))
    raw = read_image(tmp_path / "a.npy")
    assert raw.white_level == 1.0 and raw.array.shape == (4, 6, 3)
    # Grayscale image files are still expanded to 3 channels; a 2-D .npy is refused (tests/bad_input).
    cv2.imwrite(str(tmp_path / "g.png"), np.arange(24, dtype=np.uint8).reshape(4, 6))
    gray = read_image(tmp_path / "g.png").array
    assert gray.shape == (4, 6, 3) and np.array_equal(gray[..., 0], gray[..., 2])


def test_bad_files_name_the_file(tmp_path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"bad\.png: cannot decode"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"missing\.png: no such file"):
        read_image(tmp_path / "missing.png")
    np.save(tmp_path / "nan.npy", np.full((2, 2, 3), np.nan, dtype=np.float32))
    with pytest.raises(DataError, match=r"nan\.npy: .*NaN"):
        read_image(tmp_path / "nan.npy")
    np.save(tmp_path / "four.npy", np.zeros((2, 2, 4), dtype=np.float32))
    with pytest.raises(DataError, match=r"four\.npy: expected an H x W x 3"):
        read_image(tmp_path / "four.npy")
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match="unsupported image type"):
        read_image(tmp_path / "x.gif")


def test_ordinary_files_read_exactly_as_opencv_stored_them(tmp_path: Path) -> None:
    # 8-bit files are now decoded by Pillow: the values must not move by a single level.
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (37, 29, 3), dtype=np.uint8), (5, 5), 0)
    deep = rng.integers(0, 65536, (37, 29, 3), dtype=np.uint16)
    files = {
        "rgb.png": rgb,
        "gray.png": rgb[..., 0],
        "q95.jpg": rgb,
        "gray.jpg": rgb[..., 1],
        "rgb.bmp": rgb,
        "rgb.tif": rgb,
        "deep.png": deep,
        "deep.tif": deep,
    }
    for name, arr in files.items():
        assert cv2.imwrite(str(tmp_path / name), arr[..., ::-1] if arr.ndim == 3 else arr)
        raw = read_image(tmp_path / name)
        assert np.array_equal(raw.array, _stored(tmp_path / name)), name
        assert raw.notes == () and raw.array.dtype == arr.dtype, name
        assert image_size(tmp_path / name) == (29, 37)
    Image.fromarray(rgb).save(tmp_path / "pillow.jpg", quality=80)  # no EXIF, no profile
    assert np.array_equal(read_image(tmp_path / "pillow.jpg").array, _stored(tmp_path / "pillow.jpg"))


def test_jpeg_orientation_6_is_turned_clockwise(tmp_path: Path) -> None:
    stored = np.zeros((40, 64, 3), np.uint8)
    stored[:8, :8] = (255, 0, 0)  # a red corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "o6.jpg", exif=exif, quality=100, subsampling=0)
    raw = read_image(tmp_path / "o6.jpg")
    assert raw.array.shape == (64, 40, 3)  # was (40, 64, 3): read as stored
    assert np.array_equal(raw.array, np.rot90(_stored(tmp_path / "o6.jpg"), k=-1))
    assert np.array_equal(raw.array, np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o6.jpg"))))
    assert raw.array[2, -3, 0] > 200 and raw.array[-3, 2, 0] < 50  # the corner went top right
    assert raw.notes == ("rotated 90 degrees clockwise by EXIF orientation 6",)
    note = describe_mode(tmp_path / "o6.jpg", raw.array, raw.notes)
    assert note == "rotated 90 degrees clockwise by EXIF orientation 6"


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["jpg", "png", "tif", "png16", "tif16"])
def test_every_exif_orientation_as_pillow_applies_it(tmp_path: Path, kind: str, orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    path = tmp_path / f"o.{kind[:3]}"
    exif = Image.Exif()
    exif[0x0112] = orientation
    depth = np.uint16 if kind.endswith("16") else np.uint8
    stored = rng.integers(0, np.iinfo(depth).max + 1, (5, 7, 3), dtype=depth)
    if kind == "png16":
        assert cv2.imwrite(str(path), stored[..., ::-1])
        add_png_chunk(path, b"eXIf", exif.tobytes())
    elif kind == "tif16":
        tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
    else:
        Image.fromarray(stored).save(path, exif=exif)
    if kind == "jpg":
        stored = np.asarray(Image.open(path))  # as decoded, not yet turned
    raw = read_image(path)
    assert np.array_equal(raw.array, _pillow_upright(stored, orientation))
    assert raw.array.shape[:2] == ((7, 5) if orientation >= 5 else (5, 7))
    assert image_size(path) == raw.array.shape[1::-1]
    assert len(raw.notes) == (orientation != 1)
    assert all(f"EXIF orientation {orientation}" in note for note in raw.notes)


# Colours inside both gamuts, so the sRGB reference needs no clipping.
P3_COLOURS = np.array(
    [[200, 60, 50], [120, 200, 90], [60, 80, 200], [128, 128, 128], [240, 200, 150]], np.uint8
)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_display_p3_is_converted_to_srgb(tmp_path: Path, suffix: str) -> None:
    patches = np.repeat(np.repeat(P3_COLOURS[None], 16, axis=0), 16, axis=1)  # flat 16 x 16 patches
    path = tmp_path / f"p3{suffix}"
    Image.fromarray(patches).save(path, icc_profile=icc_profile(), quality=100, subsampling=0)
    stored = _stored(path)[8, 8::16].astype(np.float64)  # patch centres, as the file holds them
    # Independent of Pillow / littleCMS: colour-science's RGB_to_RGB (same D65 white: no adaptation).
    expected = colour.RGB_to_RGB(
        stored / 255, "Display P3", "sRGB", apply_cctf_decoding=True, apply_cctf_encoding=True
    )
    raw = read_image(path)
    got = raw.array[8, 8::16].astype(np.float64)
    assert np.abs(got - expected * 255).max() <= 2.0
    assert np.abs(stored - expected * 255).max() > 10  # reading the file as sRGB is far off
    assert raw.notes == ("converted from ICC profile 'Display P3' to sRGB",)


def test_srgb_profile_keeps_the_stored_values(tmp_path: Path) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(tmp_path / "s.png", icc_profile=srgb)
    raw = read_image(tmp_path / "s.png")
    assert np.array_equal(raw.array, rgb) and raw.notes == ()


def test_16bit_profile_is_not_applied_and_says_so(tmp_path: Path) -> None:
    stored = np.random.default_rng(4).integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    path = tmp_path / "p3_16.png"
    assert cv2.imwrite(str(path), stored[..., ::-1])
    add_png_chunk(path, b"iCCP", b"Display P3\0\0" + zlib.compress(icc_profile()))
    with pytest.warns(UserWarning, match=r"p3_16\.png: ICC profile 'Display P3' not applied"):
        raw = read_image(path)
    assert np.array_equal(raw.array, stored)
    assert raw.notes == ("ICC profile 'Display P3' not applied (16-bit image)",)


def test_float_tiff_that_pillow_cannot_parse(tmp_path: Path) -> None:
    stored = np.random.default_rng(5).random((6, 4, 3), dtype=np.float32)
    tifffile.imwrite(tmp_path / "f.tif", stored, photometric="rgb", extratags=[(274, "H", 1, 8, True)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = read_image(tmp_path / "f.tif")
    assert raw.array.dtype == np.float32 and raw.linear
    assert np.array_equal(raw.array, np.rot90(stored))  # orientation 8: 90 degrees counter-clockwise
    assert image_size(tmp_path / "f.tif") == (6, 4)  # upright, as read
    with pytest.raises(DataError, match=r"f\.tif: image of 4 x 6 = 24 pixels exceeds the limit of 20"):
        read_image(tmp_path / "f.tif", max_pixels=20)


# Pillow, trying a big-endian BigTIFF, warns of corrupt EXIF data: its warning, given as before.
@pytest.mark.filterwarnings("ignore:.*Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize(("bigtiff", "byteorder"), [(False, ">"), (True, "<"), (True, ">")])
def test_bigtiff_and_big_endian_tiffs_are_turned_upright(
    tmp_path: Path, dtype: type, bigtiff: bool, byteorder: str
) -> None:
    # tifffile reads these headers (float RGB: Pillow cannot) and sets the orientation to 1 for OpenCV.
    rng = np.random.default_rng(6)
    for orientation in range(1, 9):
        stored = (
            rng.random((5, 7, 3), dtype=np.float32)
            if dtype == np.float32
            else rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
        )
        path = tmp_path / f"o{orientation}.tif"
        tifffile.imwrite(
            path,
            stored,
            photometric="rgb",
            bigtiff=bigtiff,
            byteorder=byteorder,
            compression="zlib",
            extratags=[(274, "H", 1, orientation, True)],
        )
        raw = read_image(path)
        bits = stored.view(np.int32) if dtype == np.float32 else stored  # floats through Pillow exactly
        assert raw.array.dtype == dtype
        assert np.array_equal(raw.array, _pillow_upright(bits, orientation).view(dtype))
        assert image_size(path) == raw.array.shape[1::-1]
        assert len(raw.notes) == (orientation != 1)


def test_float_tiff_profile_is_read_from_the_header_and_not_applied(tmp_path: Path) -> None:
    stored = np.random.default_rng(7).random((4, 6, 3), dtype=np.float32)
    profile = icc_profile()
    tifffile.imwrite(
        tmp_path / "p3.tif", stored, photometric="rgb", extratags=[(34675, 7, len(profile), profile, True)]
    )
    with pytest.warns(UserWarning, match=r"p3\.tif: ICC profile 'Display P3' not applied"):
        raw = read_image(tmp_path / "p3.tif")
    assert np.array_equal(raw.array, stored)
    assert raw.notes == ("ICC profile 'Display P3' not applied (float image)",)
