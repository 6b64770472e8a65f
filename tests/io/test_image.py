import numpy as np
import pytest
import torch

from tinct.core.exceptions import DataError
from tinct.io.image import read_image, to_tensor_image, write_image


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


def test_8bit_is_not_linear(tmp_path) -> None:
    path = write_image(tmp_path / "x.jpg", torch.rand(3, 8, 8))
    raw = read_image(path)
    assert raw.array.dtype == np.uint8 and not raw.linear and raw.white_level == 255


def test_npy_and_grayscale(tmp_path) -> None:
    np.save(tmp_path / "a.npy", np.full((4, 6, 3), 0.25, dtype=np.float32))
    raw = read_image(tmp_path / "a.npy")
    assert raw.white_level == 1.0 and raw.array.shape == (4, 6, 3)
    np.save(tmp_path / "g.npy", np.zeros((4, 6), dtype=np.float32))
    assert read_image(tmp_path / "g.npy").array.shape == (4, 6, 3)


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
