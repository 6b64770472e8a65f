"""Label-aware augmentation for illuminant estimation.

Geometric transforms (crops, flips, rotations) leave the illuminant unchanged; a global intensity gain
leaves its chromaticity unchanged; **relighting** (per-channel gains applied to the linear image) changes
it, and the label must follow: under the diagonal (von Kries) model, multiplying channel c by ``g_c`` turns
an illuminant ``L`` into ``g * L``. No mean subtraction or per-channel normalisation is applied anywhere,
since that would change the label.

Gains above 1 (intensity or relighting) would create values a camera can never record. The constancy data
path stores linear images scaled so that the sensor saturates at 1.0 (:func:`tinct.color.raw.normalize_raw`
divides by ``saturation - black``; Mondrian scenes clip at 1.0), with a mask of unusable pixels that
includes the clipped ones. After its photometric gains, :class:`ConstancyAugment` therefore clips at the
saturation level and masks every pixel that reached it in any channel, as the camera (and FC4's
augmentation) would (:func:`clip_saturated`).

References:
    Hu, Y., Wang, B., Lin, S. (2017). FC4: Fully convolutional color constancy with confidence-weighted
    pooling. CVPR (augmentation by random per-channel rescaling of image and label).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from tinct.core.checks import check_channel_dim

__all__ = ["ConstancyAugment", "clip_saturated", "relight"]


def relight(image: Tensor, illuminant: Tensor, target: Tensor) -> Tensor:
    """Re-render a linear image taken under ``illuminant`` as if lit by ``target`` (diagonal model).

    Args:
        image: linear camera RGB.
        illuminant: the illuminant the image was taken under (any scale).
        target: the new illuminant (any scale; the gains are normalised to keep the green channel).

    Returns:
        ``image * (target / illuminant)``, gains scaled so that green is unchanged. Not clipped: values
        may exceed the sensor's saturation level; :func:`clip_saturated` clips and masks them.

    Shape:
        - image: :math:`(*, 3, H, W)`
        - illuminant, target: :math:`(*, 3)`

    Example:
        >>> img = torch.ones(1, 3, 2, 2)
        >>> relight(img, torch.tensor([[1.0, 1.0, 1.0]]), torch.tensor([[2.0, 1.0, 0.5]]))[0, :, 0, 0]
        tensor([2.0000, 1.0000, 0.5000])
    """
    check_channel_dim(image, -3, name="image")
    check_channel_dim(illuminant, -1, name="illuminant")
    check_channel_dim(target, -1, name="target")
    gains = target / illuminant.clamp_min(1e-12)
    gains = gains / gains[..., 1:2].clamp_min(1e-12)
    return image * gains[..., :, None, None]


def clip_saturated(image: Tensor, mask: Tensor, saturation: float = 1.0) -> tuple[Tensor, Tensor]:
    """Clip a linear image at the sensor's saturation level and mask the pixels that reached it.

    A pixel with any channel at or above ``saturation`` has lost its chromaticity (the camera clipped it),
    so it joins the unusable pixels, exactly as :func:`tinct.color.raw.normalize_raw` flags the pixels
    saturated in the raw file.

    Args:
        image: linear camera RGB, e.g. after gains.
        mask: True where a pixel is unusable.
        saturation: the saturation level in the image's units (1.0 in the constancy data path).

    Returns:
        ``(image.clamp(max=saturation), mask | saturated)``.

    Shape:
        - image: :math:`(*, 3, H, W)`; mask: :math:`(*, 1, H, W)` bool.
        - output: the same shapes.

    Example:
        >>> img = torch.tensor([0.5, 1.2, 0.9]).view(1, 3, 1, 1)
        >>> out, m = clip_saturated(img, torch.zeros(1, 1, 1, 1, dtype=torch.bool))
        >>> out.flatten(), m.item()
        (tensor([0.5000, 1.0000, 0.9000]), True)
    """
    check_channel_dim(image, -3, name="image")
    saturated = (image >= saturation).any(dim=-3, keepdim=True)
    return image.clamp(max=saturation), mask | saturated


class ConstancyAugment:
    """Random crop, flip, rotation, intensity gain and relighting of a batch, applied on its device.

    Args:
        size: output side (crops are resized back to it).
        crop: smallest crop side as a fraction of the input side (1.0 disables cropping).
        flip: random horizontal flips.
        rotate: largest rotation in degrees (0 disables; corners outside the frame are masked).
        intensity: range of the global intensity gain (``(1, 1)`` disables).
        relight: ``"dataset"`` relights towards a random training illuminant (jittered by ``jitter``, so
            the labels keep the camera's illuminant distribution), ``"random"`` applies independent gains
            in ``gain_range`` per channel (FC4), ``"none"`` disables.
        illuminants: ``(N, 3)`` training illuminants for ``relight="dataset"``.
        jitter: relative per-channel jitter of the target illuminant.
        gain_range: per-channel gain range for ``relight="random"``.
        p_relight: probability of relighting a sample.
        saturation: the sensor's saturation level in the batch's units (1.0 in the constancy data path):
            after the intensity and relighting gains, values are clipped there and the clipped pixels are
            masked (:func:`clip_saturated`). A sample whose gains are all <= 1 keeps its mask.
    """

    def __init__(
        self,
        size: int,
        crop: float = 0.7,
        flip: bool = True,
        rotate: float = 15.0,
        intensity: tuple[float, float] = (0.6, 1.4),
        relight: Literal["dataset", "random", "none"] = "dataset",
        illuminants: Tensor | None = None,
        jitter: float = 0.05,
        gain_range: tuple[float, float] = (0.6, 1.4),
        p_relight: float = 0.8,
        saturation: float = 1.0,
    ) -> None:
        if relight == "dataset" and (illuminants is None or len(illuminants) == 0):
            raise ValueError("relight='dataset' needs the training illuminants")
        self.size, self.crop, self.flip, self.rotate = size, crop, flip, rotate
        self.intensity, self.mode, self.jitter = intensity, relight, jitter
        self.gain_range, self.p_relight, self.saturation = gain_range, p_relight, saturation
        self.illuminants = None if illuminants is None else illuminants.float()

    def __call__(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Augment a batch ``{"image": (B,3,H,W), "mask": (B,1,H,W), "illuminant": (B,3), ...}`` (vectorised)."""
        image, mask, illum = batch["image"], batch["mask"], batch["illuminant"]
        b, dev, dt = image.shape[0], image.device, image.dtype

        def u(lo: float, hi: float, *shape: int) -> Tensor:
            return lo + (hi - lo) * torch.rand(b, *shape, device=dev, dtype=dt)

        if self.rotate > 0 or self.crop < 1.0 or image.shape[-1] != self.size:
            image, mask = self._geometry(image, mask, u)
        if self.flip:
            flip = torch.rand(b, device=dev) < 0.5
            image = torch.where(flip[:, None, None, None], image.flip(-1), image)
            mask = torch.where(flip[:, None, None, None], mask.flip(-1), mask)
        if self.intensity != (1.0, 1.0):
            image = image * u(*self.intensity, 1, 1, 1)
        if self.mode != "none":
            if self.mode == "dataset":
                assert self.illuminants is not None
                pool = self.illuminants.to(device=dev, dtype=dt)
                target = pool[torch.randint(len(pool), (b,), device=dev)] * u(
                    1 - self.jitter, 1 + self.jitter, 3
                )
            else:
                target = illum * u(*self.gain_range, 3)
            keep = (torch.rand(b, 1, device=dev) >= self.p_relight).to(dt)
            target = keep * illum + (1 - keep) * target / target.norm(dim=-1, keepdim=True) * illum.norm(
                dim=-1, keepdim=True
            )
            image = relight(image, illum, target)
            illum = target / target.norm(dim=-1, keepdim=True)
        # once, after all gains: the camera clips the product of exposure and illuminant gains
        image, mask = clip_saturated(image, mask, self.saturation)
        return {**batch, "image": image, "mask": mask, "illuminant": illum}

    def _geometry(self, image: Tensor, mask: Tensor, u: object) -> tuple[Tensor, Tensor]:
        """One affine resampling: a random rotation and a random square crop, resized to ``size``."""
        b = image.shape[0]
        angle = u(-self.rotate, self.rotate).mul(math.pi / 180) if self.rotate > 0 else image.new_zeros(b)  # type: ignore[operator]
        scale = u(self.crop, 1.0) if self.crop < 1.0 else image.new_ones(b)  # type: ignore[operator]
        # the crop stays inside the frame: its centre moves by at most (1 - scale) of the half-side
        cx, cy = ((torch.rand_like(scale) * 2 - 1) * (1 - scale) for _ in range(2))
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos, -sin, cx], -1), torch.stack([sin, cos, cy], -1)], -2)
        grid = F.affine_grid(theta, [b, 1, self.size, self.size], align_corners=False)
        out = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # Cells that fall outside the frame or touch an unusable pixel are unusable.
        usable = F.grid_sample(
            (~mask).to(image.dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return out, usable < 0.999
