"""Tests of tinct.color.log (log encoding and FFCC log-chroma)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from tinct.color.log import (
    LOG_EPS,
    LinearToLog,
    LogChromaToRgb,
    LogToLinear,
    RgbToLogChroma,
    linear_to_log,
    log_chroma_to_rgb,
    log_to_linear,
    rgb_to_log_chroma,
)
from tinct.core.exceptions import ShapeError, TypeCheckError


def rand(*shape: int, dtype: torch.dtype = torch.float64, lo: float = 0.0, hi: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype) * (hi - lo) + lo


def test_log_eps_below_12_bit_step():
    assert 0 < LOG_EPS < 1 / 4095


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_to_log_values_and_dtype(dtype):
    x = rand(2, 3, 4, 4, dtype=dtype)
    y = linear_to_log(x)
    assert y.dtype == dtype and y.shape == x.shape
    torch.testing.assert_close(y, torch.log(x + LOG_EPS))
    assert linear_to_log(torch.tensor([0.0, -1.0]), eps=1e-3).tolist() == pytest.approx([math.log(1e-3)] * 2)


def test_log_round_trip():
    x = torch.cat([rand(1000), torch.tensor([0.0, 1e-9, 1.0], dtype=torch.float64)])
    torch.testing.assert_close(log_to_linear(linear_to_log(x)), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(log_to_linear(linear_to_log(x, eps=1e-2), eps=1e-2), x, rtol=0, atol=1e-12)
    x32 = x.float()
    torch.testing.assert_close(log_to_linear(linear_to_log(x32)), x32, rtol=0, atol=1e-6)


def test_log_exceptions():
    with pytest.raises(TypeCheckError):
        linear_to_log(torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeCheckError):
        log_to_linear(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="eps"):
        linear_to_log(torch.ones(3), eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        log_to_linear(torch.ones(3), eps=-1.0)


def test_log_gradients():
    x = rand(2, 3, 3, lo=0.01).requires_grad_()
    assert gradcheck(linear_to_log, (x,), eps=1e-6, atol=1e-5)
    assert gradcheck(log_to_linear, (x,), eps=1e-6, atol=1e-5)
    black = torch.tensor([0.0, -0.5, 1.0], dtype=torch.float64, requires_grad=True)
    linear_to_log(black).sum().backward()
    assert torch.isfinite(black.grad).all()
    assert black.grad[1] == 0


@pytest.mark.parametrize(
    ("shape", "dim", "out"),
    [((3, 4, 5), -3, (2, 4, 5)), ((2, 3, 4, 5), -3, (2, 2, 4, 5)), ((7, 3), -1, (7, 2)), ((3,), -1, (2,))],
)
def test_log_chroma_cardinality(shape, dim, out):
    uv = rgb_to_log_chroma(rand(*shape), dim=dim)
    assert uv.shape == out
    assert log_chroma_to_rgb(uv, dim=dim).shape == shape


def test_log_chroma_values():
    # FFCC (Barron & Tsai 2017): u = log(g / r), v = log(g / b).
    rgb = torch.tensor([[0.2, 0.4, 0.8]], dtype=torch.float64)
    uv = rgb_to_log_chroma(rgb, dim=-1, eps=1e-300)
    torch.testing.assert_close(uv, torch.tensor([[math.log(2.0), math.log(0.5)]], dtype=torch.float64))
    back = log_chroma_to_rgb(uv, dim=-1)
    torch.testing.assert_close(back, rgb / rgb.norm(dim=-1, keepdim=True))


def test_log_chroma_round_trip_and_intensity_invariance():
    rgb = rand(500, 3, lo=0.05)
    uv = rgb_to_log_chroma(rgb, dim=-1, eps=1e-300)
    torch.testing.assert_close(rgb_to_log_chroma(rgb * 7.5, dim=-1, eps=1e-300), uv)
    back = log_chroma_to_rgb(uv, dim=-1)
    torch.testing.assert_close(back.norm(dim=-1), torch.ones(500, dtype=torch.float64))
    torch.testing.assert_close(back, rgb / rgb.norm(dim=-1, keepdim=True))


def test_log_chroma_to_rgb_is_stable_for_large_coordinates():
    uv = torch.tensor([[-200.0, 3.0], [500.0, 500.0], [0.0, -120.0]])
    rgb = log_chroma_to_rgb(uv, dim=-1)
    assert torch.isfinite(rgb).all()
    torch.testing.assert_close(rgb.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(rgb[1], torch.tensor([0.0, 1.0, 0.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_chroma_dtype(dtype):
    uv = rgb_to_log_chroma(rand(3, 4, 4, dtype=dtype))
    assert uv.dtype == dtype and log_chroma_to_rgb(uv).dtype == dtype


def test_log_chroma_exceptions():
    with pytest.raises(ShapeError, match="3 channels"):
        rgb_to_log_chroma(rand(2, 4, 4))
    with pytest.raises(ShapeError, match="2 channels"):
        log_chroma_to_rgb(rand(3, 4, 4))
    with pytest.raises(TypeCheckError):
        rgb_to_log_chroma(torch.ones(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="eps"):
        rgb_to_log_chroma(rand(3, 2, 2), eps=0.0)


def test_log_chroma_gradients():
    rgb = rand(2, 3, 2, 2, lo=0.05).requires_grad_()
    assert gradcheck(rgb_to_log_chroma, (rgb,), eps=1e-6, atol=1e-5)
    uv = rand(2, 2, 2, 2, lo=-3, hi=3).requires_grad_()
    assert gradcheck(log_chroma_to_rgb, (uv,), eps=1e-6, atol=1e-5)
    black = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    rgb_to_log_chroma(black, dim=-1).sum().backward()
    assert torch.isfinite(black.grad).all()


def test_modules_equal_functions():
    x = rand(2, 3, 4, 4)
    assert torch.equal(LinearToLog(eps=1e-3)(x), linear_to_log(x, eps=1e-3))
    assert torch.equal(LogToLinear(eps=1e-3)(x), log_to_linear(x, eps=1e-3))
    assert torch.equal(RgbToLogChroma()(x), rgb_to_log_chroma(x))
    uv = rgb_to_log_chroma(x)
    assert torch.equal(LogChromaToRgb()(uv), log_chroma_to_rgb(uv))
    assert torch.equal(
        RgbToLogChroma(dim=-1, eps=1e-2)(x.movedim(1, -1)), rgb_to_log_chroma(x.movedim(1, -1), -1, 1e-2)
    )
    np.testing.assert_array_equal(LogChromaToRgb(dim=1)(uv).numpy(), log_chroma_to_rgb(uv, dim=1).numpy())
