import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from tinct.color.lab import rgb_to_lab
from tinct.color.quantize import ab_bins, rebalancing_weights, reference_prior
from tinct.colorization import metrics as colorization_module
from tinct.colorization.metrics import (
    AUC_MAX_THRESHOLD,
    ABAccuracy,
    ab_auc,
    ab_errors,
    colorfulness,
    pixel_rebalancing_weights,
    psnr,
    semantic_interpretability,
)
from tinct.core.exceptions import ShapeError


def brute_force_curve(errors: np.ndarray, weights: np.ndarray, max_t: float = 150.0, step: float = 1.0):
    """Independent reference: loop over thresholds, integrate with numpy's trapezoid rule."""
    thresholds = np.arange(0.0, max_t + step / 2, step)
    e, w = errors.ravel(), weights.ravel()
    accuracy = np.array([(w * (e <= t)).sum() / w.sum() for t in thresholds])
    return thresholds, accuracy, np.trapezoid(accuracy, thresholds) / max_t


@pytest.fixture
def brute_force_nearest_bin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nearest bin by exhaustive search (an independent reference), instead of ``nearest_bin``.

    ``nearest_bin`` builds its lookup table on first use (seconds); its own tests cover it, and the
    doctest of ``pixel_rebalancing_weights`` runs the real thing.
    """
    bins = ab_bins(dtype=torch.float64)

    def nearest(ab: torch.Tensor, dim: int = -3) -> torch.Tensor:
        moved = ab.movedim(dim, -1).double()
        return torch.cdist(moved.reshape(-1, 2), bins).argmin(1).reshape(moved.shape[:-1])

    monkeypatch.setattr(colorization_module, "nearest_bin", nearest)


def random_errors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    errors = rng.gamma(2.0, 20.0, size=n)
    errors[: n // 10] = np.round(errors[: n // 10])  # values exactly on the threshold grid
    errors[n // 10 : n // 5] = rng.uniform(150, 400, size=n // 10)  # beyond every threshold
    weights = rng.uniform(0.0, 3.0, size=n)
    return errors, weights


# ----------------------------------------------------------------------------------------------------
# ab_errors


def test_ab_errors_values_and_shape() -> None:
    pred = torch.zeros(2, 2, 3, 4)
    pred[:, 0] = 3.0
    pred[:, 1] = 4.0
    out = ab_errors(pred, torch.zeros_like(pred))
    assert out.shape == (2, 3, 4) and torch.all(out == 5.0)
    assert ab_errors(pred.movedim(1, -1), torch.zeros(2, 3, 4, 2), dim=-1).shape == (2, 3, 4)


def test_ab_errors_gradcheck_and_zero_distance() -> None:
    pred = torch.randn(1, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    true = torch.randn(1, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.autograd.gradcheck(lambda p: ab_errors(p, true), (pred.requires_grad_(),))
    same = true.clone().requires_grad_()
    err = ab_errors(same, true)
    err.sum().backward()
    assert torch.all(err == 0) and torch.all(torch.isfinite(same.grad))


def test_ab_errors_shape_errors() -> None:
    with pytest.raises(ShapeError, match="2 channels"):
        ab_errors(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ShapeError, match="same shape"):
        ab_errors(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))


# ----------------------------------------------------------------------------------------------------
# ABAccuracy / ab_auc


def test_auc_perfect_and_hopeless() -> None:
    assert ABAccuracy().update(torch.zeros(10)).auc() == 1.0
    assert ABAccuracy().update(torch.full((10,), 200.0)).auc() == 0.0
    true_ab = torch.randn(2, 2, 5, 5) * 30
    assert ab_auc(true_ab, true_ab) == 1.0


def test_auc_all_errors_75_by_hand() -> None:
    # accuracy 0 for t < 75 and 1 from t = 75 on: trapezoid area 0.5 (74..75) + 75 (75..150) = 75.5
    assert ABAccuracy().update(torch.full((7,), 75.0)).auc() == pytest.approx(75.5 / 150, abs=1e-15)
    # just above the grid point: the step moves to t = 76 -> 74.5 / 150
    assert ABAccuracy().update(torch.full((7,), 75.001)).auc() == pytest.approx(74.5 / 150, abs=1e-15)


def test_curve_and_auc_match_brute_force_numpy() -> None:
    errors, weights = random_errors(5000)
    metric = ABAccuracy().update(torch.from_numpy(errors).float(), torch.from_numpy(weights))
    thresholds, accuracy = metric.curve()
    # float32 errors: the reference gets the very same (rounded) values
    ref_t, ref_acc, ref_auc = brute_force_curve(errors.astype(np.float32).astype(np.float64), weights)
    assert thresholds.dtype == accuracy.dtype == torch.float64 and thresholds.shape == (151,)
    np.testing.assert_array_equal(thresholds.numpy(), ref_t)
    np.testing.assert_allclose(accuracy.numpy(), ref_acc, rtol=0, atol=1e-12)
    assert metric.auc() == pytest.approx(ref_auc, abs=1e-12)
    unweighted = ABAccuracy().update(torch.from_numpy(errors))
    assert unweighted.auc() == pytest.approx(brute_force_curve(errors, np.ones_like(errors))[2], abs=1e-12)


def test_half_step_grid_matches_brute_force() -> None:
    errors, weights = random_errors(2000, seed=1)
    metric = ABAccuracy(max_threshold=100.0, step=0.5).update(
        torch.from_numpy(errors), torch.from_numpy(weights)
    )
    _, ref_acc, ref_auc = brute_force_curve(errors, weights, max_t=100.0, step=0.5)
    np.testing.assert_allclose(metric.curve()[1].numpy(), ref_acc, rtol=0, atol=1e-12)
    assert metric.auc() == pytest.approx(ref_auc, abs=1e-12)
    with pytest.raises(ValueError, match="multiple of step"):
        ABAccuracy(max_threshold=150.0, step=0.7)
    with pytest.raises(ValueError, match="multiple of step"):
        ABAccuracy(max_threshold=math.inf)


def test_streaming_equals_one_shot(monkeypatch: pytest.MonkeyPatch) -> None:
    errors, weights = (torch.from_numpy(a) for a in random_errors(3000, seed=2))
    one_shot = ABAccuracy().update(errors, weights)
    streamed = ABAccuracy()
    for e, w in zip(errors.split(700), weights.split(700), strict=True):
        streamed.update(e.view(7, -1) if e.numel() == 700 else e, w.view(7, -1) if w.numel() == 700 else w)
    assert streamed.total_weight == pytest.approx(one_shot.total_weight, rel=1e-12)
    assert streamed.auc() == pytest.approx(one_shot.auc(), abs=1e-12)
    monkeypatch.setattr(colorization_module, "_CHUNK", 256)  # the internal chunking gives the same
    assert ABAccuracy().update(errors, weights).auc() == pytest.approx(one_shot.auc(), abs=1e-12)
    assert ABAccuracy().update(errors).total_weight == 3000


def test_weight_scale_invariance_and_reset() -> None:
    errors, weights = (torch.from_numpy(a) for a in random_errors(1000, seed=3))
    base = ABAccuracy().update(errors, weights).auc()
    assert ABAccuracy().update(errors, 3.7 * weights).auc() == pytest.approx(base, abs=1e-12)
    metric = ABAccuracy().update(errors, weights)
    metric.reset()
    assert metric.total_weight == 0.0
    assert metric.update(torch.zeros(3)).auc() == 1.0


def test_non_finite_errors_count_as_misses() -> None:
    errors = torch.tensor([0.0, float("nan"), float("inf"), float("-inf")])
    _, accuracy = ABAccuracy().update(errors).curve()
    assert torch.all(accuracy == 0.25)
    assert ABAccuracy().update(errors).auc() == pytest.approx(0.25)


def test_empty_and_bad_weights() -> None:
    with pytest.raises(ValueError, match="no errors accumulated"):
        ABAccuracy().auc()
    with pytest.raises(ValueError, match="no errors accumulated"):
        ABAccuracy().update(torch.empty(0)).auc()
    with pytest.raises(ValueError, match="zero weights"):
        ABAccuracy().update(torch.ones(3), torch.zeros(3)).curve()
    with pytest.raises(ValueError, match="non-negative"):
        ABAccuracy().update(torch.ones(3), torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ShapeError, match="errors and weights must have the same shape"):
        ABAccuracy().update(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="max_threshold must be > 0"):
        ABAccuracy(max_threshold=0.0)


@pytest.mark.usefixtures("brute_force_nearest_bin")
def test_grayscale_baseline_matches_rayleigh() -> None:
    # Predicting ab = 0 for ab ~ N(0, 20^2 I): errors are Rayleigh(20), P(e <= t) = 1 - exp(-t^2 / 800).
    true_ab = 20.0 * torch.randn(4, 2, 100, 250, generator=torch.Generator().manual_seed(0))
    t = np.arange(151.0)
    expected = np.trapezoid(1.0 - np.exp(-(t**2) / 800.0), t) / 150.0  # ~0.833
    auc = ab_auc(torch.zeros_like(true_ab), true_ab)
    assert AUC_MAX_THRESHOLD == 150.0
    assert auc == pytest.approx(expected, abs=3e-3)
    # rebalancing up-weights the rare saturated (large-error) pixels: the grey prediction scores lower
    part = true_ab[:1, :, :40]
    rebalanced = ab_auc(torch.zeros_like(part), part, pixel_rebalancing_weights(part))
    assert 0.3 < rebalanced < auc - 0.1


# ----------------------------------------------------------------------------------------------------
# pixel_rebalancing_weights


@pytest.mark.usefixtures("brute_force_nearest_bin")
def test_rebalancing_weights_reference_prior() -> None:
    bins = ab_bins(dtype=torch.float64)
    w = pixel_rebalancing_weights(bins, dim=-1)  # one pixel at each bin centre
    p = reference_prior(dtype=torch.float64)
    grey = int(torch.nonzero((bins == 0).all(1)).item())
    assert int(w.argmin()) == grey and torch.all(w[grey] < w[torch.arange(313) != grey])
    assert float((p * w).sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(w * p, torch.full_like(w, float(w[grey] * p[grey])), rtol=1e-12)  # w = c / p
    assert torch.equal(w, rebalancing_weights(p, lam=0.0))


@pytest.mark.usefixtures("brute_force_nearest_bin")
def test_rebalancing_weights_shapes_and_priors() -> None:
    true_ab = 30 * torch.randn(2, 2, 3, 5, generator=torch.Generator().manual_seed(0))
    w = pixel_rebalancing_weights(true_ab)
    assert w.shape == (2, 3, 5) and w.dtype == torch.float32 and torch.all(w > 0)
    assert torch.allclose(pixel_rebalancing_weights(true_ab, torch.full((313,), 2.0)), torch.ones(2, 3, 5))
    zero = reference_prior().clone()
    zero[5] = 0.0
    with pytest.raises(ValueError, match="strictly positive"):
        pixel_rebalancing_weights(true_ab, zero)
    with pytest.raises(ShapeError):
        pixel_rebalancing_weights(true_ab, torch.ones(100))
    with pytest.raises(ShapeError, match="2 channels"):
        pixel_rebalancing_weights(torch.zeros(1, 3, 2, 2))


# ----------------------------------------------------------------------------------------------------
# psnr


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_matches_scikit_image(data_range: float) -> None:
    rng = np.random.default_rng(0)
    target = rng.uniform(0, data_range, size=(2, 3, 3, 8, 9))
    pred = np.clip(target + rng.normal(0, 0.05 * data_range, size=target.shape), 0, data_range)
    out = psnr(torch.from_numpy(pred), torch.from_numpy(target), data_range=data_range)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            ref = peak_signal_noise_ratio(target[i, j], pred[i, j], data_range=data_range)
            assert out[i, j].item() == pytest.approx(ref, rel=1e-12)


def test_psnr_identical_inf_and_errors() -> None:
    x = torch.rand(2, 3, 4, 4)
    assert torch.all(torch.isinf(psnr(x, x)))
    with pytest.raises(ShapeError, match="same shape"):
        psnr(x, x[..., :3])
    with pytest.raises(ShapeError, match=r"\(\*, C, H, W\)"):
        psnr(torch.rand(4, 4), torch.rand(4, 4))
    assert torch.autograd.gradcheck(
        lambda p: psnr(p, x.double()), (torch.rand(2, 3, 4, 4, dtype=torch.float64).requires_grad_(),)
    )


# ----------------------------------------------------------------------------------------------------
# colorfulness


def numpy_colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003), written directly from the formula on one (3, H, W) image."""
    r, g, b = (255.0 * rgb).astype(np.float64)
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = np.sqrt(np.std(rg) ** 2 + np.std(yb) ** 2)
    mu = np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    return float(sigma + 0.3 * mu)


def test_colorfulness_grey_and_uniform() -> None:
    grey = torch.rand(2, 1, 6, 6).expand(2, 3, 6, 6)
    assert torch.all(colorfulness(grey) == 0)
    uniform = torch.tensor([0.8, 0.3, 0.1]).view(3, 1, 1).expand(3, 5, 5)
    # rg = 255 (0.8 - 0.3) = 127.5, yb = 255 ((0.8 + 0.3) / 2 - 0.1) = 114.75, no spread
    assert colorfulness(uniform).item() == pytest.approx(0.3 * math.hypot(127.5, 114.75), rel=1e-6)


def test_colorfulness_matches_numpy_and_channels_last() -> None:
    rgb = torch.rand(2, 3, 3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = colorfulness(rgb)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert out[i, j].item() == pytest.approx(numpy_colorfulness(rgb[i, j].numpy()), rel=1e-12)
    assert torch.allclose(colorfulness(rgb.movedim(-3, -1), dim=-1), out)


def test_colorfulness_grows_with_saturation() -> None:
    rgb = torch.rand(3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grey = rgb.mean(0, keepdim=True)
    values = [colorfulness(grey + s * (rgb - grey)).item() for s in (0.0, 0.25, 0.5, 1.0)]
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert values[1] < values[2] < values[3]
    # rg and yb are linear and vanish on grey, so M scales exactly with the blend factor
    assert values[1] == pytest.approx(0.25 * values[3], rel=1e-9)


def test_colorfulness_gradcheck_and_errors() -> None:
    rgb = torch.rand(2, 3, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.autograd.gradcheck(colorfulness, (rgb.requires_grad_(),))
    grey = torch.full((3, 2, 2), 0.5, dtype=torch.float64, requires_grad=True)
    colorfulness(grey).backward()
    assert torch.all(torch.isfinite(grey.grad))
    with pytest.raises(ShapeError, match="3 channels"):
        colorfulness(torch.rand(1, 4, 5, 5))


# ----------------------------------------------------------------------------------------------------
# semantic_interpretability


def hue_classifier(x: torch.Tensor) -> torch.Tensor:
    """0 = neutral, 1 = reddish, 2 = greenish, from the mean R - G of the image."""
    score = (x[:, 0] - x[:, 1]).mean((-2, -1))
    return torch.stack([0.05 - score.abs(), score - 0.05, -score - 0.05], dim=-1)


def make_images() -> tuple[torch.Tensor, torch.Tensor]:
    colours = [[0.8, 0.2, 0.2]] * 5 + [[0.2, 0.7, 0.2]] * 3 + [[0.5, 0.5, 0.5]] * 2
    images = torch.tensor(colours).view(10, 3, 1, 1).expand(10, 3, 6, 6).clone()
    images += 0.02 * torch.rand(10, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([1] * 5 + [2] * 3 + [0] * 2)
    return images, labels


def test_semantic_interpretability_exact_accuracies() -> None:
    images, labels = make_images()
    seen = []

    def identity(gray: torch.Tensor) -> torch.Tensor:
        seen.append(gray)
        return gray

    result = semantic_interpretability(hue_classifier, images, labels, identity, batch_size=4)
    assert result == {"original": 1.0, "grayscale": 0.2, "recolorized": 0.2}
    gray = torch.cat(seen)
    assert gray.shape == images.shape and not gray.requires_grad
    lab, lab_gray = rgb_to_lab(images), rgb_to_lab(gray)
    assert lab_gray[:, 1:].abs().max() < 1e-3  # neutral ...
    assert (lab_gray[:, 0] - lab[:, 0]).abs().max() < 1e-3  # ... with the lightness kept

    def redden(gray: torch.Tensor) -> torch.Tensor:
        return (gray + torch.tensor([0.3, 0.0, 0.0]).view(1, 3, 1, 1)).clamp(0, 1)

    reddened = semantic_interpretability(hue_classifier, images, labels, redden, batch_size=3)
    assert reddened == {"original": 1.0, "grayscale": 0.2, "recolorized": 0.5}


def test_semantic_interpretability_errors() -> None:
    images, labels = make_images()
    with pytest.raises(ShapeError, match="one per image"):
        semantic_interpretability(hue_classifier, images, labels[:5], lambda g: g)
    with pytest.raises(ShapeError, match="logits"):
        semantic_interpretability(lambda x: x.mean((-2, -1)).sum(-1), images, labels, lambda g: g)
    with pytest.raises(ShapeError, match="colorize"):
        semantic_interpretability(hue_classifier, images, labels, lambda g: g[:, :2])
    with pytest.raises(ValueError, match="batch_size"):
        semantic_interpretability(hue_classifier, images, labels, lambda g: g, batch_size=0)
