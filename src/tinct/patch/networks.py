"""Networks that predict the CIELAB colour of a skin patch from a photo crop plus camera metadata.

A backbone (:mod:`tinct.nn.backbones`, or ``"timm/<model>"``) turns the sRGB crop into a feature map; a
:class:`MetadataEncoder` turns exposure metadata (with a known/unknown mask), the camera id and optionally the
camera's device string into a vector and a set of tokens; a :class:`Fusion` (``FUSIONS``) merges them into one
vector, to which the optional "mean features" (robust patch colour statistics) are concatenated; an MLP head
predicts ``Lab = lab_mean + lab_scale * out``.

Normalisation: the image is standardised with fixed constants, ``(image - 0.5) / 0.25`` per channel (close to
ImageNet's statistics, so local pretrained weights still see familiar inputs). Metadata and mean features
enter unscaled: like every tinct model, standardise them in the data transforms.
"""

from __future__ import annotations

import abc
import functools
import zlib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tinct.core.checks import check_choice, check_floating, check_shape
from tinct.core.exceptions import ConfigError, ShapeError, TypeCheckError, UnknownNameError
from tinct.nn.backbones import BACKBONES, create_backbone, load_weights

__all__ = [
    "FUSIONS",
    "ConcatFusion",
    "CrossAttentionFusion",
    "FiLMFusion",
    "Fusion",
    "HashedNgramEmbedding",
    "MetadataEncoder",
    "NoFusion",
    "PatchColorNet",
    "create_fusion",
    "ngram_ids",
]

FUSIONS = ("none", "concat", "film", "cross_attention")
_IMAGE_MEAN, _IMAGE_STD = 0.5, 0.25


@functools.lru_cache(maxsize=4096)
def _ngram_ids(text: str, ngrams: tuple[int, ...], buckets: int) -> tuple[int, ...]:
    norm = " ".join(text.lower().split())
    if not norm:
        return ()
    marked = f"<{norm}>"
    return tuple(
        zlib.crc32(marked[i : i + n].encode("utf-8")) % buckets
        for n in ngrams
        for i in range(len(marked) - n + 1)
    )


def ngram_ids(text: str | None, ngrams: Sequence[int] = (2, 3), buckets: int = 1024) -> list[int]:
    """Bucket ids of the character n-grams of ``text``: stable across processes, machines and Python versions.

    The text is lowercased, runs of whitespace collapse to one space, and ``<``/``>`` mark its ends; each
    n-gram's UTF-8 bytes are hashed with ``zlib.crc32`` (Python's ``hash()`` is salted per process).

    Example:
        >>> ngram_ids("ab", ngrams=(2,), buckets=1024) == [zlib.crc32(g) % 1024 for g in (b"<a", b"ab", b"b>")]
        True
        >>> ngram_ids(None), ngram_ids("  ")
        ([], [])
    """
    return list(_ngram_ids(text or "", tuple(ngrams), buckets))


class HashedNgramEmbedding(nn.Module):
    """Embedding of free-form device strings with no vocabulary: the mean of hashed character n-grams.

    Unseen strings still embed near similar seen ones ("Canon EOS 5D Mark III" near "... Mark II"), and
    nothing is downloaded. Empty or ``None`` strings give a zero vector.

    Shape:
        ``B`` strings -> ``(B, dim)``.
    """

    def __init__(self, buckets: int = 1024, dim: int = 16, ngrams: tuple[int, ...] = (2, 3)) -> None:
        super().__init__()
        self.buckets, self.dim, self.ngrams = buckets, dim, tuple(ngrams)
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")

    def forward(self, strings: Sequence[str | None]) -> Tensor:
        ids: list[int] = []
        offsets: list[int] = []
        for text in strings:
            offsets.append(len(ids))
            ids.extend(_ngram_ids(text or "", self.ngrams, self.buckets))
        dev = self.bag.weight.device
        return self.bag(torch.tensor(ids, dtype=torch.long, device=dev), torch.tensor(offsets, device=dev))


class MetadataEncoder(nn.Module):
    """Camera metadata -> a vector (MLP) and, with ``with_tokens``, a token set for cross-attention.

    The vector is an MLP of ``concat[meta * mask, mask, camera embedding(, device embedding)]``. Tokens are one
    per metadata feature (``value * w_f + id_f`` when known, a learned per-feature "missing" token when not),
    one camera token and, with ``device_embedding``, one device token. Unknown values never reach the output:
    they are replaced with ``torch.where``, so even a NaN there is harmless.

    Args:
        num_cameras: known cameras; ids are ``1..num_cameras`` and ``0`` means unknown.
        num_features: metadata features ``F``.
        with_tokens: build the token path (only cross-attention uses it; without it no parameter sits idle).

    Shape:
        - meta: ``(B, F)`` float; meta_mask: ``(B, F)`` bool (True = known); camera: ``(B,)`` long;
          device: ``B`` strings or ``None``.
        - Output: ``(B, out_dim)``; :meth:`tokens`: ``(B, F + 1 (+1), token_dim)``.
    """

    def __init__(
        self,
        num_cameras: int,
        num_features: int = 4,
        *,
        camera_dim: int = 8,
        hidden: int = 64,
        out_dim: int = 64,
        device_embedding: bool = False,
        ngram_buckets: int = 1024,
        ngram_dim: int = 16,
        token_dim: int = 64,
        with_tokens: bool = True,
    ) -> None:
        super().__init__()
        self.num_cameras, self.num_features, self.out_dim = num_cameras, num_features, out_dim
        self.camera = nn.Embedding(num_cameras + 1, camera_dim)
        self.device_embed = HashedNgramEmbedding(ngram_buckets, ngram_dim) if device_embedding else None
        in_dim = 2 * num_features + camera_dim + (ngram_dim if device_embedding else 0)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        self.with_tokens = with_tokens
        if with_tokens:
            self.value_weight = nn.Parameter(torch.randn(num_features, token_dim) * 0.02)
            self.feature_id = nn.Parameter(torch.randn(num_features, token_dim) * 0.02)
            self.missing = nn.Parameter(torch.randn(num_features, token_dim) * 0.02)
            self.camera_token = nn.Linear(camera_dim, token_dim)
            self.device_token = nn.Linear(ngram_dim, token_dim) if device_embedding else None

    def _check(self, meta: Tensor, meta_mask: Tensor, camera: Tensor) -> Tensor:
        check_floating(meta, "meta")
        check_shape(meta, ["B", str(self.num_features)], "meta")
        check_shape(meta_mask, [str(s) for s in meta.shape], "meta_mask")
        check_shape(camera, [str(meta.shape[0])], "camera")
        if camera.is_floating_point():
            raise TypeCheckError(f"camera: expected integer ids, got dtype {camera.dtype}")
        if camera.numel() and (camera.min() < 0 or camera.max() > self.num_cameras):
            raise ValueError(
                f"camera: ids must lie in [0, {self.num_cameras}] (0 = unknown), "
                f"got [{int(camera.min())}, {int(camera.max())}]"
            )
        return meta_mask.bool()

    def encode(
        self, meta: Tensor, meta_mask: Tensor, camera: Tensor, device: Sequence[str | None] | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``(vector, tokens)``, sharing the embeddings; tokens are ``None`` without ``with_tokens``."""
        known = self._check(meta, meta_mask, camera)
        values = torch.where(known, meta, torch.zeros_like(meta))
        cam = self.camera(camera.long())
        parts = [values, known.to(meta.dtype), cam]
        dev = None
        if self.device_embed is not None:
            device = [None] * meta.shape[0] if device is None else device
            if len(device) != meta.shape[0]:
                raise ShapeError(f"device: expected {meta.shape[0]} strings, got {len(device)}")
            dev = self.device_embed(device).to(meta.dtype)
            parts.append(dev)
        vec = self.mlp(torch.cat(parts, dim=-1))
        if not self.with_tokens:
            return vec, None
        feat = values[..., None] * self.value_weight + self.feature_id
        toks = [
            torch.where(known[..., None], feat, self.missing.expand_as(feat)),
            self.camera_token(cam)[:, None],
        ]
        if self.device_token is not None and dev is not None:
            toks.append(self.device_token(dev)[:, None])
        return vec, torch.cat(toks, dim=1)

    def forward(
        self, meta: Tensor, meta_mask: Tensor, camera: Tensor, device: Sequence[str | None] | None = None
    ) -> Tensor:
        return self.encode(meta, meta_mask, camera, device)[0]

    def tokens(
        self, meta: Tensor, meta_mask: Tensor, camera: Tensor, device: Sequence[str | None] | None = None
    ) -> Tensor:
        """Metadata tokens ``(B, T, token_dim)`` for :class:`CrossAttentionFusion`."""
        if not self.with_tokens:
            raise ConfigError("this MetadataEncoder was built with with_tokens=False")
        return self.encode(meta, meta_mask, camera, device)[1]  # type: ignore[return-value]


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


class _TimmBackbone(nn.Module):
    """A timm model as a tinct backbone: ``forward_features`` always returns ``(B, C, h, w)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_features = int(model.num_features)  # type: ignore[arg-type]

    def forward_features(self, x: Tensor) -> Tensor:
        f = self.model.forward_features(x)  # type: ignore[operator]
        if f.ndim == 3:  # transformer tokens (B, N, C) -> a 1 x N map
            return f.transpose(1, 2).unsqueeze(2)
        if f.shape[1] != self.num_features and f.shape[-1] == self.num_features:  # channels-last (Swin)
            return f.permute(0, 3, 1, 2)
        return f


def _build_backbone(name: str, width: int, depth: int, weights: str | None) -> nn.Module:
    if name.startswith("timm/"):
        try:
            import timm
        except ImportError:
            raise ConfigError(
                f"backbone {name!r} needs timm, which is not installed (pip install timm)"
            ) from None
        model = timm.create_model(name.removeprefix("timm/"), pretrained=False, num_classes=0, global_pool="")
        if weights:
            load_weights(model, weights)
        return _TimmBackbone(model)
    if name not in BACKBONES:
        valid = ", ".join(map(repr, BACKBONES.names()))
        raise UnknownNameError(f"unknown backbone {name!r}; valid choices: {valid}, or 'timm/<model>'")
    kwargs = {"width": width, "depth": depth} if name == "small_cnn" else {}
    return create_backbone(name, in_channels=3, weights=weights, **kwargs)


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
        self.backbone = _build_backbone(backbone, width, depth, weights)
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
