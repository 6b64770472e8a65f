"""Camera metadata as network input: exposure values with a known / unknown mask, a camera id and the camera's
device string (hashed character n-grams, so an unseen phone model still lands near similar names), encoded
into a vector and a set of tokens for the fusions of :mod:`tinct.patch.fusion`."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tinct.core.checks import check_floating, check_shape
from tinct.core.exceptions import ConfigError, ShapeError, TypeCheckError

__all__ = ["HashedNgramEmbedding", "MetadataEncoder", "ngram_ids"]


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
        # Not while torch.export traces (ONNX export): a data-dependent branch cannot be traced, and
        # onnxruntime's Gather refuses an out-of-range id itself.
        exporting = torch.compiler.is_exporting()
        if camera.numel() and not exporting and (camera.min() < 0 or camera.max() > self.num_cameras):
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
