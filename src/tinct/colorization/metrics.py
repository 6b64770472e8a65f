"""Evaluation metrics of automatic colorization: ab accuracy curves and AuC, PSNR, colourfulness.

Zhang, Isola & Efros (2016) score a colorization by the fraction of pixels whose predicted ab lies within
a threshold of the ground truth (L2 distance in the CIELAB ab plane), swept over thresholds 0, 1, ..., 150
to a cumulative curve whose normalised area (AuC) is reported, both plainly and class-rebalanced (each
pixel weighted by the inverse prior probability of its ground-truth ab bin, so rare saturated colours
count as much as common greys). They also test "semantic interpretability": how well an ImageNet
classifier recognises recolorised images, compared with the originals and their grayscale versions.
Colourfulness (Hasler & Süsstrunk 2003) summarises how vivid a result is, the quality that plain
regression losses wash out.

Domain and range: ab in CIELAB units, errors in ab units (>= 0); sRGB images in [0, 1]; accuracies and AuC
in [0, 1]; PSNR in dB; colourfulness on the 0-255 scale of its paper (0 for a grey image).

References:
    Zhang, R., Isola, P., & Efros, A. A. (2016). Colorful Image Colorization. ECCV 2016, LNCS 9907,
    649-666, section 3.1 and table 1. https://doi.org/10.1007/978-3-319-46487-9_40

    Hasler, D., & Süsstrunk, S. (2003). Measuring colourfulness in natural images. Proc. SPIE 5007,
    Human Vision and Electronic Imaging VIII, 87-95. https://doi.org/10.1117/12.477378
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torchmetrics import Metric

from tinct.color._math import safe_sqrt
from tinct.color.lab import lab_to_rgb, rgb_to_lab
from tinct.color.quantize import NUM_BINS, nearest_bin, rebalancing_weights, reference_prior
from tinct.core.checks import (
    check_channel_dim,
    check_floating,
    check_positive,
    check_same_shape,
    check_shape,
    check_tensor,
)
from tinct.core.exceptions import ShapeError

__all__ = [
    "AUC_MAX_THRESHOLD",
    "ABAccuracy",
    "ABAuC",
    "ab_auc",
    "ab_errors",
    "colorfulness",
    "grayscale_from_lab",
    "pixel_rebalancing_weights",
    "psnr",
    "semantic_interpretability",
]

AUC_MAX_THRESHOLD = 150.0

# Elements per histogram pass: bounds the float64 temporaries to ~32 MB whatever the input size.
_CHUNK = 1 << 22


def ab_errors(pred_ab: Tensor, true_ab: Tensor, dim: int = -3) -> Tensor:
    """Per-pixel Euclidean distance between predicted and true colours in the CIELAB ab plane.

    Args:
        pred_ab: predicted a*, b* in CIELAB units.
        true_ab: ground-truth a*, b*, same shape as ``pred_ab``.
        dim: channel axis (-3 for images, -1 for colour lists).

    Returns:
        Errors in ab units, >= 0, exactly 0 where the inputs agree (with a zero gradient there).

    Shape:
        - pred_ab, true_ab: :math:`(*, 2, H, W)`.
        - Output: :math:`(*, H, W)` (the channel axis removed).

    Example:
        >>> ab_errors(torch.tensor([[3.0, 4.0], [1.0, 1.0]]), torch.zeros(2, 2), dim=-1)
        tensor([5.0000, 1.4142])

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 3.1.
    """
    pos = check_channel_dim(pred_ab, dim, size=2, name="pred_ab")
    check_channel_dim(true_ab, dim, size=2, name="true_ab")
    check_same_shape(pred_ab, true_ab, ("pred_ab", "true_ab"))
    return safe_sqrt((pred_ab - true_ab).square().sum(pos))


def pixel_rebalancing_weights(true_ab: Tensor, prior: Tensor | None = None, dim: int = -3) -> Tensor:
    """Weight of each pixel in the class-rebalanced accuracy: the inverse prior of its ground-truth ab bin.

    Each pixel gets :math:`w_q \\propto 1 / p_q` of its nearest in-gamut bin q, i.e.
    ``rebalancing_weights(prior, lam=0.0)``, normalised so that :math:`\\sum_q p_q w_q = 1` (a pixel drawn
    from the prior weighs 1 on average). With the reference ImageNet prior grey pixels weigh least.

    Args:
        true_ab: ground-truth a*, b* in CIELAB units.
        prior: probabilities over the 313 bins of :func:`tinct.color.quantize.ab_bins`, strictly positive
            (renormalised to sum 1); default :func:`tinct.color.quantize.reference_prior`.
        dim: channel axis of ``true_ab``.

    Returns:
        Weights > 0 in the dtype of ``true_ab``, to pass to :meth:`ABAccuracy.update` or :func:`ab_auc`.

    Raises:
        ValueError: if ``prior`` has a zero or negative entry (its bins would get an infinite weight).

    Shape:
        - true_ab: :math:`(*, 2, H, W)`.
        - prior: :math:`(313,)`.
        - Output: :math:`(*, H, W)`.

    Example:
        >>> w = pixel_rebalancing_weights(torch.tensor([[0.0, 0.0], [60.0, 60.0]]), dim=-1)
        >>> bool(w[0] < 1.0 < w[1])
        True

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 3.1 (rebalanced accuracy)
        and equation 4.
    """
    check_channel_dim(true_ab, dim, size=2, name="true_ab")
    if prior is None:
        prior = reference_prior(device=true_ab.device, dtype=torch.float64)
    check_floating(prior, "prior")
    check_shape(prior, [str(NUM_BINS)], "prior")
    if not bool((prior > 0).all()) or not bool(torch.isfinite(prior).all()):
        raise ValueError(
            "pixel_rebalancing_weights: prior must be finite and strictly positive (a bin with p = 0 "
            "would weigh infinitely); smooth its bin counts, e.g. tinct.color.quantize.smooth_prior"
        )
    weights = rebalancing_weights(prior.to(device=true_ab.device, dtype=torch.float64), lam=0.0)
    return weights[nearest_bin(true_ab, dim)].to(true_ab.dtype)


def _threshold_intervals(max_threshold: float, step: float) -> int:
    """The number of threshold steps in [0, max_threshold] (checked: a finite multiple of step)."""
    check_positive(max_threshold, "max_threshold")
    check_positive(step, "step")
    ratio = max_threshold / step
    intervals = round(ratio) if math.isfinite(ratio) else 0
    if intervals < 1 or not math.isclose(intervals * step, max_threshold, rel_tol=1e-9):
        raise ValueError(
            f"max_threshold must be a finite multiple of step, got max_threshold={max_threshold}, step={step}"
        )
    return intervals


def _error_histogram(errors: Tensor, weights: Tensor | None, step: float, num_thresholds: int) -> Tensor:
    """Weighted float64 histogram of ``ceil(error / step)`` clamped to [0, num_thresholds] (see ABAccuracy)."""
    check_tensor(errors, "errors")
    if weights is not None:
        check_tensor(weights, "weights")
        check_same_shape(errors, weights, ("errors", "weights"))
        weights = weights.detach().reshape(-1).to(device=errors.device, dtype=torch.float64)
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
            raise ValueError("ABAccuracy.update: weights must be finite and non-negative")
    flat = errors.detach().reshape(-1)
    size = num_thresholds + 1
    hist = torch.zeros(size, dtype=torch.float64, device=errors.device)
    for start in range(0, flat.numel(), _CHUNK):
        part = flat[start : start + _CHUNK].to(torch.float64)
        scaled = torch.where(torch.isfinite(part), part / step, math.inf)
        index = scaled.ceil_().clamp_(0, num_thresholds).long()
        chunk_weights = None if weights is None else weights[start : start + _CHUNK]
        hist += torch.bincount(index, weights=chunk_weights, minlength=size).to(torch.float64)
    return hist


def _accuracy_curve(hist: Tensor | None, step: float) -> tuple[Tensor, Tensor]:
    """Thresholds and cumulative accuracy of an error histogram (float64, CPU); see ABAccuracy.curve."""
    if hist is None or not bool(hist.sum() > 0):
        raise ValueError("ABAccuracy: no errors accumulated (or only zero weights); call update() first")
    hist = hist.detach().cpu().to(torch.float64)
    thresholds = torch.arange(hist.numel() - 1, dtype=torch.float64) * step
    accuracy = hist[:-1].cumsum(0) / hist.sum()
    return thresholds, accuracy


def _curve_auc(accuracy: Tensor) -> float:
    # Equal spacing: the trapezoid rule over [0, max_threshold] divided by max_threshold.
    area = (accuracy.sum() - 0.5 * (accuracy[0] + accuracy[-1])) / (accuracy.numel() - 1)
    return min(1.0, max(0.0, float(area)))


class ABAccuracy:
    """Streaming cumulative accuracy of ab errors over thresholds 0, step, ..., max_threshold, and its AuC.

    The accuracy at threshold t is the (weighted) fraction of pixels with error <= t; the AuC is the area
    under that curve by the trapezoid rule over [0, max_threshold], divided by max_threshold, so it lies
    in [0, 1] (1 for a perfect colorization). Errors are accumulated in a weighted histogram of
    ``ceil(error / step)`` (the last bin collecting everything beyond max_threshold), so memory is
    constant, updates are a single pass, and the curve is exact: for t = k step,
    ``error <= t`` exactly when ``ceil(error / step) <= k`` (with no rounding at all when step is a power
    of two, such as the default 1). Non-finite errors count as beyond every threshold.

    Args:
        max_threshold: largest threshold, > 0, a multiple of ``step``; the paper uses 150.
        step: spacing of the thresholds, > 0; the paper uses 1.

    Example:
        >>> metric = ABAccuracy()
        >>> metric.update(torch.zeros(4, 4)).update(torch.full((4, 4), 200.0)).auc()
        0.5
        >>> thresholds, accuracy = metric.curve()
        >>> thresholds.shape, accuracy[0].item(), accuracy[-1].item()
        (torch.Size([151]), 0.5, 0.5)

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 3.1 and table 1.
    """

    def __init__(self, max_threshold: float = AUC_MAX_THRESHOLD, step: float = 1.0) -> None:
        intervals = _threshold_intervals(max_threshold, step)
        self.max_threshold = float(max_threshold)
        self.step = float(step)
        self.num_thresholds = intervals + 1
        self._hist: Tensor | None = None

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._hist = None

    @property
    def total_weight(self) -> float:
        """Total weight (the pixel count, without weights) accumulated so far."""
        return 0.0 if self._hist is None else float(self._hist.sum())

    def update(self, errors: Tensor, weights: Tensor | None = None) -> ABAccuracy:
        """Accumulate a batch of errors, e.g. from :func:`ab_errors`.

        Args:
            errors: ab errors, any shape; NaN and inf count as beyond every threshold, negative values as 0.
            weights: finite, non-negative pixel weights of the same shape (e.g.
                :func:`pixel_rebalancing_weights`); default 1 per pixel.

        Returns:
            ``self``, so updates chain.

        Shape:
            - errors: any.
            - weights: same as ``errors``.
        """
        hist = _error_histogram(errors, weights, self.step, self.num_thresholds)
        if self._hist is None:
            self._hist = hist
        else:
            self._hist += hist.to(self._hist.device)
        return self

    def curve(self) -> tuple[Tensor, Tensor]:
        """The cumulative accuracy curve.

        Returns:
            Thresholds ``0, step, ..., max_threshold`` and the weighted fraction of pixels with error <= each,
            both float64 on the CPU.

        Raises:
            ValueError: if nothing (or only zero weight) has been accumulated.

        Shape:
            - Output: :math:`(T,)` and :math:`(T,)`, T = max_threshold / step + 1 (151 by default).
        """
        return _accuracy_curve(self._hist, self.step)

    def auc(self) -> float:
        """Area under the accuracy curve (trapezoid rule) divided by max_threshold, in [0, 1].

        Raises:
            ValueError: if nothing (or only zero weight) has been accumulated.
        """
        return _curve_auc(self.curve()[1])

    def __repr__(self) -> str:
        return (
            f"ABAccuracy(max_threshold={self.max_threshold}, step={self.step}, "
            f"total_weight={self.total_weight})"
        )


class ABAuC(Metric):
    """The AuC of :class:`ABAccuracy` as a :class:`torchmetrics.Metric`: for the epochs of a training run.

    The same histogram as :class:`ABAccuracy` (so the same numbers) is its state, summed over batches and,
    in a distributed run, over processes, so the AuC is that of every pixel seen, not a mean of per-batch
    AuCs (which weighs each batch by its number of images instead of its pixels' total weight: far off for
    the rebalanced AuC, whose weights vary a lot between photos). Its state is not saved in checkpoints.

    Args:
        max_threshold: largest threshold, > 0, a multiple of ``threshold_step``; the paper uses 150.
        threshold_step: spacing of the thresholds, > 0; the paper uses 1.
        **kwargs: :class:`torchmetrics.Metric`'s own.

    Example:
        >>> metric = ABAuC()
        >>> metric.update(torch.zeros(4, 4))
        >>> metric.update(torch.full((4, 4), 200.0))
        >>> metric.compute().item()
        0.5

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 3.1 and table 1.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    hist: Tensor

    def __init__(
        self, max_threshold: float = AUC_MAX_THRESHOLD, threshold_step: float = 1.0, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.num_thresholds = _threshold_intervals(max_threshold, threshold_step) + 1
        self.threshold_step = float(threshold_step)
        self.add_state(
            "hist", default=torch.zeros(self.num_thresholds + 1, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, errors: Tensor, weights: Tensor | None = None) -> None:
        """Accumulate ab errors (and pixel weights), as :meth:`ABAccuracy.update`."""
        hist = _error_histogram(errors, weights, self.threshold_step, self.num_thresholds)
        self.hist += hist.to(self.hist)

    def compute(self) -> Tensor:
        """The AuC in [0, 1] (float64).

        Raises:
            ValueError: if nothing (or only zero weight) has been accumulated.
        """
        return torch.tensor(
            _curve_auc(_accuracy_curve(self.hist, self.threshold_step)[1]), dtype=torch.float64
        )


def ab_auc(
    pred_ab: Tensor,
    true_ab: Tensor,
    weights: Tensor | None = None,
    max_threshold: float = AUC_MAX_THRESHOLD,
    dim: int = -3,
) -> float:
    """AuC of the cumulative ab accuracy of one set of predictions (one-shot :class:`ABAccuracy`).

    Args:
        pred_ab: predicted a*, b* in CIELAB units.
        true_ab: ground-truth a*, b*, same shape.
        weights: per-pixel weights, e.g. :func:`pixel_rebalancing_weights` of ``true_ab`` for the
            class-rebalanced AuC; default 1 per pixel.
        max_threshold: largest threshold in ab units (thresholds are 0, 1, ..., max_threshold).
        dim: channel axis.

    Returns:
        AuC in [0, 1].

    Shape:
        - pred_ab, true_ab: :math:`(*, 2, H, W)`.
        - weights: :math:`(*, H, W)`.

    Example:
        >>> true_ab = torch.zeros(1, 2, 8, 8)
        >>> ab_auc(true_ab, true_ab)
        1.0

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 3.1 and table 1.
    """
    errors = ab_errors(pred_ab, true_ab, dim)
    return ABAccuracy(max_threshold).update(errors, weights).auc()


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio of each image, :math:`10 \\log_{10}(R^2 / \\mathrm{MSE})` in dB.

    Args:
        pred: images, e.g. sRGB in [0, 1].
        target: reference images, same shape.
        data_range: R, the peak-to-peak range of the values (1 for [0, 1] images, 255 for 8-bit ones).

    Returns:
        PSNR in dB per image over its channels and pixels; ``inf`` where the images are identical.

    Shape:
        - pred, target: :math:`(*, C, H, W)`.
        - Output: :math:`(*)`.

    Example:
        >>> psnr(torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 0.6)).round(decimals=4)
        tensor(20.)
    """
    check_floating(pred, "pred")
    check_floating(target, "target")
    check_shape(pred, ["*", "C", "H", "W"], "pred")
    check_same_shape(pred, target, ("pred", "target"))
    check_positive(data_range, "data_range")
    mse = (pred - target).square().mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range**2 / mse)


def colorfulness(rgb: Tensor, dim: int = -3) -> Tensor:
    """Colourfulness metric M of Hasler & Süsstrunk (2003).

    With opponent channels rg = R - G and yb = (R + G) / 2 - B of the sRGB values on a 0-255 scale,
    :math:`M = \\sqrt{\\sigma_{rg}^2 + \\sigma_{yb}^2} + 0.3 \\sqrt{\\mu_{rg}^2 + \\mu_{yb}^2}`, with means
    and population standard deviations over the pixels of each image.

    Args:
        rgb: sRGB-encoded images in [0, 1] (scaled by 255 here, as the metric was fitted on 8-bit images).
        dim: channel axis; the two axes after it (once moved to -3) are the pixels, so ``(*, H, W, 3)`` works
            with ``dim=-1``.

    Returns:
        M >= 0 per image; 0 for a grey image (the metric was fitted to ratings in seven categories, from
        "not" to "extremely" colourful).

    Shape:
        - rgb: :math:`(*, 3, H, W)`.
        - Output: :math:`(*)`.

    Example:
        >>> colorfulness(torch.full((3, 4, 4), 0.5)).item()
        0.0
        >>> red = torch.zeros(3, 4, 4)
        >>> red[0] = 1.0
        >>> round(colorfulness(red).item(), 2)  # 0.3 * 255 * sqrt(1 + 1 / 4)
        85.53

    References:
        Hasler, D., & Süsstrunk, S. (2003). Measuring colourfulness in natural images. Proc. SPIE 5007,
        87-95.
    """
    pos = check_channel_dim(rgb, dim, size=3, name="rgb")
    x = rgb.movedim(pos, -3)
    check_shape(x, ["*", "3", "H", "W"], "rgb (channel axis moved to -3)")
    r, g, b = (255.0 * x).unbind(-3)
    rg = r - g
    yb = 0.5 * (r + g) - b
    var_rg, mean_rg = torch.var_mean(rg, dim=(-2, -1), correction=0)
    var_yb, mean_yb = torch.var_mean(yb, dim=(-2, -1), correction=0)
    return safe_sqrt(var_rg + var_yb) + 0.3 * safe_sqrt(mean_rg.square() + mean_yb.square())


def grayscale_from_lab(lab: Tensor) -> Tensor:
    """The grayscale baseline of colorization: sRGB with the lightness of ``lab`` and a* = b* = 0.

    Args:
        lab: CIELAB images (L* in [0, 100]).

    Returns:
        sRGB in [0, 1] (clipped), three equal channels up to rounding.

    Shape:
        - lab: :math:`(*, 3, H, W)`.
        - Output: :math:`(*, 3, H, W)`.

    Example:
        >>> gray = grayscale_from_lab(torch.tensor([50.0, 40.0, -20.0]).view(1, 3, 1, 1))
        >>> bool((gray - gray[:, :1]).abs().max() < 1e-4)
        True
    """
    check_channel_dim(lab, -3, size=3, name="lab")
    return lab_to_rgb(
        torch.cat([lab[..., :1, :, :], torch.zeros_like(lab[..., 1:, :, :])], dim=-3), clip=True
    )


def _grayscale(rgb: Tensor) -> Tensor:
    """sRGB images with their CIELAB lightness kept and a* = b* = 0."""
    return grayscale_from_lab(rgb_to_lab(rgb))


def _correct(classifier: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, what: str) -> int:
    logits = classifier(images)
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != images.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ShapeError(
            f"classifier on {what} images: expected logits of shape ({images.shape[0]}, classes), got {shape}"
        )
    return int((logits.argmax(-1) == labels.to(logits.device)).sum())


def semantic_interpretability(
    classifier: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    colorize: Callable[[Tensor], Tensor],
    batch_size: int = 32,
) -> dict[str, float]:
    """Top-1 accuracy of a classifier on original, grayscale and recolorised images.

    The "semantic interpretability" test of Zhang et al. (2016): a classifier trained on colour images
    (VGG-16 on ImageNet in the paper) is run on the originals, on their grayscale versions (CIELAB L*
    kept, a* = b* = 0) and on ``colorize`` of the grayscale versions; a good colorization recovers much of
    the accuracy lost to grayscale. Runs under ``torch.no_grad`` in batches; put the classifier in eval
    mode and handle its input normalisation yourself.

    Args:
        classifier: maps sRGB images (b, 3, H, W) in [0, 1] to logits (b, classes).
        images: sRGB-encoded images in [0, 1].
        labels: class indices.
        colorize: maps grayscale sRGB images (b, 3, H, W) in [0, 1] to colorised sRGB images of the same shape.
        batch_size: images per call of ``classifier`` and ``colorize``.

    Returns:
        ``{"original": acc, "grayscale": acc, "recolorized": acc}``, accuracies in [0, 1].

    Shape:
        - images: :math:`(B, 3, H, W)`.
        - labels: :math:`(B,)`, integer.

    Example:
        >>> def redness(x):  # class 1 when red dominates green on average
        ...     score = (x[:, 0] - x[:, 1]).mean((-2, -1))
        ...     return torch.stack([0.1 - score, score - 0.1], dim=-1)
        >>> images = torch.tensor([0.9, 0.2, 0.2]).view(1, 3, 1, 1).expand(4, 3, 8, 8)
        >>> semantic_interpretability(redness, images, torch.ones(4, dtype=torch.long), lambda g: g)
        {'original': 1.0, 'grayscale': 0.0, 'recolorized': 0.0}

    References:
        Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 3.1 and table 1.
    """
    check_floating(images, "images")
    check_shape(images, ["B", "3", "H", "W"], "images")
    check_tensor(labels, "labels")
    check_shape(labels, ["B"], "labels")
    if labels.shape[0] != images.shape[0]:
        raise ShapeError(f"labels: expected {images.shape[0]} labels (one per image), got {labels.shape[0]}")
    if images.shape[0] == 0:
        raise ValueError("semantic_interpretability: no images given")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    correct = {"original": 0, "grayscale": 0, "recolorized": 0}
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size]
            target = labels[start : start + batch_size]
            gray = _grayscale(batch)
            colored = colorize(gray)
            if not isinstance(colored, Tensor) or colored.shape != gray.shape:
                shape = tuple(colored.shape) if isinstance(colored, Tensor) else type(colored).__name__
                raise ShapeError(f"colorize: expected an output of shape {tuple(gray.shape)}, got {shape}")
            correct["original"] += _correct(classifier, batch, target, "original")
            correct["grayscale"] += _correct(classifier, gray, target, "grayscale")
            correct["recolorized"] += _correct(classifier, colored, target, "recolorized")
    return {key: value / images.shape[0] for key, value in correct.items()}
