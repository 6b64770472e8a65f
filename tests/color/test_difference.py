"""Tests of tinct.color.difference (CIE 1976, CIE 1994, CIEDE2000 colour differences and the loss)."""

from __future__ import annotations

import csv
import doctest
import math
from pathlib import Path

import colour
import numpy as np
import pytest
import torch
from skimage import color as skcolor

import tinct.color.difference.ciede2000 as difference
from tinct.color.difference import (
    DELTA_E_METHODS,
    DeltaE,
    DeltaELoss,
    delta_e,
    delta_e_cie76,
    delta_e_cie94,
    delta_e_ciede2000,
)
from tinct.color.difference.ciede2000 import _ciede2000_intermediates
from tinct.core.exceptions import ShapeError, TypeCheckError, UnknownNameError

METHODS = ("cie76", "cie94", "ciede2000")
COLOUR_NAMES = {"cie76": "CIE 1976", "cie94": "CIE 1994", "ciede2000": "CIE 2000"}
FUNCTIONS = {"cie76": delta_e_cie76, "cie94": delta_e_cie94, "ciede2000": delta_e_ciede2000}
SYMMETRIC = ("cie76", "ciede2000")


def _load_sharma() -> dict[str, np.ndarray]:
    """Sharma, Wu & Dalal (2005) Table 1, as copied into tests/color/data (provenance in the file header)."""
    path = Path(__file__).parent / "data" / "sharma2005_ciede2000.csv"
    with path.open() as f:
        rows = list(csv.reader(line for line in f if not line.startswith("#")))
    header, values = rows[0], np.array(rows[1:], dtype=np.float64)
    return {name: values[:, i] for i, name in enumerate(header)}


SHARMA = _load_sharma()


def _sharma_lab(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    lab1 = np.stack([SHARMA["L1"], SHARMA["a1"], SHARMA["b1"]], axis=-1)
    lab2 = np.stack([SHARMA["L2"], SHARMA["a2"], SHARMA["b2"]], axis=-1)
    return torch.tensor(lab1, dtype=dtype), torch.tensor(lab2, dtype=dtype)


def _random_lab(n: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(n, generator=g, dtype=torch.float64) * 100
    ab = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * 128
    return torch.cat([L[:, None], ab], dim=-1).to(dtype)


def _singular_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs at every singular point of the formulas (float64, colour lists)."""
    pairs = [
        ([50.0, 20.0, -30.0], [50.0, 20.0, -30.0]),  # identical
        ([50.0, 0.0, 0.0], [50.0, 0.0, 0.0]),  # identical achromatic
        ([40.0, 0.0, 0.0], [60.0, 0.0, 0.0]),  # both achromatic (a = b = 0), different L
        ([40.0, 0.0, 0.0], [60.0, 10.0, -5.0]),  # first achromatic only (C1' = 0)
        ([40.0, 10.0, -5.0], [60.0, 0.0, 0.0]),  # second achromatic only (C2' = 0)
        ([50.0, 0.0, 0.0], [50.0, 10.0, -5.0]),  # one achromatic, same L
        ([50.0, -0.001, 2.49], [50.0, 0.001, -2.49]),  # Sharma pair 14: exactly 180 degrees apart
        ([50.0, 3.0, 4.0], [50.0, -3.0, -4.0]),  # exactly opposite
        ([50.0, 3.0, 4.0], [70.0, -6.0, -8.0]),  # exactly opposite, different chroma and L
        ([50.0, 5.0, 0.0], [50.0, -5.0, 0.0]),  # opposite on the a axis (h' = 0 and 180)
        ([50.0, 5.0, 0.0], [50.0, 7.0, 0.0]),  # same hue, b = 0
        ([50.0, 0.0, 5.0], [50.0, 0.0, -5.0]),  # opposite on the b axis (a' = 0)
    ]
    lab1 = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    lab2 = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    return lab1, lab2


# ----------------------------------------------------------------------------------------------- smoke


@pytest.mark.parametrize("method", METHODS)
def test_smoke(method: str) -> None:
    lab1, lab2 = _random_lab(8, 0).reshape(2, 4, 3), _random_lab(8, 1).reshape(2, 4, 3)
    out = delta_e(lab1, lab2, method, dim=-1)
    assert out.shape == (2, 4)
    assert out.dtype == torch.float64
    assert torch.isfinite(out).all() and (out > 0).all()


# ----------------------------------------------------------------------------------------- cardinality


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("shape", "dim", "expected"),
    [
        ((2, 3, 4, 5), -3, (2, 4, 5)),
        ((3, 4, 5), -3, (4, 5)),
        ((2, 7, 3, 4, 5), -3, (2, 7, 4, 5)),
        ((6, 3), -1, (6,)),
        ((2, 6, 3), -1, (2, 6)),
        ((3,), -1, ()),
        ((0, 3), -1, (0,)),
        ((3, 4), 0, (4,)),
    ],
)
def test_cardinality(method: str, shape: tuple[int, ...], dim: int, expected: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    lab1 = torch.rand(shape, generator=g) * 50
    lab2 = torch.rand(shape, generator=g) * 50
    out = delta_e(lab1, lab2, method, dim=dim)
    assert out.shape == expected
    assert out.dtype == torch.float32


@pytest.mark.parametrize("method", METHODS)
def test_image_equals_colour_list(method: str) -> None:
    lab1, lab2 = _random_lab(2 * 4 * 5, 2), _random_lab(2 * 4 * 5, 3)
    image1 = lab1.reshape(2, 4, 5, 3).permute(0, 3, 1, 2)
    image2 = lab2.reshape(2, 4, 5, 3).permute(0, 3, 1, 2)
    expected = delta_e(lab1, lab2, method, dim=-1).reshape(2, 4, 5)
    torch.testing.assert_close(delta_e(image1, image2, method), expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------ exceptions


@pytest.mark.parametrize("method", METHODS)
def test_wrong_channel_count(method: str) -> None:
    with pytest.raises(ShapeError, match="3 channels"):
        delta_e(torch.zeros(2, 4, 5, 5), torch.zeros(2, 4, 5, 5), method)
    with pytest.raises(ShapeError):
        delta_e(torch.zeros(4), torch.zeros(4), method, dim=-1)
    with pytest.raises(ShapeError):
        delta_e(torch.zeros(2, 3), torch.zeros(2, 3), method)  # dim=-3 on a 2-d tensor


@pytest.mark.parametrize("method", METHODS)
def test_mismatched_shapes(method: str) -> None:
    with pytest.raises(ShapeError, match="same shape"):
        delta_e(torch.zeros(2, 3), torch.zeros(3, 3), method, dim=-1)
    with pytest.raises(ShapeError, match="same shape"):
        delta_e(torch.zeros(1, 3, 4, 4), torch.zeros(2, 3, 4, 4), method)


@pytest.mark.parametrize("method", METHODS)
def test_integer_dtype(method: str) -> None:
    with pytest.raises(TypeCheckError, match="floating"):
        delta_e(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3), method, dim=-1)
    with pytest.raises(TypeCheckError, match="floating"):
        delta_e(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.uint8), method, dim=-1)


def test_unknown_method_lists_choices() -> None:
    with pytest.raises(UnknownNameError, match=r"'cie76'.*'ciede2000'.*'CIE 2000'"):
        delta_e(torch.zeros(2, 3), torch.zeros(2, 3), "cmc", dim=-1)
    with pytest.raises(UnknownNameError, match="'ciede2000'"):
        DeltaE("CIEDE2000")
    with pytest.raises(UnknownNameError, match="'ciede2000'"):
        DeltaELoss("de2000")


def test_unknown_application_and_reduction() -> None:
    with pytest.raises(UnknownNameError, match="'graphic_arts', 'textiles'"):
        delta_e_cie94(torch.zeros(2, 3), torch.zeros(2, 3), dim=-1, application="paint")
    with pytest.raises(UnknownNameError, match="'mean', 'sum', 'none'"):
        DeltaELoss(reduction="max")


@pytest.mark.parametrize(("method", "kwargs"), [("ciede2000", {"kL": 0.0}), ("cie94", {"kH": -1.0})])
def test_non_positive_factor(method: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        delta_e(torch.zeros(2, 3), torch.zeros(2, 3), method, dim=-1, **kwargs)


def test_unknown_keyword() -> None:
    with pytest.raises(TypeError):
        delta_e(torch.zeros(2, 3), torch.zeros(2, 3), "cie76", dim=-1, kL=2.0)


# ---------------------------------------------------------------------- Sharma, Wu & Dalal (2005) data


def test_sharma_pairs_float64() -> None:
    """The 34 published pairs (Sharma et al. 2005, Table 1) to 1e-4 (the table has 4 decimals)."""
    lab1, lab2 = _sharma_lab()
    expected = torch.tensor(SHARMA["dE00"], dtype=torch.float64)
    torch.testing.assert_close(delta_e_ciede2000(lab1, lab2, dim=-1), expected, rtol=0, atol=1e-4)
    # The difference is symmetric, also on the pairs built to probe the hue branches.
    torch.testing.assert_close(delta_e_ciede2000(lab2, lab1, dim=-1), expected, rtol=0, atol=1e-4)


def test_sharma_pairs_float32() -> None:
    lab1, lab2 = _sharma_lab(torch.float32)
    expected = torch.tensor(SHARMA["dE00"], dtype=torch.float32)
    torch.testing.assert_close(delta_e_ciede2000(lab1, lab2, dim=-1), expected, rtol=0, atol=2e-4)


def test_sharma_intermediates() -> None:
    """a', C', h', h_bar', G, T, S_L, S_C, S_H, R_T of every pair against the published table.

    The printed hue angles of pairs 21, 23 and 24 differ from a recomputation from the printed a', b by up
    to 1.1e-3 degrees (transcription or rounding in the source), hence the looser tolerance on angles.
    """
    lab1, lab2 = _sharma_lab()
    got = _ciede2000_intermediates(lab1, lab2, dim=-1)
    for name in ("ap1", "Cp1", "ap2", "Cp2", "G", "T", "SL", "SC", "SH", "RT", "dE00"):
        expected = torch.tensor(SHARMA[name], dtype=torch.float64)
        torch.testing.assert_close(got[name], expected, rtol=0, atol=1e-4, msg=name)
    for name in ("hp1", "hp2", "hbar"):
        expected = torch.tensor(SHARMA[name], dtype=torch.float64)
        torch.testing.assert_close(got[name], expected, rtol=0, atol=2e-3, msg=name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("swap", [False, True])
def test_sharma_pair_14_exactly_opposite_hues(dtype: torch.dtype, swap: bool) -> None:
    """Pair 14: h1' = 90.0345, h2' = 270.0345, exactly 180 degrees apart.

    Sharma's rule takes the |h1' - h2'| <= 180 branch, so h_bar' = 180.0345 and T = 0.9779 (table); the
    other branch would give h_bar' = 0.0345 and T = 1.3197 (pair 15's values).
    """
    row = 13
    assert SHARMA["pair"][row] == 14
    lab1, lab2 = _sharma_lab(dtype)
    lab1, lab2 = lab1[row : row + 1], lab2[row : row + 1]
    if swap:
        lab1, lab2 = lab2, lab1
    got = _ciede2000_intermediates(lab1, lab2, dim=-1)
    assert got["hbar"].item() == pytest.approx(180.0345, abs=1e-4)
    assert got["T"].item() == pytest.approx(0.9779, abs=1e-4)
    assert got["RT"].item() == pytest.approx(0.0, abs=1e-4)
    assert delta_e_ciede2000(lab1, lab2, dim=-1).item() == pytest.approx(4.8045, abs=1e-4)


def test_exactly_opposite_hues_follow_sharma_rule() -> None:
    """Random exactly opposite (a', b) vectors: h_bar' = (h1' + h2') / 2, the mean of the hues in [0, 360)."""
    lab = _random_lab(500, 4)
    lab1 = lab
    lab2 = torch.stack([lab[:, 0], -lab[:, 1], -lab[:, 2]], dim=-1)
    got = _ciede2000_intermediates(lab1, lab2, dim=-1)
    assert (got["hp2"] - got["hp1"]).abs().sub(180).abs().max() < 1e-9
    torch.testing.assert_close(got["hbar"], (got["hp1"] + got["hp2"]) / 2, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------- colour-science 0.4.7


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_colour_science_random(method: str, dtype: torch.dtype) -> None:
    """Agreement with colour-science 0.4.7 ``delta_E`` on random Lab pairs (the float32 inputs, in float64)."""
    lab1, lab2 = _random_lab(4000, 5, dtype), _random_lab(4000, 6, dtype)
    expected = colour.delta_E(lab1.double().numpy(), lab2.double().numpy(), method=COLOUR_NAMES[method])
    got = delta_e(lab1, lab2, method, dim=-1)
    assert got.dtype == dtype
    atol = 1e-6 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=0, atol=atol)


@pytest.mark.parametrize("method", ["cie94", "ciede2000"])
def test_colour_science_textiles(method: str) -> None:
    lab1, lab2 = _random_lab(1000, 7), _random_lab(1000, 8)
    expected = colour.delta_E(lab1.numpy(), lab2.numpy(), method=COLOUR_NAMES[method], textiles=True)
    kwargs = {"application": "textiles"} if method == "cie94" else {"kL": 2.0}
    np.testing.assert_allclose(delta_e(lab1, lab2, method, dim=-1, **kwargs).numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_colour_science_singular_points(method: str) -> None:
    """Identical, achromatic and exactly opposite-hue pairs (colour-science applies Sharma's conventions;
    on these pairs its hue angles happen to round onto the same side of 180 degrees as Sharma's rule)."""
    lab1, lab2 = _singular_pairs()
    expected = colour.delta_E(lab1.numpy(), lab2.numpy(), method=COLOUR_NAMES[method])
    got = delta_e(lab1, lab2, method, dim=-1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)
    if method == "ciede2000":
        expected = skcolor.deltaE_ciede2000(lab1.numpy(), lab2.numpy())
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)


def test_colour_science_near_opposite_and_near_achromatic() -> None:
    """Hues 180 +- 1e-6 degrees apart and chromas of 1e-6: the ill-conditioned neighbourhoods."""
    g = torch.Generator().manual_seed(9)
    n = 200
    hue = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    offset = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * math.radians(1e-6) + math.pi
    chroma = torch.rand(n, 2, generator=g, dtype=torch.float64) * 60 + 1
    chroma[: n // 4] *= 1e-6
    L = torch.rand(n, 2, generator=g, dtype=torch.float64) * 100
    lab1 = torch.stack([L[:, 0], chroma[:, 0] * hue.cos(), chroma[:, 0] * hue.sin()], dim=-1)
    hue2 = hue + offset
    lab2 = torch.stack([L[:, 1], chroma[:, 1] * hue2.cos(), chroma[:, 1] * hue2.sin()], dim=-1)
    expected = colour.delta_E(lab1.numpy(), lab2.numpy(), method="CIE 2000")
    np.testing.assert_allclose(delta_e_ciede2000(lab1, lab2, dim=-1).numpy(), expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------ scikit-image


@pytest.mark.parametrize("k", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.3, 0.7, 1.9)])
def test_skimage_ciede2000(k: tuple[float, float, float]) -> None:
    lab1, lab2 = _random_lab(4000, 10), _random_lab(4000, 11)
    kL, kC, kH = k
    expected = skcolor.deltaE_ciede2000(lab1.numpy(), lab2.numpy(), kL=kL, kC=kC, kH=kH)
    got = delta_e_ciede2000(lab1, lab2, dim=-1, kL=kL, kC=kC, kH=kH)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


def test_skimage_cie76_and_cie94() -> None:
    lab1, lab2 = _random_lab(4000, 12), _random_lab(4000, 13)
    np.testing.assert_allclose(
        delta_e_cie76(lab1, lab2, dim=-1).numpy(), skcolor.deltaE_cie76(lab1.numpy(), lab2.numpy()), atol=1e-9
    )
    expected = skcolor.deltaE_ciede94(lab1.numpy(), lab2.numpy(), kL=2, k1=0.048, k2=0.014)
    got = delta_e_cie94(lab1, lab2, dim=-1, application="textiles")
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


def test_cie94_explicit_factors_override_application() -> None:
    lab1, lab2 = _random_lab(100, 14), _random_lab(100, 15)
    expected = skcolor.deltaE_ciede94(lab1.numpy(), lab2.numpy(), kH=1.5, kC=0.5, kL=3, k1=0.05, k2=0.02)
    got = delta_e_cie94(lab1, lab2, dim=-1, application="textiles", kL=3.0, kC=0.5, kH=1.5, K1=0.05, K2=0.02)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------- properties


@pytest.mark.parametrize("method", SYMMETRIC)
def test_symmetry(method: str) -> None:
    lab1, lab2 = _random_lab(2000, 16), _random_lab(2000, 17)
    singular1, singular2 = _singular_pairs()
    lab1, lab2 = torch.cat([lab1, singular1]), torch.cat([lab2, singular2])
    torch.testing.assert_close(delta_e(lab1, lab2, method, dim=-1), delta_e(lab2, lab1, method, dim=-1))


def test_cie94_is_asymmetric() -> None:
    """CIE 1994 weights by the reference (first) colour's chroma, as in the standard and colour-science."""
    lab1 = torch.tensor([[50.0, 60.0, 0.0]], dtype=torch.float64)
    lab2 = torch.tensor([[50.0, 10.0, 0.0]], dtype=torch.float64)
    forward, backward = delta_e_cie94(lab1, lab2, dim=-1), delta_e_cie94(lab2, lab1, dim=-1)
    assert forward.item() == pytest.approx(50 / (1 + 0.045 * 60))
    assert backward.item() == pytest.approx(50 / (1 + 0.045 * 10))


@pytest.mark.parametrize("method", METHODS)
def test_zero_at_identical_and_non_negative(method: str) -> None:
    lab = torch.cat([_random_lab(500, 18), _singular_pairs()[0]])
    assert (delta_e(lab, lab, method, dim=-1) == 0).all()
    other = torch.cat([_random_lab(500, 19), _singular_pairs()[1]])
    assert (delta_e(lab, other, method, dim=-1) >= 0).all()


def test_methods_mapping_and_aliases() -> None:
    assert set(DELTA_E_METHODS) == {"cie76", "cie94", "ciede2000", "CIE 1976", "CIE 1994", "CIE 2000"}
    lab1, lab2 = _random_lab(50, 20), _random_lab(50, 21)
    for method, alias in COLOUR_NAMES.items():
        torch.testing.assert_close(delta_e(lab1, lab2, alias, dim=-1), FUNCTIONS[method](lab1, lab2, dim=-1))
    torch.testing.assert_close(delta_e(lab1, lab2, dim=-1), delta_e_ciede2000(lab1, lab2, dim=-1))


# ------------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck(method: str) -> None:
    lab1 = _random_lab(6, 22).reshape(1, 2, 3, 3).permute(0, 3, 1, 2).contiguous().requires_grad_()
    lab2 = _random_lab(6, 23).reshape(1, 2, 3, 3).permute(0, 3, 1, 2).contiguous().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: delta_e(x, y, method), (lab1, lab2))


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_near_neutral_and_close_pairs(method: str) -> None:
    """Generic points in the regions a loss ends up in: small chroma, small differences, wide hue gaps."""
    lab1 = torch.tensor(
        [[50.0, 0.3, -0.2], [30.0, 20.0, 10.0], [60.0, 10.0, 40.0]], dtype=torch.float64, requires_grad=True
    )
    lab2 = torch.tensor(
        [[50.5, -0.1, 0.4], [30.1, 20.2, 10.1], [55.0, -12.0, -35.0]], dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(lambda x, y: delta_e(x, y, method, dim=-1), (lab1, lab2))


@pytest.mark.parametrize("method", METHODS)
def test_finite_gradients_at_singular_points(method: str) -> None:
    lab1, lab2 = _singular_pairs()
    lab1.requires_grad_()
    lab2.requires_grad_()
    delta_e(lab1, lab2, method, dim=-1).sum().backward()
    assert lab1.grad is not None and lab2.grad is not None
    assert torch.isfinite(lab1.grad).all(), lab1.grad
    assert torch.isfinite(lab2.grad).all(), lab2.grad
    # Zero is the sub-gradient at identical colours (rows 0 and 1).
    assert (lab1.grad[:2] == 0).all() and (lab2.grad[:2] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_loss_backward_on_batch(method: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(24)
    target = (
        torch.rand(2, 3, 8, 8, generator=g, dtype=dtype)
        * torch.tensor([100, 60, 60], dtype=dtype)[:, None, None]
        - torch.tensor([0, 30, 30], dtype=dtype)[:, None, None]
    )
    target[:, 1:, :2] = 0  # achromatic pixels
    prediction = target.clone()
    prediction[:, :, 4:] += torch.randn(2, 3, 4, 8, generator=g, dtype=dtype)  # half the pixels identical
    prediction[:, 1:, 2:4] = -target[:, 1:, 2:4]  # exactly opposite hues
    prediction.requires_grad_()
    loss = DeltaELoss(method)(prediction, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0


# -------------------------------------------------------------------------------- chunked CPU path


@pytest.mark.parametrize("method", ["cie94", "ciede2000"])
@pytest.mark.parametrize(
    ("shape", "dim"),
    [((1000, 3), -1), ((2, 3, 10, 17), -3), ((3, 340), 0), ((40, 3, 5), -2), ((2, 3, 1000), 1)],
)
def test_chunked_path_is_bit_identical(
    monkeypatch: pytest.MonkeyPatch, method: str, shape: tuple[int, ...], dim: int
) -> None:
    g = torch.Generator().manual_seed(25)
    lab1 = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * 100
    lab2 = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * 100
    with torch.enable_grad():
        whole = delta_e(lab1.requires_grad_(), lab2, method, dim=dim).detach()  # autograd: never chunked
    monkeypatch.setattr(difference, "_CHUNK_BYTES", 97 * 8)  # 97 float64 pixels per chunk
    with torch.no_grad():
        chunked = delta_e(lab1, lab2, method, dim=dim)
    assert chunked.shape == whole.shape
    assert torch.equal(chunked, whole)


@pytest.mark.parametrize("method", METHODS)
def test_mixed_dtypes_promote(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    monkeypatch.setattr(difference, "_CHUNK_BYTES", 64 * 8)
    lab1, lab2 = _random_lab(300, 30, torch.float32), _random_lab(300, 31)
    got = delta_e(lab1, lab2, method, dim=-1)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, delta_e(lab1.double(), lab2, method, dim=-1), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- modules


@pytest.mark.parametrize("method", METHODS)
def test_module_equals_function(method: str) -> None:
    lab1, lab2 = _random_lab(24, 26).reshape(2, 3, 4, 3), _random_lab(24, 27).reshape(2, 3, 4, 3)
    lab1, lab2 = lab1.permute(0, 3, 1, 2), lab2.permute(0, 3, 1, 2)
    kwargs = {"kL": 2.0} if method != "cie76" else {}
    expected = delta_e(lab1, lab2, method, **kwargs)
    torch.testing.assert_close(DeltaE(method, **kwargs)(lab1, lab2), expected)
    # The loss passes the target as the reference colour (lab1), which matters for CIE 1994 only.
    loss = DeltaELoss(method, reduction="none", **kwargs)
    torch.testing.assert_close(loss(lab2, lab1), expected)
    torch.testing.assert_close(DeltaELoss(method, reduction="mean", **kwargs)(lab2, lab1), expected.mean())
    torch.testing.assert_close(DeltaELoss(method, reduction="sum", **kwargs)(lab2, lab1), expected.sum())
    assert method in repr(DeltaELoss(method, **kwargs))


def test_module_dim() -> None:
    lab1, lab2 = _random_lab(5, 28), _random_lab(5, 29)
    torch.testing.assert_close(DeltaE("CIE 2000", dim=-1)(lab1, lab2), delta_e_ciede2000(lab1, lab2, dim=-1))


def test_docstring_examples() -> None:
    result = doctest.testmod(
        difference, extraglobs={"torch": torch}, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0
