"""Label-aware augmentation for illuminant estimation.

Geometric transforms (crops, flips, rotations) leave the illuminant unchanged; a global intensity gain
leaves its chromaticity unchanged; **relighting** (per-channel gains applied to the linear image) changes
it, and the label must follow: under the diagonal (von Kries) model, multiplying channel c by ``g_c`` turns
an illuminant ``L`` into ``g * L``. No mean subtraction or per-channel normalisation is applied anywhere,
since that would change the label.

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

__all__ = ["ConstancyAugment", "relight"]


def relight(image: Tensor, illuminant: Tensor, target: Tensor) -> Tensor:
    """Re-render a linear image taken under ``illuminant`` as if lit by ``target`` (diagonal model).

    Args:
        image: linear camera RGB.
        illuminant: the illuminant the image was taken under (any scale).
        target: the new illuminant (any scale; the gains are normalised to keep the green channel).

    Returns:
        ``image * (target / illuminant)``, gains scaled so that green is unchanged.

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
    ) -> None:
        if relight == "dataset" and (illuminants is None or len(illuminants) == 0):
            raise ValueError("relight='dataset' needs the training illuminants")
        self.size, self.crop, self.flip, self.rotate = size, crop, flip, rotate
        self.intensity, self.mode, self.jitter = intensity, relight, jitter
        self.gain_range, self.p_relight = gain_range, p_relight
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
