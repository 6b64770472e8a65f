"""Synthetic scenes generated on the fly: the embedded default data of tinct's quickstart and tests.

``MondrianDataset`` draws Land's classic "Mondrian" scenes (overlapping flat rectangles of random surface
reflectance) under a random illuminant, in linear camera RGB (taken as linear sRGB primaries), with smooth
shading, shot noise and sensor saturation. Every sample is a deterministic function of ``(seed, index)``,
so datasets are reproducible without being stored and workers can generate in parallel.

References:
    Land & McCann, "Lightness and retinex theory", JOSA 61(1), 1971.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from tinct.spectral.locus import sample_illuminants

__all__ = ["MondrianDataset", "render_mondrian"]


def render_mondrian(
    generator: torch.Generator,
    size: int = 32,
    n_patches: int = 24,
    noise: float = 0.01,
) -> Tensor:
    """Render one Mondrian reflectance map ``(3, size, size)`` with values in [0.02, 0.95] times smooth shading."""
    refl = torch.full((3, size, size), 0.5)
    refl *= 0.2 + 0.6 * torch.rand(3, 1, 1, generator=generator)
    for _ in range(n_patches):
        y0, x0 = torch.randint(0, size, (2,), generator=generator).tolist()
        h, w = torch.randint(max(2, size // 8), max(3, size // 2), (2,), generator=generator).tolist()
        colour = 0.02 + 0.93 * torch.rand(3, 1, 1, generator=generator) ** 1.5
        refl[:, y0 : y0 + h, x0 : x0 + w] = colour
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    gx, gy = (torch.rand(2, generator=generator) - 0.5).tolist()
    shading = (1 + 0.4 * (gx * xx + gy * yy)).clamp_min(0.2)
    return refl * shading


class MondrianDataset(Dataset[dict[str, Tensor]]):
    """Random Mondrian scenes under random illuminants, for illuminant estimation.

    Each item is ``{"image": (3, size, size) float32 linear RGB in [0, 1], "illuminant": (3,) unit norm,
    "mask": (1, size, size) bool, True where a pixel is saturated}``.

    Args:
        n: number of scenes.
        size: image side in pixels.
        seed: base seed; item ``i`` is generated from ``seed * 1_000_003 + i``.
        cct_range: range of correlated colour temperatures (K) of the illuminants.
        noise: standard deviation of the additive sensor noise, relative to white.
        cache: keep generated scenes in memory (about 12 KB each at 32x32), so only the first epoch pays
            for generation.

    Example:
        >>> ds = MondrianDataset(4, size=16, seed=0)
        >>> ds[0]["image"].shape, ds[0]["illuminant"].shape
        (torch.Size([3, 16, 16]), torch.Size([3]))
    """

    def __init__(
        self,
        n: int,
        size: int = 32,
        seed: int = 0,
        cct_range: tuple[float, float] = (2500.0, 10000.0),
        noise: float = 0.005,
        cache: bool = True,
    ) -> None:
        if n < 1 or size < 4:
            raise ValueError(f"MondrianDataset needs n >= 1 and size >= 4, got n={n}, size={size}")
        self.n, self.size, self.seed = n, size, seed
        self.cct_range, self.noise = cct_range, noise
        self._cache: dict[int, dict[str, Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        refl = render_mondrian(g, self.size)
        illum = sample_illuminants(1, g, self.cct_range)[0]
        exposure = 0.5 + 0.7 * torch.rand((), generator=g)
        image = refl * (illum / illum.max()).view(3, 1, 1) * exposure
        image = image + self.noise * torch.randn(image.shape, generator=g) * image.sqrt()
        mask = (image >= 1.0).any(dim=0, keepdim=True)
        item = {"image": image.clamp(0.0, 1.0), "illuminant": illum, "mask": mask}
        if self._cache is not None:
            self._cache[index] = item
        return item
