"""Fast Fourier Color Constancy (Barron & Tsai, CVPR 2017) as a trainable tinct estimator.

An image becomes two normalised histograms of log-chroma ``u = log(g / r)``, ``v = log(g / b)`` (pixels,
and a local absolute deviation image: edges), each **wrapped on a torus** of ``bins x bins`` cells of width
``bin_size`` (64 x 1/32 by default, as the paper). White-balancing by an illuminant translates these
histograms, so the posterior over the illuminant is a convolution followed by a softmax::

    P = softmax(B + sum_c N_c * F_c)          (* = circular convolution, evaluated with FFTs)

with a learned filter ``F_c`` per channel and a learned bias map ``B`` (a prior over illuminants). A
bivariate von Mises distribution is fitted to ``P`` (circular mean of the marginals, covariance of the
offsets around it): its mean is the estimate, its covariance the uncertainty. The torus makes the estimate
ambiguous by whole periods, ``bins * bin_size`` (2 log units); the paper's de-aliasing picks the period
nearest to the Gray World estimate. Here it picks among the periods that fall in the range of the training
illuminants (plus :data:`DEALIAS_MARGIN`), keeping the torus's own period when Gray World's is outside it:
on scenes of one dominant colour Gray World can be more than half a period off (measured on the synthetic
test split: its 8 worst scenes were moved a whole period, 46-50 degrees, by Gray World alone).

Training (:meth:`FFCC.fit`, or ``tinct train`` with ``model.estimator: ffcc``) minimises, with L-BFGS on the
whole training set, first the convex cross-entropy of ``P`` at the true illuminant, then the paper's loss:
the negative log-likelihood of the true illuminant under the fitted von Mises distribution. The
regularisers are the paper's: total variation (squared finite differences on the torus) and squared L2
norms of the filters and of the bias, each with its own weight. As in the paper, the problem is
preconditioned in the Fourier domain: the parameters are ``V`` with ``fft(F) = fft(V) / sqrt(w)``, where
``w = tv * |D|^2 + l2`` is the regulariser's (diagonal) Fourier weight, so the regulariser becomes
``||V||^2`` and L-BFGS sees a well-conditioned problem.

What the paper has that this module leaves out: the "deep" gain and bias maps computed from camera
metadata, the temporal smoothing for video, and the choice of the histogram's origin per camera by hand
(here it is centred on the mean training illuminant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.core.exceptions import ConfigError

__all__ = [
    "FFCC",
    "FFCCBase",
    "FFCCEstimate",
    "fit_von_mises",
    "log_chroma",
    "log_chroma_histograms",
    "uv_to_rgb",
]

_TWO_PI = 2.0 * math.pi


def log_chroma(rgb: Tensor, dim: int = -1) -> Tensor:
    """``(u, v) = (log(g / r), log(g / b))`` of positive RGB along ``dim`` (the paper's log-chroma)."""
    r, g, b = rgb.unbind(dim)
    return torch.stack([torch.log(g) - torch.log(r), torch.log(g) - torch.log(b)], dim=dim)


def uv_to_rgb(uv: Tensor) -> Tensor:
    """Unit-norm RGB ``(..., 3)`` of log-chroma ``(..., 2)``: ``(exp(-u), 1, exp(-v))`` normalised."""
    u, v = uv.unbind(-1)
    rgb = torch.stack([torch.exp(-u), torch.ones_like(u), torch.exp(-v)], dim=-1)
    return F.normalize(rgb, dim=-1)


def _valid_pixels(image: Tensor, mask: Tensor | None, min_intensity: float) -> Tensor:
    """``(B, 1, H, W)`` True where a pixel can be histogrammed: usable, every channel above
    ``min_intensity`` times the image's maximum (log-chroma of near-black pixels is noise)."""
    peak = image.amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-12)
    valid = image.amin(dim=-3, keepdim=True) > min_intensity * peak
    if mask is not None:
        valid = valid & ~mask
    return valid


def _local_deviation(image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """The paper's second channel: per-channel absolute deviation of each pixel from the mean of its 3 x 3
    neighbourhood (usable pixels only), and where it is defined."""
    w = valid.to(image.dtype)
    num = F.avg_pool2d(image * w, 3, stride=1, padding=1, count_include_pad=False)
    den = F.avg_pool2d(w, 3, stride=1, padding=1, count_include_pad=False)
    local = num / den.clamp_min(1e-12)
    dev = (image - local).abs()
    return dev, valid & (den > 0)


BRIGHT_FRACTION = 0.1
"""The third channel's share of each image's usable pixels: the brightest (sum of RGB)."""


def _brightest(image: Tensor, valid: Tensor, fraction: float) -> Tensor:
    """``(B, 1, H, W)`` True for the brightest ``fraction`` of each image's valid pixels (at least one)."""
    b = image.shape[0]
    level = image.sum(dim=1, keepdim=True).masked_fill(~valid, -1.0).reshape(b, -1)
    k = (valid.reshape(b, -1).sum(dim=1).float() * fraction).ceil().clamp_min(1).long()
    ranked = level.sort(dim=1, descending=True).values
    threshold = ranked.gather(1, (k - 1).unsqueeze(1))
    return (level >= threshold).reshape(valid.shape)


def log_chroma_histograms(
    image: Tensor,
    mask: Tensor | None,
    origin: Tensor,
    bins: int = 64,
    bin_size: float = 1.0 / 32.0,
    channels: int = 2,
    min_intensity: float = 1e-3,
) -> Tensor:
    """Normalised log-chroma histograms wrapped on a ``bins x bins`` torus.

    Args:
        image: linear camera RGB ``(B, 3, H, W)``.
        mask: ``(B, 1, H, W)`` True = unusable pixel, or None.
        origin: ``(2,)`` log-chroma ``(u0, v0)`` of the lower corner of cell ``(0, 0)``; the cell of a value
            ``u`` is ``floor((u - u0) / bin_size) mod bins``.
        bins: cells per axis.
        bin_size: cell width in log-chroma units.
        channels: 1 (pixels), 2 (and local absolute deviations: the paper's two) or 3 (and the brightest
            :data:`BRIGHT_FRACTION` of the pixels, the cue of bright-pixel methods such as PCC).
        min_intensity: pixels whose smallest channel is below this fraction of the image's maximum are left
            out (their chroma is noise); a channel with no pixel left is all zeros.

    Returns:
        ``(B, channels, bins, bins)``, each histogram summing to 1 (or 0 when empty); axis -2 is ``u``.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected images (B, 3, H, W), got {tuple(image.shape)}")
    if channels not in (1, 2, 3):
        raise ValueError(f"channels must be 1, 2 or 3, got {channels}")
    image = image.float()
    valid = _valid_pixels(image, mask, min_intensity)
    sources = [(image, valid)]
    if channels >= 2:
        dev, dvalid = _local_deviation(image, valid)
        dpeak = dev.amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-12)
        sources.append((dev, dvalid & (dev.amin(dim=-3, keepdim=True) > 1e-4 * dpeak)))
    if channels == 3:
        sources.append((image, valid & _brightest(image, valid, BRIGHT_FRACTION)))
    b = image.shape[0]
    out = []
    for values, ok in sources:
        uv = log_chroma(values.clamp_min(1e-12), dim=1)  # (B, 2, H, W)
        cell = torch.floor((uv - origin.to(uv).view(1, 2, 1, 1)) / bin_size).long() % bins
        flat = (cell[:, 0] * bins + cell[:, 1]).reshape(b, -1)
        weight = ok.reshape(b, -1).to(image.dtype)
        hist = torch.zeros(b, bins * bins, dtype=image.dtype, device=image.device)
        hist.scatter_add_(1, flat, weight)
        hist = hist / hist.sum(dim=1, keepdim=True).clamp_min(1e-12)
        out.append(hist.view(b, bins, bins))
    return torch.stack(out, dim=1)


def fit_von_mises(p: Tensor, eps: float = 1.0 / 12.0) -> tuple[Tensor, Tensor]:
    """Fit a bivariate von Mises distribution to distributions on a torus (the paper's Eq. 9-10).

    The mean of each axis is the circular mean of that axis' marginal; the covariance is that of the cell
    offsets wrapped around the mean into ``[-bins / 2, bins / 2)``, plus ``eps`` on the diagonal (1/12: the
    variance of a position uniform within one cell).

    Args:
        p: ``(B, bins, bins)`` non-negative, each summing to 1.

    Returns:
        ``(mean (B, 2) in cell units within [0, bins), covariance (B, 2, 2) in cell units squared)``.
    """
    n = p.shape[-1]
    idx = torch.arange(n, dtype=p.dtype, device=p.device)
    theta = idx * (_TWO_PI / n)
    means, offsets = [], []
    for marginal in (p.sum(dim=-1), p.sum(dim=-2)):  # u (axis -2), v (axis -1)
        s = (marginal * torch.sin(theta)).sum(-1)
        c = (marginal * torch.cos(theta)).sum(-1)
        mu = torch.remainder(torch.atan2(s, c) * (n / _TWO_PI), n)
        d = torch.remainder(idx - mu.unsqueeze(-1) + n / 2, n) - n / 2  # (B, n)
        means.append(mu)
        offsets.append(d)
    du, dv = offsets
    suu = (p.sum(-1) * du**2).sum(-1) + eps
    svv = (p.sum(-2) * dv**2).sum(-1) + eps
    suv = (p * du.unsqueeze(-1) * dv.unsqueeze(-2)).sum(dim=(-2, -1))
    cov = torch.stack([torch.stack([suu, suv], -1), torch.stack([suv, svv], -1)], -2)
    return torch.stack(means, dim=-1), cov


DEALIAS_MARGIN = 0.25
"""Log-chroma margin around the training illuminants' range within which de-aliasing may move an estimate."""


def _wrap(x: Tensor, n: int) -> Tensor:
    return torch.remainder(x + n / 2, n) - n / 2


@dataclass
class FFCCEstimate:
    """What :meth:`FFCC.estimate` returns for a batch.

    Attributes:
        rgb: ``(B, 3)`` unit-norm illuminant estimates (camera RGB).
        uv: ``(B, 2)`` their log-chroma (de-aliased).
        covariance: ``(B, 2, 2)`` the fitted von Mises covariance in log-chroma units squared.
        uncertainty: ``(B,)`` degrees: the angle between the estimate and the illuminant one standard
            deviation away along the covariance's principal axis (a per-image confidence: low is sure).
        posterior: ``(B, bins, bins)`` the posterior ``P`` on the torus.
    """

    rgb: Tensor
    uv: Tensor
    covariance: Tensor
    uncertainty: Tensor
    posterior: Tensor


def _estimate(uv: Tensor, cov: Tensor, p: Tensor) -> FFCCEstimate:
    """:class:`FFCCEstimate` of log-chroma estimates, their covariance and the posterior."""
    rgb = uv_to_rgb(uv)
    with torch.no_grad():
        evals, evecs = torch.linalg.eigh(cov.double())
        step = (evecs[..., :, -1] * evals[..., -1:].clamp_min(0).sqrt()).to(uv)
        cos = (rgb * uv_to_rgb(uv + step)).sum(-1).clamp(-1, 1)
        uncertainty = torch.rad2deg(torch.arccos(cos))
    return FFCCEstimate(rgb=rgb, uv=uv, covariance=cov, uncertainty=uncertainty, posterior=p)


class FFCCBase(nn.Module):
    """What FFCC and :class:`~tinct.constancy.ffcc_ensemble.FFCCEnsemble` share: estimates and the training
    objective from their ``histograms``, ``gray_world_uv``, ``estimate_uv``, ``loss_from_histograms`` and
    ``regulariser``."""

    def loss(
        self,
        image: Tensor,
        mask: Tensor | None,
        illuminants: Tensor,
        kind: Literal["convex", "von_mises"] = "von_mises",
    ) -> Tensor:
        """Training objective of a batch: the data loss plus the regulariser."""
        return self.loss_from_histograms(self.histograms(image, mask), illuminants, kind) + self.regulariser()

    def estimate(self, image: Tensor, mask: Tensor | None = None) -> FFCCEstimate:
        """Estimate, covariance, uncertainty and posterior of each image (see :class:`FFCCEstimate`)."""
        return self.estimate_from(self.histograms(image, mask), self.gray_world_uv(image, mask))

    def estimate_from(
        self, hist: Tensor, gray_world_uv: Tensor, spectrum: Tensor | None = None
    ) -> FFCCEstimate:
        """:meth:`estimate` from precomputed histograms and Gray World log-chroma (de-aliasing)."""
        return _estimate(*self.estimate_uv(hist, gray_world_uv, spectrum))

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.estimate(image, mask).rgb


class FFCC(FFCCBase):
    """Fast Fourier Color Constancy: learned histogram filters in the Fourier domain (see the module docs).

    Args:
        bins: cells per log-chroma axis (a power of two keeps the FFTs fast).
        bin_size: cell width in log-chroma units; ``bins * bin_size`` is the period of the torus.
        channels: 1 (pixel histogram) or 2 (pixels and local absolute deviations, the paper's default).
        filter_tv, filter_l2: weights of the total-variation and L2 regularisers of the filters.
        bias_tv, bias_l2: the same for the bias map.
        min_intensity: pixels darker than this fraction of the image maximum are not histogrammed.
        offset: where the torus's cells start, in fractions of a cell along u and v, relative to the
            placement :meth:`center_on` chooses (:class:`FFCCEnsemble` offsets its members' grids).

    Shape:
        ``forward(image (B, 3, H, W), mask (B, 1, H, W) | None) -> (B, 3)`` unit-norm illuminants.
    """

    def __init__(
        self,
        bins: int = 64,
        bin_size: float = 1.0 / 32.0,
        channels: int = 2,
        filter_tv: float = 1e-7,
        filter_l2: float = 1e-8,
        bias_tv: float = 1e-6,
        bias_l2: float = 1e-8,
        min_intensity: float = 1e-3,
        offset: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        super().__init__()
        if bins < 4:
            raise ConfigError(f"FFCC needs at least 4 bins per axis, got {bins}")
        if not bin_size > 0:
            raise ConfigError(f"FFCC bin_size must be positive, got {bin_size}")
        if channels not in (1, 2, 3):
            raise ConfigError(f"FFCC channels must be 1, 2 or 3, got {channels}")
        for name, value in (("filter_l2", filter_l2), ("bias_l2", bias_l2)):
            if not value > 0:  # the constant (DC) component is regularised by l2 alone
                raise ConfigError(f"FFCC {name} must be positive, got {value}")
        for name, value in (("filter_tv", filter_tv), ("bias_tv", bias_tv)):
            if value < 0:
                raise ConfigError(f"FFCC {name} must be >= 0, got {value}")
        self.bins, self.bin_size, self.channels = bins, float(bin_size), channels
        self.min_intensity = float(min_intensity)
        self.offset = (float(offset[0]), float(offset[1]))  # the state's origin holds it once centred
        self.filter_v = nn.Parameter(torch.zeros(channels, bins, bins))
        self.bias_v = nn.Parameter(torch.zeros(bins, bins))
        self.register_buffer("origin", torch.full((2,), -bins * bin_size / 2))
        # (low, high) log-chroma per axis of the training illuminants, widened by DEALIAS_MARGIN: the
        # periods de-aliasing may choose from (unbounded until center_on sees training illuminants)
        self.register_buffer("support", torch.tensor([[-math.inf, -math.inf], [math.inf, math.inf]]))
        self.register_buffer("regularisers", torch.tensor([filter_tv, filter_l2, bias_tv, bias_l2]))
        k = torch.arange(bins, dtype=torch.float32)
        d2 = 4 * torch.sin(math.pi * k / bins) ** 2  # |1 - exp(-2 pi i k / n)|^2: a finite difference
        # on the half spectrum of rfft2 (the histograms and filters are real)
        self.register_buffer("_d2", d2[:, None] + d2[None, : bins // 2 + 1], persistent=False)

    # -- parameters -------------------------------------------------------------------------------
    @property
    def _shape(self) -> tuple[int, int]:
        return (self.bins, self.bins)

    def _precondition(self, tv: Tensor, l2: Tensor) -> Tensor:
        return 1.0 / torch.sqrt(tv * self._d2 + l2)

    @property
    def filters(self) -> Tensor:
        """The filters ``F`` ``(channels, bins, bins)`` in the histogram domain."""
        tv, l2 = self.regularisers[0], self.regularisers[1]
        return torch.fft.irfft2(torch.fft.rfft2(self.filter_v) * self._precondition(tv, l2), s=self._shape)

    @property
    def bias(self) -> Tensor:
        """The bias map ``B`` ``(bins, bins)``: a learned prior over illuminants on the torus."""
        tv, l2 = self.regularisers[2], self.regularisers[3]
        return torch.fft.irfft2(torch.fft.rfft2(self.bias_v) * self._precondition(tv, l2), s=self._shape)

    def regulariser(self) -> Tensor:
        """The paper's regularisers, TV + L2 of filters and bias, i.e. ``||V_F||^2 + ||V_B||^2``."""
        return self.filter_v.square().sum() + self.bias_v.square().sum()

    @torch.no_grad()
    def scale_regularisers(self, factor: float) -> None:
        """Multiply the four regulariser weights by ``factor`` (``model.ffcc.tune`` chooses it)."""
        self.regularisers.mul_(factor)

    def center_on(self, illuminants: Tensor) -> None:
        """Place the torus so the mean log-chroma of ``illuminants`` ``(N, 3)`` is at its centre."""
        all_uv = log_chroma(illuminants.double().clamp_min(1e-12))
        uv = (
            all_uv.mean(dim=0)
            + torch.tensor(self.offset, dtype=all_uv.dtype, device=all_uv.device) * self.bin_size
        )
        self.origin.copy_((uv - self.bins * self.bin_size / 2).to(self.origin))
        low, high = all_uv.amin(dim=0) - DEALIAS_MARGIN, all_uv.amax(dim=0) + DEALIAS_MARGIN
        self.support.copy_(torch.stack([low, high]).to(self.support))

    # -- forward ----------------------------------------------------------------------------------
    def histograms(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, channels, bins, bins)`` histograms of the images on this model's torus."""
        return log_chroma_histograms(
            image, mask, self.origin, self.bins, self.bin_size, self.channels, self.min_intensity
        )

    def logits(self, hist: Tensor, spectrum: Tensor | None = None) -> Tensor:
        """``B + sum_c N_c * F_c`` (circular convolution by FFT): ``(B, bins, bins)`` unnormalised log P.

        ``spectrum``: ``rfft2(hist)`` when already computed (training reuses it at every iteration).
        """
        if spectrum is None:
            spectrum = torch.fft.rfft2(hist)
        tv, l2 = self.regularisers[0], self.regularisers[1]
        filters_fft = torch.fft.rfft2(self.filter_v) * self._precondition(tv, l2)
        conv = torch.fft.irfft2((spectrum * filters_fft.unsqueeze(0)).sum(dim=1), s=self._shape)
        return conv + self.bias

    def _target_cells(self, illuminants: Tensor) -> Tensor:
        """Continuous cell coordinates ``(B, 2)`` in [0, bins) of the true illuminants."""
        uv = log_chroma(illuminants.float().clamp_min(1e-12))
        return torch.remainder((uv - self.origin) / self.bin_size - 0.5, self.bins)

    def loss_from_histograms(
        self,
        hist: Tensor,
        illuminants: Tensor,
        kind: Literal["convex", "von_mises"] = "von_mises",
        spectrum: Tensor | None = None,
    ) -> Tensor:
        """Mean data loss over the batch (without the regulariser).

        ``convex``: cross-entropy of ``P`` at the true illuminant (bilinearly split over its four cells);
        ``von_mises``: negative log-likelihood of the true illuminant under the fitted von Mises.
        """
        logits = self.logits(hist, spectrum)
        t = self._target_cells(illuminants)
        n = self.bins
        if kind == "convex":
            logp = torch.log_softmax(logits.flatten(1), dim=1).view_as(logits)
            base = torch.floor(t)
            frac = t - base
            i0, j0 = base[:, 0].long() % n, base[:, 1].long() % n
            i1, j1 = (i0 + 1) % n, (j0 + 1) % n
            rows = torch.arange(len(t), device=t.device)
            fu, fv = frac[:, 0], frac[:, 1]
            ce = -(
                (1 - fu) * (1 - fv) * logp[rows, i0, j0]
                + (1 - fu) * fv * logp[rows, i0, j1]
                + fu * (1 - fv) * logp[rows, i1, j0]
                + fu * fv * logp[rows, i1, j1]
            )
            return ce.mean()
        p = torch.softmax(logits.flatten(1), dim=1).view_as(logits)
        mu, cov = fit_von_mises(p)
        d = _wrap(t - mu, n).unsqueeze(-1)  # (B, 2, 1)
        maha = (d.transpose(-1, -2) @ torch.linalg.solve(cov, d)).reshape(-1)
        return (0.5 * maha + 0.5 * torch.logdet(cov)).mean()

    @torch.no_grad()
    def gray_world_uv(self, image: Tensor, mask: Tensor | None) -> Tensor:
        """``(B, 2)`` log-chroma of the Gray World estimate (usable pixels), for de-aliasing."""
        w = _valid_pixels(image.float(), mask, 0.0).to(torch.float32)
        mean = (image.float() * w).sum(dim=(-2, -1)) / w.sum(dim=(-2, -1)).clamp_min(1e-12)
        return log_chroma(mean.clamp_min(1e-12))

    def estimate_uv(
        self, hist: Tensor, gray_world_uv: Tensor, spectrum: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The de-aliased log-chroma estimates ``(B, 2)``, their covariance ``(B, 2, 2)`` (log-chroma units
        squared) and the posterior ``(B, bins, bins)``: :meth:`estimate_from` without the uncertainty (an
        eigendecomposition, which ONNX has no operator for; :mod:`tinct.constancy.export` uses this)."""
        p = torch.softmax(self.logits(hist, spectrum).flatten(1), dim=1)
        p = p.view(-1, self.bins, self.bins)
        mu, cov = fit_von_mises(p)
        uv = self.origin + (mu + 0.5) * self.bin_size
        period = self.bins * self.bin_size
        # de-aliasing: of the estimates one period apart on the torus, the one nearest to Gray World, among
        # those in the range of the training illuminants (a scene of one dominant colour can put Gray World
        # more than half a period away, and the nearest period would then be a wrong one)
        nearest = uv + period * torch.round((gray_world_uv - uv) / period).detach()
        low, high = self.support[0].to(uv), self.support[1].to(uv)
        inside = (nearest >= low) & (nearest <= high)
        here = (uv >= low) & (uv <= high)
        uv = torch.where(inside | ~here, nearest, uv)
        return uv, cov * self.bin_size**2, p

    # -- training without a Trainer -----------------------------------------------------------------
    def fit(
        self,
        images: Tensor,
        masks: Tensor | None,
        illuminants: Tensor,
        iters: int = 60,
        convex_iters: int = 30,
    ) -> FFCC:
        """Train on a whole training set with L-BFGS: ``convex_iters`` on the convex loss, then ``iters`` on
        the von Mises loss (the paper's schedule). Seconds on a CPU for a few thousand thumbnails.

        Args:
            images: ``(N, 3, H, W)`` linear training images.
            masks: ``(N, 1, H, W)`` True = unusable, or None.
            illuminants: ``(N, 3)`` ground truth (any positive scale).

        Returns:
            ``self``, trained (the torus centred on the mean training illuminant first).
        """
        if len(images) != len(illuminants):
            raise ValueError(f"got {len(images)} images but {len(illuminants)} illuminants")
        if len(images) == 0:
            raise ValueError("FFCC.fit needs at least one training image")
        self.center_on(illuminants)
        with torch.no_grad():
            hist = torch.cat(
                [
                    self.histograms(images[i : i + 256], None if masks is None else masks[i : i + 256])
                    for i in range(0, len(images), 256)
                ]
            )
        target = illuminants.float()
        spectrum = torch.fft.rfft2(hist)
        for kind, n_iter in (("convex", convex_iters), ("von_mises", iters)):
            if n_iter <= 0:
                continue
            opt = torch.optim.LBFGS(
                [self.filter_v, self.bias_v],
                lr=1.0,
                max_iter=n_iter,
                history_size=20,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-9,
                tolerance_change=1e-12,
            )

            def closure(kind: str = kind, opt: torch.optim.LBFGS = opt) -> Tensor:
                opt.zero_grad()
                data = self.loss_from_histograms(hist, target, kind, spectrum)  # type: ignore[arg-type]
                loss = data + self.regulariser()
                loss.backward()
                return loss

            opt.step(closure)
        return self

    def extra_repr(self) -> str:
        tv, l2, btv, bl2 = (float(x) for x in self.regularisers)
        shifted = f", offset={self.offset}" if any(self.offset) else ""
        return (
            f"bins={self.bins}, bin_size={self.bin_size:g}, channels={self.channels}, "
            f"filter_tv={tv:g}, filter_l2={l2:g}, bias_tv={btv:g}, bias_l2={bl2:g}{shifted}"
        )
