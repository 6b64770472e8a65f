"""Networks that predict the CIELAB colour of a skin patch from a photo crop plus camera metadata.

A backbone (:mod:`tinct.nn.backbones`, or ``"timm/<model>"``) turns the sRGB crop into a feature map; a
:class:`~tinct.patch.metadata.MetadataEncoder` turns exposure metadata (with a known/unknown mask), the camera id and optionally the
camera's device string into a vector and a set of tokens; a fusion of :mod:`tinct.patch.fusion` merges them into one
vector, to which the optional "mean features" (robust patch colour statistics) are concatenated; an MLP head
predicts ``Lab = lab_mean + lab_scale * out``.

Normalisation: the image is standardised with fixed constants, ``(image - 0.5) / 0.25`` per channel (close to
ImageNet's statistics, so local pretrained weights still see familiar inputs). Metadata and mean features
enter unscaled: like every tinct model, standardise them in the data transforms.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tinct.core.checks import check_choice, check_floating, check_shape
from tinct.core.exceptions import ConfigError, UnknownNameError
from tinct.nn.backbones import BACKBONES, create_backbone, timm_backbone
from tinct.patch.fusion import FUSIONS, create_fusion
from tinct.patch.metadata import MetadataEncoder

__all__ = ["PatchColorNet"]

_IMAGE_MEAN, _IMAGE_STD = 0.5, 0.25


def _build_backbone(
    name: str, width: int, depth: int, weights: str | None, partial: bool = False
) -> nn.Module:
    if name.startswith("timm/"):
        return timm_backbone(name.removeprefix("timm/"), weights, partial=partial)
    if name not in BACKBONES:
        valid = ", ".join(map(repr, BACKBONES.names()))
        raise UnknownNameError(f"unknown backbone {name!r}; valid choices: {valid}, or 'timm/<model>'")
    kwargs = {"width": width, "depth": depth} if name == "small_cnn" else {}
    return create_backbone(name, in_channels=3, weights=weights, partial=partial, **kwargs)


class PatchColorNet(nn.Module):
    """sRGB patch crop (+ camera metadata, + mean features) -> CIELAB colour of the patch.

    The last linear layer of the head starts at zero, so the first prediction is exactly ``lab_mean`` for every
    input: CIEDE2000 and its gradients are well behaved near typical skin colours, whereas a random start can
    land far outside the gamut, where the loss is flat or badly conditioned. ``lab_mean`` and ``lab_scale``
    are buffers, so checkpoints carry the output scaling.

    Args:
        num_cameras: known cameras (ids ``1..num_cameras``; ``0`` = unknown).
        backbone: a :data:`~tinct.nn.backbones.BACKBONES` name or ``"timm/<model>"`` (needs timm).
        fusion: one of :data:`FUSIONS`; ``"none"`` is used (and recorded in :attr:`fusion_name`) whenever
            ``use_metadata`` is False.
        width, depth: ``small_cnn`` size.
        weights: local backbone weights file (never downloaded).
        weights_partial: accept a ``weights`` file that matches the backbone only in part (warned).
        mean_features: concatenate ``stats`` (``stats_dim`` features) to the fused vector; ``stats`` is
            then required (and ignored when this is False).
        device_embedding: embed the device strings (:class:`HashedNgramEmbedding`).
        meta_hidden, meta_dim, token_dim: :class:`MetadataEncoder` sizes.
        hidden, dropout: head MLP (``hidden = 0``: a single linear layer).
        lab_mean, lab_scale: output ``Lab = lab_mean + lab_scale * out``.

    Shape:
        - image: ``(B, 3, S, S)`` sRGB in [0, 1]; meta, meta_mask: ``(B, 4)``; camera: ``(B,)``;
          stats: ``(B, stats_dim)``; device: ``B`` strings.
        - Output: ``(B, 3)`` L*, a*, b* (L* in [0, 100] for sensible inputs, not clamped).

    Example:
        >>> net = PatchColorNet(num_cameras=3, width=4, depth=2)
        >>> lab = net(torch.rand(2, 3, 32, 32), torch.zeros(2, 4), torch.ones(2, 4, dtype=torch.bool),
        ...           torch.tensor([0, 2]))
        >>> lab.shape, lab[0].tolist()
        (torch.Size([2, 3]), [60.0, 12.0, 18.0])
    """

    def __init__(
        self,
        num_cameras: int,
        *,
        backbone: str = "small_cnn",
        fusion: str = "concat",
        width: int = 16,
        depth: int = 4,
        weights: str | None = None,
        weights_partial: bool = False,
        use_metadata: bool = True,
        mean_features: bool = False,
        stats_dim: int = 12,
        device_embedding: bool = False,
        meta_hidden: int = 64,
        meta_dim: int = 64,
        token_dim: int = 64,
        hidden: int = 128,
        dropout: float = 0.0,
        lab_mean: Sequence[float] = (60.0, 12.0, 18.0),
        lab_scale: Sequence[float] = (15.0, 6.0, 6.0),
    ) -> None:
        super().__init__()
        check_choice(fusion, FUSIONS, "fusion")
        if len(lab_mean) != 3 or len(lab_scale) != 3:
            raise ConfigError(
                f"lab_mean and lab_scale need 3 values, got {list(lab_mean)}, {list(lab_scale)}"
            )
        self.fusion_name = fusion if use_metadata else "none"
        self.backbone = _build_backbone(backbone, width, depth, weights, weights_partial)
        channels = int(self.backbone.num_features)  # type: ignore[arg-type]
        self.meta: MetadataEncoder | None = None
        if self.fusion_name != "none":
            self.meta = MetadataEncoder(
                num_cameras,
                hidden=meta_hidden,
                out_dim=meta_dim,
                device_embedding=device_embedding,
                token_dim=token_dim,
                with_tokens=self.fusion_name == "cross_attention",
            )
        self.fusion = create_fusion(self.fusion_name, channels, meta_dim, token_dim)
        self.mean_features, self.stats_dim = mean_features, stats_dim
        in_dim = self.fusion.out_features + (stats_dim if mean_features else 0)
        layers: list[nn.Module] = []
        if hidden > 0:
            layers += [nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout)]
            in_dim = hidden
        last = nn.Linear(in_dim, 3)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(*layers, last)
        self.register_buffer("lab_mean", torch.tensor([float(v) for v in lab_mean]))
        self.register_buffer("lab_scale", torch.tensor([float(v) for v in lab_scale]))

    def forward_features(self, image: Tensor) -> Tensor:
        """Backbone feature map ``(B, C, h, w)`` of the standardised image ``(image - 0.5) / 0.25``."""
        check_floating(image, "image")
        check_shape(image, ["B", "3", "H", "W"], "image")
        return self.backbone.forward_features((image - _IMAGE_MEAN) / _IMAGE_STD)  # type: ignore[operator]

    def forward(
        self,
        image: Tensor,
        meta: Tensor | None = None,
        meta_mask: Tensor | None = None,
        camera: Tensor | None = None,
        stats: Tensor | None = None,
        device: Sequence[str | None] | None = None,
    ) -> Tensor:
        """Lab ``(B, 3)``. Missing ``meta`` means every feature unknown, a missing ``meta_mask`` every
        feature known, a missing ``camera`` unknown cameras (id 0)."""
        fmap = self.forward_features(image)
        b = image.shape[0]
        vec = tokens = None
        if self.meta is not None:
            nf = self.meta.num_features
            if meta is None:
                meta = image.new_zeros(b, nf)
                meta_mask = torch.zeros(b, nf, dtype=torch.bool, device=image.device)
            check_shape(meta, [str(b), str(nf)], "meta")
            if meta_mask is None:
                meta_mask = torch.ones(b, nf, dtype=torch.bool, device=image.device)
            if camera is None:
                camera = torch.zeros(b, dtype=torch.long, device=image.device)
            vec, tokens = self.meta.encode(meta.to(image.dtype), meta_mask, camera, device)
        z = self.fusion(fmap, vec, tokens)
        if self.mean_features:
            if stats is None:
                raise ValueError(
                    f"this PatchColorNet uses mean features (mean_features=True): pass stats of shape "
                    f"({b}, {self.stats_dim})"
                )
            check_floating(stats, "stats")
            check_shape(stats, [str(b), str(self.stats_dim)], "stats")
            z = torch.cat([z, stats.to(z.dtype)], dim=-1)
        return self.lab_mean + self.lab_scale * self.head(z)
