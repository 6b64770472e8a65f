"""Fusions of an image feature map with metadata into one vector: none (image only), concat, FiLM and
cross-attention (:data:`FUSIONS`); FiLM and cross-attention are exactly the image-only path at initialisation."""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from tinct.core.checks import check_choice
from tinct.core.exceptions import ConfigError

__all__ = [
    "FUSIONS",
    "ConcatFusion",
    "CrossAttentionFusion",
    "FiLMFusion",
    "Fusion",
    "NoFusion",
    "create_fusion",
]

FUSIONS = ("none", "concat", "film", "cross_attention")


def _pool(fmap: Tensor) -> Tensor:
    return fmap.mean(dim=(-2, -1))


class Fusion(nn.Module, abc.ABC):
    """Merges a feature map with metadata into one vector.

    Shape:
        fmap ``(B, C, h, w)``, meta_vec ``(B, meta_dim)``, meta_tokens ``(B, T, token_dim)`` ->
        ``(B, out_features)``.
    """

    out_features: int

    @abc.abstractmethod
    def forward(self, fmap: Tensor, meta_vec: Tensor | None, meta_tokens: Tensor | None) -> Tensor:
        """The fused vector of one batch."""

    @staticmethod
    def _need(x: Tensor | None, what: str, fusion: str) -> Tensor:
        if x is None:
            raise ValueError(f"{fusion} fusion needs {what}, got None")
        return x


class NoFusion(Fusion):
    """Image only: global average pooling, ``(B, C)``."""

    def __init__(self, channels: int, *_: object, **__: object) -> None:
        super().__init__()
        self.out_features = channels

    def forward(
        self, fmap: Tensor, meta_vec: Tensor | None = None, meta_tokens: Tensor | None = None
    ) -> Tensor:
        return _pool(fmap)


class ConcatFusion(Fusion):
    """``concat[pool(fmap), meta_vec]``, ``(B, C + meta_dim)``."""

    def __init__(self, channels: int, meta_dim: int, *_: object, **__: object) -> None:
        super().__init__()
        self.out_features = channels + meta_dim

    def forward(self, fmap: Tensor, meta_vec: Tensor | None, meta_tokens: Tensor | None = None) -> Tensor:
        return torch.cat([_pool(fmap), self._need(meta_vec, "meta_vec", "concat")], dim=-1)


class FiLMFusion(Fusion):
    """Feature-wise linear modulation: ``pool(fmap * (1 + gamma) + beta)``, ``(gamma, beta) = Linear(meta_vec)``.

    The linear map starts at zero, so the fusion is exactly :class:`NoFusion` at initialisation and metadata
    enters only as training finds it useful. With average pooling this equals modulating the pooled vector;
    its worth over concatenation is the multiplicative interaction.
    """

    def __init__(self, channels: int, meta_dim: int, *_: object, **__: object) -> None:
        super().__init__()
        self.out_features = channels
        self.film = nn.Linear(meta_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, fmap: Tensor, meta_vec: Tensor | None, meta_tokens: Tensor | None = None) -> Tensor:
        gamma, beta = self.film(self._need(meta_vec, "meta_vec", "film")).chunk(2, dim=-1)
        return _pool(fmap * (1 + gamma[..., None, None]) + beta[..., None, None])


class CrossAttentionFusion(Fusion):
    """Metadata tokens attend to image tokens; a zero-initialised gate adds the result to the pooled map.

    Image tokens are the ``h * w`` feature vectors projected to ``token_dim`` plus a learned linear function
    of their normalised ``(x, y)`` position (any map size, ``h * w = 1`` included). Queries are the metadata
    tokens and, when given, ``meta_vec`` projected as one more token. A pre-LayerNorm residual attention block
    (``q + attn(LN(q), LN(kv))``, so query values, e.g. exposure, pass through) is mean-pooled over queries,
    projected to ``C`` and gated: ``out = pool(fmap) + gate * proj(...)`` with ``gate = 0`` at init, so the
    fusion is exactly :class:`NoFusion` at initialisation.
    """

    def __init__(self, channels: int, meta_dim: int, token_dim: int, heads: int = 4) -> None:
        super().__init__()
        if token_dim % heads:
            raise ConfigError(f"token_dim ({token_dim}) must be divisible by heads ({heads})")
        self.out_features = channels
        self.image_proj = nn.Linear(channels, token_dim)
        self.position = nn.Linear(2, token_dim)
        self.meta_proj = nn.Linear(meta_dim, token_dim)
        self.norm_q = nn.LayerNorm(token_dim)
        self.norm_kv = nn.LayerNorm(token_dim)
        self.attn = nn.MultiheadAttention(token_dim, heads, batch_first=True)
        self.out_proj = nn.Linear(token_dim, channels)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, fmap: Tensor, meta_vec: Tensor | None, meta_tokens: Tensor | None) -> Tensor:
        q = self._need(meta_tokens, "meta_tokens", "cross_attention")
        if meta_vec is not None:
            q = torch.cat([q, self.meta_proj(meta_vec)[:, None]], dim=1)
        h, w = fmap.shape[-2:]
        ys = torch.linspace(-1, 1, h, device=fmap.device, dtype=fmap.dtype) if h > 1 else fmap.new_zeros(1)
        xs = torch.linspace(-1, 1, w, device=fmap.device, dtype=fmap.dtype) if w > 1 else fmap.new_zeros(1)
        pos = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(h * w, 2)
        kv = self.norm_kv(self.image_proj(fmap.flatten(2).transpose(1, 2)) + self.position(pos))
        attended = q + self.attn(self.norm_q(q), kv, kv, need_weights=False)[0]
        return _pool(fmap) + self.gate * self.out_proj(attended.mean(dim=1))


def create_fusion(name: str, channels: int, meta_dim: int, token_dim: int, *, heads: int = 4) -> Fusion:
    """Build the fusion ``name`` (one of :data:`FUSIONS`); an unknown name raises, listing them."""
    check_choice(name, FUSIONS, "fusion")
    if name == "cross_attention":
        return CrossAttentionFusion(channels, meta_dim, token_dim, heads)
    return {"none": NoFusion, "concat": ConcatFusion, "film": FiLMFusion}[name](channels, meta_dim)
