"""Tests of tinct.color.raw.normalize_raw."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from tinct.color.raw import normalize_raw
from tinct.core.exceptions import ShapeError, TypeCheckError


def raw12(*shape: int, dtype: torch.dtype = torch.int16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4096, shape, generator=g).to(dtype)


@pytest.mark.parametrize(
    "dtype", [torch.uint8, torch.int8, torch.int16, torch.uint16, torch.int32, torch.int64]
)
def test_integer_dtypes(dtype):
    x = torch.tensor([[[0]], [[50]], [[100]]]).to(dtype)
    linear, mask = normalize_raw(x, black=10, saturation=100)
    assert linear.dtype == torch.float32 and mask.dtype == torch.bool
    assert linear.flatten().tolist() == pytest.approx([0.0, 40 / 90, 1.0])
    assert mask.shape == (1, 1, 1) and mask.item()


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_float_dtype_preserved(dtype):
    x = torch.rand(2, 3, 4, 4).to(dtype)
    linear, mask = normalize_raw(x)
    assert linear.dtype == dtype
    assert mask.shape == (2, 1, 4, 4)


def test_default_saturation_is_dtype_max():
    x = torch.tensor([[[65535, 100]], [[3, 100]], [[3, 100]]], dtype=torch.uint16)
    linear, mask = normalize_raw(x)
    assert mask.flatten().tolist() == [True, False]
    assert linear[0, 0, 0] == 1.0
    assert linear[0, 0, 1] == pytest.approx(100 / 65535)
    xf = torch.tensor([[[1.0, 0.5]], [[0.2, 0.5]], [[0.2, 0.5]]])
    _, mask = normalize_raw(xf)
    assert mask.flatten().tolist() == [True, False]


def test_formula_and_mask_per_channel_levels():
    x = raw12(2, 3, 8, 8).to(torch.int32)
    black, saturation = [128.0, 256.0, 64.0], torch.tensor([4000.0, 3500.0, 4095.0])
    linear, mask = normalize_raw(x, black, saturation, tolerance=10.0)
    b = torch.tensor(black).view(3, 1, 1)
    s = saturation.view(3, 1, 1)
    expected = ((x.double() - b) / (s - b)).clamp(0, 1).float()
    torch.testing.assert_close(linear, expected)
    bad = ((x >= s) | (x < b - 10)).any(dim=1, keepdim=True)
    assert torch.equal(mask, bad)
    assert mask.any() and not mask.all()


def test_tolerance():
    x = torch.tensor([[[95.0]], [[150.0]], [[150.0]]])
    assert normalize_raw(x, black=100.0, saturation=200.0)[1].item()
    assert not normalize_raw(x, black=100.0, saturation=200.0, tolerance=5.0)[1].item()
    assert normalize_raw(x, black=100.0, saturation=200.0)[0][0].item() == 0.0


def test_colour_list_and_four_channel_layouts():
    x = torch.tensor([[10, 20, 30, 1023], [10, 20, 30, 40]], dtype=torch.int16)
    linear, mask = normalize_raw(x, black=[0, 0, 0, 0], saturation=1023, dim=-1)
    assert linear.shape == (2, 4) and mask.shape == (2, 1)
    assert mask.flatten().tolist() == [True, False]
    packed = raw12(2, 4, 6, 6)
    linear, mask = normalize_raw(packed, black=256, saturation=4095)
    assert linear.shape == packed.shape and mask.shape == (2, 1, 6, 6)


def test_nan_is_unusable():
    x = torch.tensor([[[float("nan"), 0.5]], [[0.5, 0.5]], [[0.5, 0.5]]])
    _, mask = normalize_raw(x)
    assert mask.flatten().tolist() == [True, False]


def test_gradcheck_float_input():
    x = torch.rand(1, 3, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    assert gradcheck(lambda t: normalize_raw(t, black=0.05, saturation=0.95)[0], (x.requires_grad_(),))


def test_exceptions():
    x = raw12(3, 4, 4)
    with pytest.raises(ValueError, match="saturation must be > black"):
        normalize_raw(x, black=1000, saturation=1000)
    with pytest.raises(ValueError, match="saturation must be > black"):
        normalize_raw(x, black=[0, 5000, 0], saturation=4095)
    with pytest.raises(ShapeError, match="one per channel"):
        normalize_raw(x, black=[0, 0], saturation=4095)
    with pytest.raises(ShapeError, match="dim"):
        normalize_raw(x, dim=-4)
    with pytest.raises(ShapeError):
        normalize_raw(torch.tensor(5))
    with pytest.raises(ValueError, match="tolerance"):
        normalize_raw(x, tolerance=-1.0)
    with pytest.raises(ValueError, match="finite"):
        normalize_raw(x, black=float("nan"))
    with pytest.raises(TypeCheckError, match="dtype"):
        normalize_raw(torch.ones(3, 2, 2, dtype=torch.bool))
    with pytest.raises(TypeCheckError, match="dtype"):
        normalize_raw(torch.ones(3, 2, 2, dtype=torch.complex64))
    with pytest.raises(TypeCheckError):
        normalize_raw([[1, 2, 3]])
