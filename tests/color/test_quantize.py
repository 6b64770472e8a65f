"""Tests of tinct.color.quantize (ab quantisation of Zhang, Isola & Efros, ECCV 2016).

References used as ground truth:
- brute force: squared distances to all 313 bins + ``torch.topk`` (exact up to ties);
- scikit-learn ``NearestNeighbors(algorithm="ball_tree")`` + Gaussian weights, as in the original release
  (richzhang/colorization, ``caffe_traininglayers.py``, class ``NNEncode``);
- the release's ``PriorFactor`` formula for the rebalancing weights (the range it gives with the
  release's prior, 0.097 to 6.17 for lambda = 0.5, is computed from it, not published);
- an explicit 2-D convolution on the full ab grid for the prior smoothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinct.color.quantize import (
    GRID_SIZE,
    NUM_BINS,
    ABQuantizer,
    AnnealedMean,
    PriorAccumulator,
    ab_bins,
    annealed_mean,
    bin_counts,
    decode_mean,
    decode_mode,
    empirical_prior,
    nearest_bin,
    rebalancing_weights,
    reference_prior,
    smooth_prior,
    soft_encode,
    soft_encode_dense,
)
from tinct.core.exceptions import ShapeError, TypeCheckError

GREY = 120  # index of the bin at ab = (0, 0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_ab(n: int, lo: float = -130.0, hi: float = 130.0, seed: int = 0) -> torch.Tensor:
    """(n, 2) float64 ab values, uniform in [lo, hi]^2."""
    return torch.rand(n, 2, generator=_gen(seed), dtype=torch.float64) * (hi - lo) + lo


def _brute_force(ab: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2) -> squared distances and indices (n, k) of the k nearest bins, ascending."""
    bins = ab_bins(dtype=ab.dtype)
    values, indices = [], []
    for part in ab.split(8192):
        d2 = (part[:, None, 0] - bins[:, 0]).square() + (part[:, None, 1] - bins[:, 1]).square()
        best = d2.topk(k, dim=1, largest=False, sorted=True)
        values.append(best.values)
        indices.append(best.indices)
    return torch.cat(values), torch.cat(indices)


def _gaussian_weights(d2: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-d^2 / 2 sigma^2), normalised; shifted by the smallest d^2 so that far points do not underflow."""
    w = torch.exp(-(d2 - d2.min(-1, keepdim=True).values) / (2 * sigma**2))
    return w / w.sum(-1, keepdim=True)


def _d2_of(ab: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Squared distances (n, k) from ab (n, 2) to the bins indices (n, k)."""
    return (ab[:, None, :] - ab_bins(dtype=ab.dtype)[indices]).square().sum(-1)


# ----------------------------------------------------------------------------------------------------
# Resources


def test_bins_and_reference_prior() -> None:
    bins = ab_bins(dtype=torch.float64)
    assert bins.shape == (NUM_BINS, 2) and NUM_BINS == 313 and GRID_SIZE == 10
    assert torch.equal(bins, torch.round(bins / GRID_SIZE) * GRID_SIZE)
    assert torch.unique(bins, dim=0).shape[0] == NUM_BINS
    assert bins.min().item() == -110 and bins.max().item() == 100
    assert torch.equal(bins[GREY], torch.zeros(2, dtype=torch.float64))
    assert ab_bins(dtype=torch.float16).dtype == torch.float16
    prior = reference_prior(dtype=torch.float64)
    assert prior.shape == (NUM_BINS,) and (prior > 0).all()
    assert prior.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert prior.argmax().item() == GREY and prior.max().item() == pytest.approx(0.2012, abs=1e-4)


# ----------------------------------------------------------------------------------------------------
# Nearest bin


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nearest_bin_matches_brute_force(dtype: torch.dtype) -> None:
    inside = _random_ab(20000, seed=1)
    outside = _random_ab(4000, lo=-400.0, hi=400.0, seed=2)  # far outside the gamut and the table
    ab = torch.cat([inside, outside]).to(dtype)
    index = nearest_bin(ab, dim=-1)
    assert index.dtype == torch.int64 and index.shape == (ab.shape[0],)
    best, _ = _brute_force(ab.double(), 1)
    got = _d2_of(ab.double(), index[:, None])
    # Ties aside (equal distances), the chosen bin is at the minimal distance.
    torch.testing.assert_close(got, best, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k", [1, 5])
def test_exact_on_cell_corners_edges_and_bin_centres(k: int) -> None:
    # Lattice points are cell corners, edge midpoints and bin centres, where the ties are.
    coarse = torch.arange(-130.0, 130.0, 1.0, dtype=torch.float64)
    fine = torch.arange(-25.0, 25.0, 0.25, dtype=torch.float64)
    ab = torch.cat([torch.cartesian_prod(coarse, coarse), torch.cartesian_prod(fine, fine)])
    _, indices = soft_encode(ab, k=k, dim=-1)
    torch.testing.assert_close(_d2_of(ab, indices), _brute_force(ab, k)[0], rtol=0, atol=0)


def test_nearest_bin_of_bins() -> None:
    bins = ab_bins(dtype=torch.float64)
    assert torch.equal(nearest_bin(bins, dim=-1), torch.arange(NUM_BINS))


def test_nearest_bin_shapes() -> None:
    ab = torch.randn(2, 3, 2, 4, 5, generator=_gen()) * 50
    assert nearest_bin(ab).shape == (2, 3, 4, 5)
    assert nearest_bin(ab[0, 0]).shape == (4, 5)
    assert torch.equal(nearest_bin(ab, dim=2), nearest_bin(ab))
    assert torch.equal(nearest_bin(ab.movedim(2, -1), dim=-1), nearest_bin(ab))
    assert nearest_bin(torch.tensor([3.0, -12.0]), dim=-1).shape == ()
    assert nearest_bin(torch.zeros(0, 2), dim=-1).shape == (0,)


# ----------------------------------------------------------------------------------------------------
# Soft encoding


@pytest.mark.parametrize("k", [1, 2, 5, 7, 16])
def test_soft_encode_matches_brute_force(k: int) -> None:
    ab = torch.cat([_random_ab(6000, seed=k), _random_ab(500, lo=-300.0, hi=300.0, seed=k + 100)])
    weights, indices = soft_encode(ab, k=k, sigma=5.0, dim=-1)
    assert weights.shape == indices.shape == (ab.shape[0], k)
    best, _ = _brute_force(ab, k)
    d2 = _d2_of(ab, indices)
    torch.testing.assert_close(d2, best, rtol=1e-12, atol=1e-9)  # the true k nearest, sorted
    torch.testing.assert_close(weights, _gaussian_weights(best, 5.0), rtol=1e-9, atol=1e-12)
    ranked = indices.sort(1).values
    assert (ranked[:, 1:] != ranked[:, :-1]).all()  # k distinct bins per point


@pytest.mark.parametrize("sigma", [1.0, 5.0, 12.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_encode_weights(sigma: float, dtype: torch.dtype) -> None:
    ab = _random_ab(3000, seed=3).to(dtype)
    weights, indices = soft_encode(ab, k=5, sigma=sigma, dim=-1)
    assert weights.dtype == dtype
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights[:, 0]), rtol=0, atol=1e-6)
    assert (weights[:, :-1] >= weights[:, 1:]).all()  # sorted: index 0 is the nearest, largest weight
    assert (weights >= 0).all() and (weights[:, 0] >= 1 / 5).all()
    expected = _gaussian_weights(_d2_of(ab.double(), indices), sigma)
    if dtype == torch.float64:
        torch.testing.assert_close(weights, expected, rtol=1e-10, atol=1e-14)
    else:
        # float32 squared distances carry a relative error of ~1e-7, amplified by d^2 / (2 sigma^2).
        scale = _d2_of(ab.double(), indices)[:, -1:] / (2 * sigma**2)
        assert ((weights.double() - expected).abs() <= 1e-6 + 3e-7 * scale).all()


def _sklearn_dense(ab: np.ndarray, k: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense soft encoding as in the original release (NNEncode: ball tree + Gaussian weights).

    Also returns the rows where the original is accurate: far outside the gamut its unshifted
    exp(-d^2 / 2 sigma^2) underflows (to subnormals, then 0 / 0), which tinct avoids.
    """
    from sklearn import neighbors  # a test extra (tinct[test]): its absence fails, it does not skip

    nn = neighbors.NearestNeighbors(n_neighbors=k, algorithm="ball_tree").fit(ab_bins(dtype=torch.float64))
    dist, index = nn.kneighbors(ab)
    with np.errstate(invalid="ignore"):
        w = np.exp(-(dist**2) / (2 * sigma**2))
        w /= w.sum(1, keepdims=True)
    dense = np.zeros((ab.shape[0], NUM_BINS))
    np.put_along_axis(dense, index, w, axis=1)
    return dense, dist[:, 0] ** 2 / (2 * sigma**2) < 600


@pytest.mark.parametrize(("k", "sigma"), [(5, 5.0), (2, 8.0), (16, 2.0)])
def test_soft_encode_matches_original_release_sklearn(k: int, sigma: float) -> None:
    ab = _random_ab(5000, lo=-120.0, hi=120.0, seed=4)
    dense = soft_encode_dense(ab, k=k, sigma=sigma, dim=-1).numpy()
    expected, accurate = _sklearn_dense(ab.numpy(), k, sigma)
    assert accurate.mean() > 0.9 and np.isfinite(dense).all()
    np.testing.assert_allclose(dense[accurate], expected[accurate], rtol=0, atol=1e-9)


def test_soft_encode_real_photo_matches_sklearn() -> None:
    from skimage import color, data, transform

    rgb = transform.resize(data.astronaut(), (128, 128), anti_aliasing=True)
    ab = torch.from_numpy(color.rgb2lab(rgb)[..., 1:]).permute(2, 0, 1)[None]  # (1, 2, 128, 128)
    expected, accurate = _sklearn_dense(ab[0].reshape(2, -1).t().numpy(), 5, 5.0)
    assert accurate.all()
    for dtype in (torch.float32, torch.float64):
        dense = soft_encode_dense(ab.to(dtype))
        assert dense.shape == (1, NUM_BINS, 128, 128)
        got = dense[0].reshape(NUM_BINS, -1).t().double().numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 if dtype == torch.float32 else 1e-9)


def test_soft_encode_outside_gamut_and_non_finite() -> None:
    ab = torch.tensor([[500.0, -500.0], [-1e4, 3.0], [129.99, -130.0], [float("nan"), 0.0], [5.0, 5.0]])
    weights, indices = soft_encode(ab, dim=-1)
    assert torch.isfinite(weights[[0, 1, 2, 4]]).all()
    assert torch.isnan(weights[3]).all()
    torch.testing.assert_close(weights[:3].sum(-1), torch.ones(3))
    best, _ = _brute_force(ab[[0, 1, 2, 4]].double(), 5)
    torch.testing.assert_close(
        _d2_of(ab[[0, 1, 2, 4]].double(), indices[[0, 1, 2, 4]]), best, rtol=1e-6, atol=0
    )
    # ab = (5, 5) is equidistant from 4 bins, then from 8: any 4 + 1 of them is a valid answer (a tie).
    assert set(indices[4, :4].tolist()) == set(_brute_force(ab[4:5].double(), 4)[1][0].tolist())


def test_soft_encode_shapes_and_dtypes() -> None:
    ab = torch.randn(2, 3, 2, 4, 5, generator=_gen()) * 40
    weights, indices = soft_encode(ab, k=2)
    assert weights.shape == indices.shape == (2, 3, 2, 4, 5)
    assert weights.dtype == torch.float32 and indices.dtype == torch.int64
    w1, i1 = soft_encode(ab[1, 2], k=2)
    torch.testing.assert_close(w1, weights[1, 2])
    assert torch.equal(i1, indices[1, 2])
    w_last, i_last = soft_encode(ab.movedim(2, -1), k=2, dim=-1)
    torch.testing.assert_close(w_last, weights.movedim(2, -1))
    assert torch.equal(i_last, indices.movedim(2, -1))
    w16, i16 = soft_encode(ab.half(), k=2)
    assert w16.dtype == torch.float16 and w16.shape == weights.shape
    w16_ref, i16_ref = soft_encode(ab.half().float(), k=2)
    torch.testing.assert_close(w16.float(), w16_ref, atol=1e-3, rtol=1e-3)
    assert torch.equal(i16, i16_ref)
    w0, i0 = soft_encode(torch.zeros(0, 2), dim=-1)
    assert w0.shape == i0.shape == (0, 5)
    dense = soft_encode_dense(ab, k=2)
    assert dense.shape == (2, 3, NUM_BINS, 4, 5)
    torch.testing.assert_close(dense.sum(2), torch.ones(2, 3, 4, 5))
    torch.testing.assert_close(dense.gather(2, indices), weights)
    assert (dense > 0).sum(2).eq(2).all()


def test_soft_encode_gradcheck() -> None:
    # Random points (no ties); the selection is locally constant, the weights are smooth in ab.
    ab = (torch.rand(1, 2, 3, 3, generator=_gen(5), dtype=torch.float64) * 200 - 100).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: soft_encode(x, k=5, sigma=5.0)[0], (ab,))
    assert torch.autograd.gradcheck(lambda x: soft_encode_dense(x, k=2, sigma=8.0), (ab,), fast_mode=True)
    with torch.no_grad():
        fast = soft_encode(ab)[0]
    torch.testing.assert_close(soft_encode(ab)[0].detach(), fast, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------------------------------
# Priors and rebalancing


def _prior_factor_original(prior: np.ndarray, gamma: float, alpha: float = 1.0) -> np.ndarray:
    """``PriorFactor`` of the original release (caffe_traininglayers.py), verbatim in numpy."""
    uni = np.zeros_like(prior)
    uni[prior != 0] = 1.0
    uni /= uni.sum()
    mix = (1 - gamma) * prior + gamma * uni
    factor = mix**-alpha
    return factor / np.sum(prior * factor)


def test_rebalancing_weights_reference_prior() -> None:
    prior = reference_prior(dtype=torch.float64)
    w = rebalancing_weights(prior, lam=0.5)
    assert w.shape == (NUM_BINS,) and w.dtype == torch.float64
    assert w.min().item() == pytest.approx(0.097, abs=0.005) and w.argmin().item() == GREY
    assert w.max().item() == pytest.approx(6.17, abs=0.005)
    assert (prior * w).sum().item() == pytest.approx(1.0, abs=1e-12)
    for lam in (0.0, 0.25, 0.5, 1.0):
        expected = _prior_factor_original(prior.numpy(), lam)
        np.testing.assert_allclose(rebalancing_weights(prior, lam).numpy(), expected, rtol=1e-12)
    torch.testing.assert_close(rebalancing_weights(prior, 1.0), torch.ones_like(prior))
    torch.testing.assert_close(rebalancing_weights(prior * 7.0), w)  # renormalised
    assert rebalancing_weights(prior.float()).dtype == torch.float32


def test_bin_counts_and_accumulator() -> None:
    ab = torch.zeros(1, 2, 2, 3)
    ab[0, :, 0, 0] = torch.tensor([22.0, -9.0])  # nearest bin (20, -10)
    ab[0, 0, 1, 2] = float("nan")  # skipped
    counts = bin_counts(ab)
    assert counts.dtype == torch.int64 and counts.shape == (NUM_BINS,) and counts.sum().item() == 5
    assert counts[GREY].item() == 4
    bins = ab_bins()
    assert counts[((bins - torch.tensor([20.0, -10.0])).abs().sum(1) == 0).nonzero().item()].item() == 1
    images = [_random_ab(64, -90, 90, seed=s).t().reshape(1, 2, 8, 8) for s in range(4)]
    acc = PriorAccumulator()
    for image in images:
        acc.update(image)
    assert acc.total == 256
    one_shot = bin_counts(torch.cat(images))
    assert torch.equal(acc.counts, one_shot)
    torch.testing.assert_close(acc.prior(), smooth_prior(one_shot))
    torch.testing.assert_close(empirical_prior(images), acc.prior())
    torch.testing.assert_close(empirical_prior(torch.cat(images)), acc.prior())
    torch.testing.assert_close(empirical_prior(one_shot, sigma=3.0), smooth_prior(one_shot, 3.0))
    torch.testing.assert_close(empirical_prior(torch.cat(images).movedim(1, -1), dim=-1), acc.prior())
    acc.reset()
    assert acc.total == 0


def test_smooth_prior_equals_full_grid_convolution() -> None:
    counts = torch.randint(0, 1000, (NUM_BINS,), generator=_gen(6)).double()
    bins = ab_bins(dtype=torch.int64) // GRID_SIZE
    low = bins.min(0).values
    grid = torch.zeros(*(bins.max(0).values - low + 1).tolist(), dtype=torch.float64)
    grid[bins[:, 0] - low[0], bins[:, 1] - low[1]] = counts
    for sigma in (2.5, 5.0, 10.0):
        offsets = torch.arange(-12, 13, dtype=torch.float64) * GRID_SIZE
        kernel = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
        smoothed = torch.nn.functional.conv2d(grid[None, None], kernel[None, None], padding=12)[0, 0]
        expected = smoothed[bins[:, 0] - low[0], bins[:, 1] - low[1]]
        torch.testing.assert_close(smooth_prior(counts, sigma), expected / expected.sum(), rtol=1e-10, atol=0)
    torch.testing.assert_close(smooth_prior(counts, 0.0), counts / counts.sum())
    assert smooth_prior(counts.long()).dtype == torch.float64
    assert smooth_prior(counts.float()).dtype == torch.float32


def test_a_prior_is_never_smoothed_twice() -> None:
    counts = bin_counts(_random_ab(4096, -60, 60, seed=8).t().reshape(1, 2, 64, 64))
    once = smooth_prior(counts)
    for prior in (reference_prior(), reference_prior(dtype=torch.float64), once, once.float()):
        with pytest.raises(ValueError, match="already smoothed"):
            smooth_prior(prior)
        with pytest.raises(ValueError, match="already smoothed"):
            empirical_prior(prior)
    # whole-number counts in a floating dtype are still counts
    torch.testing.assert_close(smooth_prior(counts.double()), once)
    torch.testing.assert_close(smooth_prior(counts.float(), 0.0), (counts / counts.sum()).float())


def test_prior_errors() -> None:
    with pytest.raises(ShapeError):
        smooth_prior(torch.ones(312))
    with pytest.raises(ValueError, match="all zero"):
        smooth_prior(torch.zeros(NUM_BINS))
    with pytest.raises(ValueError, match="non-negative"):
        smooth_prior(-torch.ones(NUM_BINS))
    with pytest.raises(ValueError, match="sigma"):
        smooth_prior(torch.ones(NUM_BINS), sigma=-1.0)
    prior = reference_prior()
    for lam in (-0.1, 1.5):
        with pytest.raises(ValueError, match="lam"):
            rebalancing_weights(prior, lam)
    with pytest.raises(ValueError, match="lam = 0"):
        rebalancing_weights(torch.tensor([0.5, 0.5, 0.0]), 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        rebalancing_weights(-prior)
    with pytest.raises(TypeCheckError):
        rebalancing_weights(torch.ones(NUM_BINS, dtype=torch.int64))
    with pytest.raises(ShapeError):
        rebalancing_weights(prior[None])
    with pytest.raises(TypeCheckError):
        bin_counts(torch.zeros(1, 2, 2, 2, dtype=torch.int32))


# ----------------------------------------------------------------------------------------------------
# Decoding


def _logits(*shape: int, seed: int = 7) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64) * 3


def test_annealed_mean_limits() -> None:
    logits = _logits(2, NUM_BINS, 3, 4)
    mode = decode_mode(logits)
    assert mode.shape == (2, 2, 3, 4)
    torch.testing.assert_close(mode, ab_bins(dtype=torch.float64)[logits.argmax(1)].movedim(-1, 1))
    assert torch.equal(annealed_mean(logits, 0.0), mode)
    top2 = logits.topk(2, dim=1).values
    t_small = float((top2[:, 0] - top2[:, 1]).min()) / 100  # exp(-100): the mode to machine precision
    torch.testing.assert_close(annealed_mean(logits, t_small), mode, rtol=0, atol=1e-9)
    mean = torch.einsum("bqhw,qc->bchw", torch.softmax(logits, 1), ab_bins(dtype=torch.float64))
    torch.testing.assert_close(annealed_mean(logits, 1.0), mean)
    torch.testing.assert_close(decode_mean(logits), mean)
    # f_T(z) = softmax(log z / T) from probabilities equals softmax(logits / T).
    probs = torch.softmax(logits, 1)
    for t in (0.0, 0.38, 1.0):
        torch.testing.assert_close(annealed_mean(probs, t, from_probs=True), annealed_mean(logits, t))
    torch.testing.assert_close(decode_mean(probs, from_probs=True), mean)
    # The paper's T = 0.38 lies between the mean and the mode in saturation (chroma), on average.
    chroma = [torch.linalg.vector_norm(annealed_mean(logits, t), dim=1).mean() for t in (1.0, 0.38, 0.0)]
    assert chroma[0] < chroma[1] < chroma[2]


def test_annealed_mean_shapes_and_probabilities_with_zeros() -> None:
    probs = torch.zeros(5, NUM_BINS)
    probs[:, GREY] = 0.5
    probs[:, 0] = 0.5
    out = annealed_mean(probs, 0.38, dim=-1, from_probs=True)
    assert out.shape == (5, 2) and torch.isfinite(out).all()
    torch.testing.assert_close(out, ab_bins()[[GREY, 0]].mean(0).expand(5, 2))
    assert annealed_mean(_logits(NUM_BINS, 2, 2).float()).dtype == torch.float32
    assert annealed_mean(_logits(3, 4, NUM_BINS), dim=-1).shape == (3, 4, 2)
    # Round trip: one-hot logits at the nearest bin decode to that bin centre.
    ab = _random_ab(50, -100, 100, seed=8)
    one_hot = torch.nn.functional.one_hot(nearest_bin(ab, dim=-1), NUM_BINS).double() * 100
    torch.testing.assert_close(
        annealed_mean(one_hot, dim=-1), ab_bins(dtype=torch.float64)[nearest_bin(ab, dim=-1)]
    )


def test_annealed_mean_gradcheck() -> None:
    logits = _logits(1, NUM_BINS, 1, 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: annealed_mean(x, 0.38), (logits,))
    batch = _logits(2, NUM_BINS, 2, 3, seed=8).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: annealed_mean(x, 1.0), (batch,), fast_mode=True)
    probs = torch.softmax(_logits(1, NUM_BINS, 1, 2, seed=9), 1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: annealed_mean(p, 0.38, from_probs=True), (probs,), fast_mode=True
    )
    zero = torch.zeros(1, NUM_BINS, 1, 1, dtype=torch.float64)
    zero[0, :2] = 0.5
    zero.requires_grad_()
    annealed_mean(zero, 0.38, from_probs=True).sum().backward()
    assert torch.isfinite(zero.grad).all()


# ----------------------------------------------------------------------------------------------------
# Errors and modules


def test_bad_inputs() -> None:
    with pytest.raises(ShapeError, match="2 channels"):
        soft_encode(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ShapeError):
        nearest_bin(torch.zeros(5, 3), dim=-1)
    with pytest.raises(TypeCheckError):
        soft_encode(torch.zeros(1, 2, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeCheckError):
        nearest_bin(torch.zeros(1, 2, 4, 4, dtype=torch.uint8))
    ab = torch.zeros(1, 2, 2, 2)
    for k in (0, -1, 314, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            soft_encode(ab, k=k)
    for sigma in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            soft_encode_dense(ab, sigma=sigma)
    logits = torch.zeros(1, NUM_BINS, 2, 2)
    for t in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            annealed_mean(logits, t)
    with pytest.raises(ShapeError, match="313 channels"):
        annealed_mean(torch.zeros(1, 312, 2, 2))
    with pytest.raises(TypeCheckError):
        decode_mode(torch.zeros(1, NUM_BINS, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="k must be"):
        ABQuantizer(k=0)
    with pytest.raises(ValueError, match="temperature"):
        AnnealedMean(-1.0)


def test_modules_equal_functions() -> None:
    ab = torch.randn(2, 2, 5, 6, generator=_gen(10)) * 40
    logits = _logits(2, NUM_BINS, 5, 6).float()
    quantizer = ABQuantizer(k=2, sigma=6.0)
    assert quantizer.bins.shape == (NUM_BINS, 2) and "bins" not in quantizer.state_dict()
    assert "k=2" in repr(quantizer)
    for got, expected in zip(quantizer(ab), soft_encode(ab, k=2, sigma=6.0), strict=True):
        assert torch.equal(got, expected)
    assert torch.equal(quantizer.soft_encode(ab)[1], soft_encode(ab, k=2, sigma=6.0)[1])
    assert torch.equal(quantizer.soft_encode_dense(ab), soft_encode_dense(ab, k=2, sigma=6.0))
    assert torch.equal(quantizer.nearest(ab), nearest_bin(ab))
    assert torch.equal(quantizer.decode(logits), annealed_mean(logits, 0.38))
    assert torch.equal(quantizer.decode(logits, 0.0), decode_mode(logits))
    assert quantizer.double().bins.dtype == torch.float64
    assert torch.equal(AnnealedMean(0.5)(logits), annealed_mean(logits, 0.5))
    probs = torch.softmax(logits, 1)
    assert torch.equal(AnnealedMean(0.5, from_probs=True)(probs), annealed_mean(probs, 0.5, from_probs=True))
    lists = ABQuantizer(dim=-1)
    assert lists.nearest(torch.zeros(7, 2)).shape == (7,)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    ab = torch.cat([_random_ab(50000, seed=11), _random_ab(1000, -300.0, 300.0, seed=12)]).float()
    w_cpu, _ = soft_encode(ab, dim=-1)
    w_gpu, i_gpu = soft_encode(ab.cuda(), dim=-1)
    torch.testing.assert_close(w_gpu.cpu(), w_cpu, rtol=1e-5, atol=1e-6)
    d2 = _d2_of(ab.double(), i_gpu.cpu())
    torch.testing.assert_close(d2, _brute_force(ab.double(), 5)[0], rtol=1e-5, atol=1e-4)
    assert torch.equal(nearest_bin(ab.cuda(), dim=-1).cpu(), nearest_bin(ab, dim=-1))
    logits = _logits(2, NUM_BINS, 4, 4).float()
    torch.testing.assert_close(
        annealed_mean(logits.cuda()).cpu(), annealed_mean(logits), rtol=1e-5, atol=1e-4
    )


def test_soft_encode_dense_large_map_uses_fast_zeros_and_is_exact() -> None:
    # 1 x 2 x 64 x 64 -> 313 x 4096 float32 = 5 MB: takes the numpy-backed allocation path
    g = torch.Generator().manual_seed(3)
    ab = (torch.rand(1, 2, 64, 64, generator=g) - 0.5) * 200
    ab.requires_grad_(True)
    dense = soft_encode_dense(ab)
    w, idx = soft_encode(ab)
    ref = torch.zeros(1, 313, 64, 64).scatter_(1, idx, w)
    assert torch.equal(dense, ref)
    dense[:, 0].sum().backward()  # still differentiable
    assert ab.grad is not None and torch.isfinite(ab.grad).all()
