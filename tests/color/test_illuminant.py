"""Tests of tinct.color.illuminant (von Kries gains, recovery and reproduction angular errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from tinct.color.illuminant import (
    ILLUMINANT_NORMS,
    AngularError,
    ApplyIlluminant,
    CorrectIlluminant,
    ReproductionError,
    angular_error,
    apply_illuminant,
    correct_illuminant,
    normalize_illuminant,
    reproduction_error,
)
from tinct.core.exceptions import ShapeError, TypeCheckError, UnknownNameError

ERRORS = [angular_error, reproduction_error]


def rand(*shape: int, dtype: torch.dtype = torch.float64, lo: float = 0.0, hi: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype) * (hi - lo) + lo


def acos_angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


# ---------------------------------------------------------------- normalisation, apply, correct


@pytest.mark.parametrize(
    ("norm", "check"),
    [
        ("green", lambda n: n[..., 1]),
        ("l1", lambda n: n.abs().sum(-1)),
        ("l2", lambda n: n.norm(dim=-1)),
        ("max", lambda n: n.amax(-1)),
    ],
)
def test_normalize_illuminant(norm, check):
    L = rand(5, 3, lo=0.1)
    n = normalize_illuminant(L, norm)
    torch.testing.assert_close(check(n), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(n / n[..., :1], L / L[..., :1])
    assert set(ILLUMINANT_NORMS) == {"green", "l1", "l2", "max"}


def test_normalize_illuminant_other_dim_and_dtype():
    L = rand(3, 4, dtype=torch.float32, lo=0.1)
    n = normalize_illuminant(L, "green", dim=0)
    assert n.dtype == torch.float32
    torch.testing.assert_close(n[1], torch.ones(4))


def test_normalize_illuminant_exceptions():
    with pytest.raises(UnknownNameError, match=r"'green'.*'l1'.*'l2'.*'max'"):
        normalize_illuminant(rand(3), "l3")
    with pytest.raises(ShapeError):
        normalize_illuminant(rand(4))
    with pytest.raises(TypeCheckError):
        normalize_illuminant(torch.ones(3, dtype=torch.int64))


def test_normalize_black_illuminant_is_finite():
    L = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    for norm in ILLUMINANT_NORMS:
        out = normalize_illuminant(L, norm)
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(L.grad).all()


def test_apply_illuminant_values_and_broadcast():
    image = rand(2, 3, 4, 5)
    L = torch.tensor([[0.5, 0.25, 0.125], [1.0, 1.0, 2.0]], dtype=torch.float64)
    out = apply_illuminant(image, L)
    torch.testing.assert_close(out[0], image[0] * torch.tensor([2.0, 1.0, 0.5]).double().view(3, 1, 1))
    torch.testing.assert_close(out[1], image[1] * torch.tensor([1.0, 1.0, 2.0]).double().view(3, 1, 1))
    single = apply_illuminant(image, L[0])
    torch.testing.assert_close(single[1], image[1] * torch.tensor([2.0, 1.0, 0.5]).double().view(3, 1, 1))
    colours = rand(2, 7, 3)
    out = apply_illuminant(colours, L[:, None, :], norm="max", dim=-1)
    assert out.shape == (2, 7, 3)


@pytest.mark.parametrize("norm", ILLUMINANT_NORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_correct_undoes_apply(norm, dtype):
    image = rand(4, 3, 8, 8, dtype=dtype)
    L = rand(4, 3, dtype=dtype, lo=0.05)
    out = correct_illuminant(apply_illuminant(image, L, norm=norm), L, norm=norm)
    assert out.dtype == dtype
    torch.testing.assert_close(out, image)


def test_apply_exceptions():
    with pytest.raises(ShapeError, match="broadcast"):
        apply_illuminant(rand(2, 3, 4, 4), rand(5, 3))
    with pytest.raises(ShapeError):
        apply_illuminant(rand(2, 4, 4, 4), rand(2, 3))
    with pytest.raises(ShapeError):
        correct_illuminant(rand(2, 3, 4, 4), rand(2, 4))
    with pytest.raises(UnknownNameError, match="green"):
        correct_illuminant(rand(2, 3, 4, 4), rand(2, 3), norm="sum")


def test_apply_correct_gradcheck():
    image = rand(2, 3, 2, 2).requires_grad_()
    L = rand(2, 3, lo=0.1, seed=1).requires_grad_()
    for norm in ILLUMINANT_NORMS:
        assert gradcheck(lambda i, l, n=norm: apply_illuminant(i, l, norm=n), (image, L))
        assert gradcheck(lambda i, l, n=norm: correct_illuminant(i, l, norm=n), (image, L))


# ---------------------------------------------------------------- angular errors


def test_angular_error_values():
    u = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]])
    v = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [-1.0, -2.0, -3.0]])
    torch.testing.assert_close(angular_error(u, v), torch.tensor([45.0, 0.0, 180.0]))


@pytest.mark.parametrize("fn", ERRORS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_illuminant_has_no_angle(fn, dtype):
    # A zero estimate has no direction: NaN, never a perfect 0 (it used to score 0 against a zero target
    # and, for reproduction error, an arbitrary angle against any target).
    zero, grey = torch.zeros(3, dtype=dtype), torch.ones(3, dtype=dtype)
    target = rand(4, 3, dtype=dtype, lo=0.1)
    pred = target.clone()
    pred[1] = 0.0
    err = fn(pred, target)
    assert torch.isnan(err[1]) and torch.isfinite(err[[0, 2, 3]]).all()
    assert torch.isnan(fn(zero, zero)) and torch.isnan(fn(zero, grey)) and torch.isnan(fn(grey, zero))
    # tiny but non-zero vectors keep their direction
    torch.testing.assert_close(fn(grey * 1e-30, grey), torch.zeros((), dtype=dtype), atol=1e-3, rtol=0)


def test_statistics_of_a_zero_estimate_refuse_and_count():
    from tinct.engine.statistics import error_statistics

    target = rand(5, 3, lo=0.1)
    pred = target * 2.0
    pred[[1, 3]] = 0.0
    with pytest.raises(ValueError, match="2 of 5 errors are NaN"):
        error_statistics(angular_error(pred, target))


def test_angular_error_matches_arccos_and_is_accurate_for_tiny_angles():
    pred, target = rand(1000, 3, lo=0.05), rand(1000, 3, lo=0.05, seed=1)
    np.testing.assert_allclose(
        angular_error(pred, target).numpy(), acos_angle(pred.numpy(), target.numpy()), atol=1e-8
    )
    # 1e-7 rad apart: arccos in float64 would give ~1.5e-8 rad of error, atan2 is exact to rounding.
    delta = 1e-7
    u = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    v = torch.tensor([math.cos(delta), math.sin(delta), 0.0], dtype=torch.float64)
    assert angular_error(u, v).item() == pytest.approx(math.degrees(delta), rel=1e-9)
    u32, v32 = u.float(), torch.tensor([1.0, 1e-4, 0.0])
    assert angular_error(u32, v32).item() == pytest.approx(math.degrees(1e-4), rel=1e-5)


def test_reproduction_error_values():
    # Finlayson & Zakizadeh 2014, eq. 5: the angle between target / pred and the white (1, 1, 1).
    pred, target = rand(1000, 3, lo=0.05), rand(1000, 3, lo=0.05, seed=1)
    w = (target / pred).numpy()
    np.testing.assert_allclose(
        reproduction_error(pred, target).numpy(), acos_angle(w, np.ones_like(w)), atol=1e-8
    )
    same = rand(4, 3, lo=0.1)
    torch.testing.assert_close(reproduction_error(same, same * 3.0), torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("fn", ERRORS)
def test_scale_invariance_property(fn):
    # Property: for 2000 random pairs and random positive scales spanning 12 decades, the error is unchanged.
    g = torch.Generator().manual_seed(3)
    pred = torch.rand(2000, 3, generator=g, dtype=torch.float64) + 0.01
    target = torch.rand(2000, 3, generator=g, dtype=torch.float64) + 0.01
    s = 10 ** (torch.rand(2000, 1, generator=g, dtype=torch.float64) * 12 - 6)
    t = 10 ** (torch.rand(2000, 1, generator=g, dtype=torch.float64) * 12 - 6)
    base = fn(pred, target)
    torch.testing.assert_close(fn(pred * s, target), base, rtol=0, atol=1e-9)
    torch.testing.assert_close(fn(pred, target * t), base, rtol=0, atol=1e-9)
    torch.testing.assert_close(fn(pred * s, target * t), base, rtol=0, atol=1e-9)
    base32 = fn(pred.float(), target.float())
    torch.testing.assert_close(fn((pred * s).float(), (target * t).float()), base32, rtol=0, atol=1e-3)


@pytest.mark.parametrize("fn", ERRORS)
def test_error_shapes_dims_and_dtypes(fn):
    assert fn(rand(3), rand(3, seed=1)).shape == ()
    assert fn(rand(2, 5, 3), rand(2, 5, 3, seed=1)).shape == (2, 5)
    image_err = fn(rand(2, 3, 4, 4), rand(2, 3, 4, 4, seed=1), dim=-3)
    assert image_err.shape == (2, 4, 4)
    for dtype in (torch.float32, torch.float64):
        assert fn(rand(4, 3, dtype=dtype), rand(4, 3, dtype=dtype, seed=1)).dtype == dtype


@pytest.mark.parametrize("fn", ERRORS)
def test_error_exceptions(fn):
    with pytest.raises(ShapeError, match="same shape"):
        fn(rand(4, 3), rand(5, 3))
    with pytest.raises(ShapeError):
        fn(rand(4, 4), rand(4, 4))
    with pytest.raises(TypeCheckError):
        fn(torch.ones(4, 3, dtype=torch.int64), torch.ones(4, 3, dtype=torch.int64))


@pytest.mark.parametrize("fn", ERRORS)
def test_error_gradcheck(fn):
    pred = rand(4, 3, lo=0.1).requires_grad_()
    target = rand(4, 3, lo=0.1, seed=1).requires_grad_()
    assert gradcheck(fn, (pred, target), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("fn", ERRORS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradient_at_identical_and_proportional(fn, dtype):
    target = rand(3, 3, dtype=dtype, lo=0.1)
    for pred in (target.clone(), target * 2.5, torch.zeros_like(target)):
        pred = pred.clone().requires_grad_()
        err = fn(pred, target)
        err.nan_to_num().sum().backward()
        assert torch.isfinite(pred.grad).all()
        if (pred == 0).all():
            assert torch.isnan(err).all() and (pred.grad == 0).all()
        else:
            assert torch.isfinite(err).all() and err.abs().max() < 1e-3


def test_angular_error_gradient_direction():
    # The gradient must turn pred towards target: one small step reduces the error.
    pred = torch.tensor([[1.0, 0.5, 0.2]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[0.4, 0.5, 0.6]], dtype=torch.float64)
    err = angular_error(pred, target).sum()
    err.backward()
    assert angular_error(pred.detach() - 0.01 * pred.grad, target).item() < err.item()


# ---------------------------------------------------------------- modules


def test_angular_error_module_reductions():
    pred, target = rand(6, 3, lo=0.1), rand(6, 3, lo=0.1, seed=1)
    per = angular_error(pred, target)
    torch.testing.assert_close(AngularError()(pred, target), per.mean())
    torch.testing.assert_close(AngularError("sum")(pred, target), per.sum())
    assert torch.equal(AngularError("none")(pred, target), per)
    per_r = reproduction_error(pred, target)
    torch.testing.assert_close(ReproductionError()(pred, target), per_r.mean())
    assert torch.equal(ReproductionError("none")(pred, target), per_r)
    with pytest.raises(UnknownNameError, match="mean"):
        AngularError("median")


def test_angular_error_module_as_loss():
    pred = torch.nn.Parameter(torch.tensor([[1.0, 0.2, 0.1]], dtype=torch.float64))
    target = torch.tensor([[0.3, 0.5, 0.4]], dtype=torch.float64)
    loss_fn = AngularError()
    optimiser = torch.optim.SGD([pred], lr=0.005)
    start = loss_fn(pred, target).item()
    for _ in range(50):
        optimiser.zero_grad()
        loss = loss_fn(pred, target)
        loss.backward()
        optimiser.step()
    assert loss_fn(pred, target).item() < 0.5 * start


def test_apply_correct_modules_equal_functions():
    image, L = rand(2, 3, 4, 4), rand(2, 3, lo=0.1, seed=1)
    assert torch.equal(ApplyIlluminant("l2")(image, L), apply_illuminant(image, L, norm="l2"))
    assert torch.equal(CorrectIlluminant()(image, L), correct_illuminant(image, L))
    assert torch.equal(
        AngularError("none", dim=-3)(image, image.flip(0)), angular_error(image, image.flip(0), -3)
    )
    with pytest.raises(UnknownNameError):
        ApplyIlluminant("l0")


@pytest.mark.gpu
def test_cuda_matches_cpu():
    pred, target = rand(5, 3, lo=0.1), rand(5, 3, lo=0.1, seed=1)
    for fn in ERRORS:
        torch.testing.assert_close(fn(pred.cuda(), target.cuda()).cpu(), fn(pred, target))
    image = rand(2, 3, 4, 4)
    torch.testing.assert_close(
        apply_illuminant(image.cuda(), target[:2].cuda()).cpu(), apply_illuminant(image, target[:2])
    )
