"""Tests of tinct.color.lab against colour-science 0.4.7 and scikit-image 0.26."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import skimage.color
import torch
from torch.autograd import gradcheck

from tinct.color.lab import (
    CIE_EPSILON,
    CIE_KAPPA,
    WHITEPOINTS,
    LabToLch,
    LabToRgb,
    LabToXyz,
    LchToLab,
    RgbToLab,
    XyzToLab,
    lab_to_lch,
    lab_to_rgb,
    lab_to_xyz,
    lch_to_lab,
    rgb_to_lab,
    whitepoint_xyz,
    xyz_to_lab,
)
from tinct.core.exceptions import ShapeError, TypeCheckError, UnknownNameError

FUNCTIONS = [xyz_to_lab, lab_to_xyz, lab_to_lch, lch_to_lab, rgb_to_lab, lab_to_rgb]
MODULES = [XyzToLab, LabToXyz, LabToLch, LchToLab, RgbToLab, LabToRgb]
CCS = colour.colorimetry.CCS_ILLUMINANTS
OBSERVERS = {"": "CIE 1931 2 Degree Standard Observer", "_10": "CIE 1964 10 Degree Standard Observer"}


def rand(*shape: int, dtype: torch.dtype = torch.float64, lo: float = 0.0, hi: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype) * (hi - lo) + lo


def rand_lab(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lab = torch.rand(n, 3, generator=g, dtype=torch.float64)
    return lab * torch.tensor([100.0, 200.0, 200.0], dtype=torch.float64) - torch.tensor([0.0, 100.0, 100.0])


def xyz_samples(n: int = 10000) -> torch.Tensor:
    # Half the samples dark enough (Y/Yn < epsilon = 0.00886) to exercise the linear branch.
    return torch.cat([rand(n // 2, 3), rand(n // 2, 3, hi=0.02, seed=1)])


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("shape", "dim"),
    [((3, 4, 5), -3), ((2, 3, 4, 5), -3), ((7, 3), -1), ((3,), -1), ((2, 3, 4, 5), 1), ((0, 3), -1)],
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
    with pytest.raises(TypeCheckError, match="floating"):
        fn(torch.zeros(3, 2, 2, dtype=torch.int32))


def test_unknown_white_lists_choices():
    with pytest.raises(UnknownNameError, match=r"'D65'.*'D65_10'"):
        xyz_to_lab(rand(3, 2, 2), white="D66")
    with pytest.raises(ShapeError):
        xyz_to_lab(rand(3, 2, 2), white=torch.ones(4))
    with pytest.raises(ShapeError):
        lab_to_xyz(rand(3, 2, 2), white=(0.3, 0.3, 0.3, 0.3))


def test_whitepoints_match_colour():
    assert {"A", "C", "D50", "D55", "D65", "D75", "E", "D65_10", "D50_10"} <= set(WHITEPOINTS)
    for name, xy in WHITEPOINTS.items():
        base, suffix = (name[:-3], "_10") if name.endswith("_10") else (name, "")
        np.testing.assert_allclose(xy, CCS[OBSERVERS[suffix]][base], rtol=0, atol=1e-15)


def test_whitepoint_forms_agree():
    d65 = whitepoint_xyz("D65")
    np.testing.assert_allclose(d65, colour.xy_to_XYZ(WHITEPOINTS["D65"]), atol=1e-15)
    np.testing.assert_allclose(whitepoint_xyz((0.3127, 0.3290)), d65, atol=1e-15)
    np.testing.assert_allclose(
        whitepoint_xyz(torch.tensor([0.3127, 0.3290], dtype=torch.float64)), d65, atol=1e-15
    )
    x = rand(2, 3, 4, 4)
    expected = xyz_to_lab(x)
    assert torch.equal(xyz_to_lab(x, white=torch.tensor(d65, dtype=torch.float64)), expected)
    assert torch.equal(xyz_to_lab(x, white=list(d65)), expected)


def test_constants_exact():
    assert CIE_EPSILON == (6 / 29) ** 3 == 216 / 24389
    assert CIE_KAPPA * CIE_EPSILON == pytest.approx(8.0)


@pytest.mark.parametrize("white", ["D65", "D50", "A", "D65_10", "E"])
def test_xyz_to_lab_matches_colour(white):
    xyz = xyz_samples()
    ref = colour.XYZ_to_Lab(xyz.numpy(), np.array(WHITEPOINTS[white]))
    np.testing.assert_allclose(xyz_to_lab(xyz, white=white, dim=-1).numpy(), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("white", ["D65", "D50", "C_10"])
def test_lab_to_xyz_matches_colour(white):
    lab = rand_lab(10000)
    ref = colour.Lab_to_XYZ(lab.numpy(), np.array(WHITEPOINTS[white]))
    np.testing.assert_allclose(lab_to_xyz(lab, white=white, dim=-1).numpy(), ref, rtol=0, atol=1e-6)


def test_lch_matches_colour():
    lab = torch.cat([rand_lab(10000), torch.tensor([[50.0, 0.0, 0.0], [50.0, -1.0, -0.0], [0.0, 0.0, 5.0]])])
    lch = lab_to_lch(lab, dim=-1)
    np.testing.assert_allclose(lch.numpy(), colour.Lab_to_LCHab(lab.numpy()), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        lch_to_lab(lch, dim=-1).numpy(), colour.LCHab_to_Lab(lch.numpy()), rtol=0, atol=1e-6
    )


def test_hue_range():
    lab = torch.tensor([[50.0, 1.0, -1e-300], [50.0, -1.0, -1e-12], [50.0, 0.0, 0.0], [50.0, 1.0, 0.0]])
    h = lab_to_lch(lab.double(), dim=-1)[:, 2]
    assert ((h >= 0) & (h < 360)).all()
    assert h[2] == 0 and h[3] == 0


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float64, 1e-6), (torch.float32, 1e-4)])
def test_rgb_to_lab_matches_colour(dtype, atol):
    rgb = rand(2, 3, 64, 64, dtype=dtype)
    ours = rgb_to_lab(rgb).movedim(1, -1).double().numpy()
    ref = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb.movedim(1, -1).double().numpy()))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=atol)


def test_rgb_to_lab_vs_skimage():
    # scikit-image uses the 6-decimal matrix of the older sRGB drafts (0.412453, ...), the white
    # (0.95047, 1, 1.08883) and the rounded constants 0.008856 / 7.787: CIELAB differs by up to ~0.025.
    rgb = rand(64, 64, 3)
    np.testing.assert_allclose(
        rgb_to_lab(rgb, dim=-1).numpy(), skimage.color.rgb2lab(rgb.numpy()), rtol=0, atol=0.03
    )
    # With scikit-image's own XYZ and white, only the rounded constants remain: agreement to 1e-3.
    xyz = skimage.color.rgb2xyz(rgb.numpy())
    ref = skimage.color.xyz2lab(xyz)
    ours = xyz_to_lab(torch.from_numpy(xyz), white=(0.95047, 1.0, 1.08883), dim=-1)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-3)


def test_reference_colours():
    # colour-science docstring example (CIE 15:2004 style values).
    lab = xyz_to_lab(torch.tensor([0.20654008, 0.12197225, 0.05136952], dtype=torch.float64), dim=-1)
    np.testing.assert_allclose(lab.numpy(), [41.52787529, 52.63858304, 26.92317922], atol=1e-7)
    white = rgb_to_lab(torch.ones(3, dtype=torch.float64), dim=-1)
    np.testing.assert_allclose(white.numpy(), colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.ones(3))), atol=1e-10)
    assert rgb_to_lab(torch.zeros(3), dim=-1).abs().max() == 0


def test_round_trips():
    xyz = xyz_samples(2000)
    torch.testing.assert_close(lab_to_xyz(xyz_to_lab(xyz, dim=-1), dim=-1), xyz, rtol=0, atol=1e-12)
    xyz_d50 = lab_to_xyz(xyz_to_lab(xyz, "D50", dim=-1), "D50", dim=-1)
    torch.testing.assert_close(xyz_d50, xyz, rtol=0, atol=1e-12)
    lab = rand_lab(2000)
    torch.testing.assert_close(lch_to_lab(lab_to_lch(lab, dim=-1), dim=-1), lab, rtol=0, atol=1e-10)
    rgb = rand(2, 3, 16, 16)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, rtol=0, atol=1e-10)
    rgb32 = rgb.float()
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb32)), rgb32, rtol=0, atol=2e-5)


def test_lab_to_rgb_clip():
    out_of_gamut = torch.tensor([[50.0, 120.0, -120.0], [100.0, 0.0, 100.0], [0.0, -50.0, 0.0]])
    rgb = lab_to_rgb(out_of_gamut, dim=-1, clip=True)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert lab_to_rgb(out_of_gamut, dim=-1).max() > 1


@pytest.mark.parametrize(
    ("shape", "dim"),
    [((3, 40, 50), -3), ((2, 3, 17, 19), -3), ((100, 3), -1), ((2, 5, 3), -1), ((3, 2, 7), 0)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_path_is_bit_identical(shape, dim, dtype):
    x = rand(*shape, dtype=dtype, lo=-0.1, hi=1.1)
    xg = x.clone().requires_grad_()
    assert torch.equal(rgb_to_lab(x, dim=dim), rgb_to_lab(xg, dim=dim).detach())
    assert torch.equal(xyz_to_lab(x, dim=dim), xyz_to_lab(xg, dim=dim).detach())
    with torch.no_grad():
        assert torch.equal(rgb_to_lab(xg, dim=dim), rgb_to_lab(x, dim=dim))


def test_inference_path_leaves_input_untouched():
    x = rand(3, 8, 8)
    before = x.clone()
    rgb_to_lab(x)
    xyz_to_lab(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("fn", [xyz_to_lab, lab_to_xyz, lab_to_lch, lch_to_lab, rgb_to_lab, lab_to_rgb])
def test_gradcheck(fn):
    if fn in (lab_to_xyz, lab_to_lch, lch_to_lab, lab_to_rgb):
        x = rand_lab(12).reshape(2, 2, 3, 3).movedim(-1, 1).contiguous() * 0.5 + torch.tensor(
            [25.0, 0, 0]
        ).view(3, 1, 1)
        if fn is lch_to_lab:
            x = lab_to_lch(x)
    else:
        x = rand(2, 3, 2, 3, lo=0.01, hi=1.0)
    assert gradcheck(fn, (x.requires_grad_(),), eps=1e-6, atol=1e-5)


def test_gradcheck_wrt_white():
    x = rand(4, 3, lo=0.05, hi=0.9)
    white = torch.tensor(whitepoint_xyz("D50"), dtype=torch.float64, requires_grad=True)
    assert gradcheck(
        lambda x, w: xyz_to_lab(x, white=w, dim=-1), (x.requires_grad_(), white), eps=1e-6, atol=1e-5
    )


def test_finite_gradients_at_singular_points():
    black = torch.zeros(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    rgb_to_lab(black).sum().backward()
    assert torch.isfinite(black.grad).all()
    xyz = torch.tensor([[0.0, 0.0, 0.0], [CIE_EPSILON] * 3, [-0.1, 0.0, 1.0]], dtype=torch.float64)
    xyz.requires_grad_()
    xyz_to_lab(xyz, dim=-1).sum().backward()
    assert torch.isfinite(xyz.grad).all()
    achromatic = torch.tensor([[50.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    lab_to_lch(achromatic, dim=-1).sum().backward()
    assert torch.isfinite(achromatic.grad).all()
    lab = torch.tensor([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0], [100.0, 0.0, 0.0]], dtype=torch.float64)
    lab.requires_grad_()
    lab_to_rgb(lab, dim=-1).sum().backward()
    assert torch.isfinite(lab.grad).all()


@pytest.mark.parametrize(("fn", "module"), list(zip(FUNCTIONS, MODULES, strict=True)))
def test_module_equals_function(fn, module):
    x = rand(2, 3, 4, 4)
    assert torch.equal(module()(x), fn(x))
    assert torch.equal(module(dim=-1)(x.movedim(1, -1)), fn(x.movedim(1, -1), dim=-1))


def test_module_options():
    x = rand(5, 3)
    assert torch.equal(XyzToLab(white="D50", dim=-1)(x), xyz_to_lab(x, "D50", dim=-1))
    assert torch.equal(LabToXyz(white="A", dim=-1)(x), lab_to_xyz(x, "A", dim=-1))
    lab = rand_lab(5)
    assert torch.equal(LabToRgb(dim=-1, clip=True)(lab), lab_to_rgb(lab, dim=-1, clip=True))


@pytest.mark.gpu
@pytest.mark.parametrize("fn", FUNCTIONS)
def test_cuda_matches_cpu(fn):
    x = rand(2, 3, 8, 8)
    torch.testing.assert_close(fn(x.cuda()).cpu(), fn(x), rtol=0, atol=1e-9)
    x32 = x.float().cuda()
    torch.testing.assert_close(fn(x32).cpu(), fn(x.float()), rtol=0, atol=5e-4)
