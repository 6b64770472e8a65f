"""Tests of tinct.color.rgb against colour-science 0.4.7 (IEC 61966-2-1 sRGB)."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from tinct.color.rgb import (
    SRGB_TO_XYZ_MATRIX,
    XYZ_TO_SRGB_MATRIX,
    LinearRgbToXyz,
    LinearToSrgb,
    SrgbToLinear,
    XyzToLinearRgb,
    linear_rgb_to_xyz,
    linear_to_srgb,
    srgb_to_linear,
    xyz_to_linear_rgb,
)
from tinct.core.exceptions import ShapeError, TypeCheckError

FUNCTIONS = [srgb_to_linear, linear_to_srgb, linear_rgb_to_xyz, xyz_to_linear_rgb]
MODULES = [SrgbToLinear, LinearToSrgb, LinearRgbToXyz, XyzToLinearRgb]


def rand(*shape: int, dtype: torch.dtype = torch.float64, lo: float = 0.0, hi: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype) * (hi - lo) + lo


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("shape", "dim"),
    [
        ((3, 4, 5), -3),
        ((2, 3, 4, 5), -3),
        ((2, 2, 3, 4, 5), -3),
        ((7, 3), -1),
        ((3,), -1),
        ((2, 3, 4, 5), 1),
        ((0, 3), -1),
    ],
)
def test_cardinality(fn, shape, dim):
    x = rand(*shape)
    assert fn(x, dim=dim).shape == x.shape


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_preserved(fn, dtype):
    assert fn(rand(2, 3, 4, 4, dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_exceptions(fn):
    with pytest.raises(ShapeError, match="3 channels"):
        fn(rand(2, 4, 5, 5))
    with pytest.raises(ShapeError, match="dim=-1"):
        fn(rand(5, 4), dim=-1)
    with pytest.raises(TypeCheckError, match="floating"):
        fn(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(TypeCheckError):
        fn(np.zeros((3, 2, 2)))


def test_srgb_to_linear_matches_colour():
    # Range extends below 0 and above 1: negatives take the linear segment in both implementations.
    x = rand(10000, 3, lo=-0.2, hi=1.2)
    ref = colour.models.eotf_sRGB(x.numpy())
    np.testing.assert_allclose(srgb_to_linear(x, dim=-1).numpy(), ref, rtol=0, atol=1e-6)


def test_linear_to_srgb_matches_colour():
    x = rand(10000, 3, lo=-0.2, hi=1.2)
    ref = colour.models.eotf_inverse_sRGB(x.numpy())
    np.testing.assert_allclose(linear_to_srgb(x, dim=-1).numpy(), ref, rtol=0, atol=1e-6)


def test_encoded_to_xyz_matches_colour_srgb_to_xyz():
    x = rand(10000, 3)
    ours = linear_rgb_to_xyz(srgb_to_linear(x, dim=-1), dim=-1)
    np.testing.assert_allclose(ours.numpy(), colour.sRGB_to_XYZ(x.numpy()), rtol=0, atol=1e-6)


def test_linear_rgb_to_xyz_matches_colour():
    x = rand(10000, 3)
    ref = colour.RGB_to_XYZ(x.numpy(), colour.RGB_COLOURSPACES["sRGB"], apply_cctf_decoding=False)
    np.testing.assert_allclose(linear_rgb_to_xyz(x, dim=-1).numpy(), ref, rtol=0, atol=1e-6)


def test_matrix_is_colour_science_srgb_matrix():
    np.testing.assert_array_equal(
        np.array(SRGB_TO_XYZ_MATRIX), colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ
    )
    np.testing.assert_allclose(
        np.array(XYZ_TO_SRGB_MATRIX) @ np.array(SRGB_TO_XYZ_MATRIX), np.eye(3), atol=1e-15
    )


def test_matrix_vs_derived_from_primaries():
    # Documented: the IEC 4-decimal matrix (used by colour-science and here) differs from the one derived
    # from the primaries and D65 by up to ~4e-5 per entry.
    space = colour.RGB_COLOURSPACES["sRGB"]
    derived = colour.normalised_primary_matrix(space.primaries, space.whitepoint)
    diff = np.abs(derived - np.array(SRGB_TO_XYZ_MATRIX)).max()
    assert 1e-6 < diff < 5e-5


def test_xyz_to_linear_rgb_vs_colour():
    xyz = rand(10000, 3, hi=0.95)
    exact = xyz.numpy() @ np.linalg.inv(colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ).T
    np.testing.assert_allclose(xyz_to_linear_rgb(xyz, dim=-1).numpy(), exact, rtol=0, atol=1e-6)
    # colour.XYZ_to_RGB uses IEC's 4-decimal inverse, hence the looser tolerance (see module docstring).
    ref = colour.XYZ_to_RGB(xyz.numpy(), colour.RGB_COLOURSPACES["sRGB"], apply_cctf_encoding=False)
    np.testing.assert_allclose(xyz_to_linear_rgb(xyz, dim=-1).numpy(), ref, rtol=0, atol=1e-3)


def test_white_and_black():
    white = torch.ones(3, 1, 1, dtype=torch.float64)
    xyz = linear_rgb_to_xyz(white).flatten()
    np.testing.assert_allclose(xyz.numpy(), [0.9505, 1.0, 1.089], atol=1e-12)
    assert torch.equal(srgb_to_linear(torch.zeros(3, 2, 2)), torch.zeros(3, 2, 2))
    assert torch.allclose(srgb_to_linear(torch.ones(3, 2, 2)), torch.ones(3, 2, 2))


def test_round_trips():
    x = rand(4, 3, 16, 16, lo=-0.2, hi=1.2)
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x)), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(srgb_to_linear(linear_to_srgb(x)), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(xyz_to_linear_rgb(linear_rgb_to_xyz(x)), x, rtol=0, atol=1e-12)
    x32 = x.float()
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x32)), x32, rtol=0, atol=1e-6)


def test_inference_path_is_bit_identical():
    x = rand(2, 3, 31, 17, lo=-0.1, hi=1.1)
    assert torch.equal(srgb_to_linear(x), srgb_to_linear(x.clone().requires_grad_()).detach())
    with torch.no_grad():
        assert torch.equal(srgb_to_linear(x), srgb_to_linear(x.clone().requires_grad_()))


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_gradcheck(fn):
    x = rand(2, 3, 3, 4, lo=0.01, hi=1.0).requires_grad_()
    assert gradcheck(fn, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("fn", [srgb_to_linear, linear_to_srgb])
def test_finite_gradient_at_black_break_and_negative(fn):
    x = torch.tensor([[0.0, 0.04045, 0.0031308], [-0.5, -1e-9, 1.0]], dtype=torch.float64, requires_grad=True)
    fn(x, dim=-1).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(("fn", "module"), list(zip(FUNCTIONS, MODULES, strict=True)))
def test_module_equals_function(fn, module):
    x = rand(5, 3)
    assert torch.equal(module(dim=-1)(x), fn(x, dim=-1))
    x = rand(2, 3, 4, 4)
    assert torch.equal(module()(x), fn(x))


@pytest.mark.gpu
@pytest.mark.parametrize("fn", FUNCTIONS)
def test_cuda_matches_cpu(fn):
    x = rand(2, 3, 8, 8, lo=-0.1, hi=1.1)
    torch.testing.assert_close(fn(x.cuda()).cpu(), fn(x), rtol=0, atol=1e-12)
