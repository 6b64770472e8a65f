"""Contrastive pretraining of an illuminant embedding: the network must encode the light, not the scene.

Each training image (the *anchor*, under illuminant :math:`L_a`) gets two relit companions, built inside
the batch by per-channel (von Kries) gains, up to a global scale (:func:`tinct.constancy.transforms.relight`):

- the *positive*: another scene of the batch, relit to the anchor's illuminant (gains :math:`L_a / L_p`);
- the *negative*: the anchor's own scene, relit to a different illuminant :math:`L_n` (gains
  :math:`L_n / L_a`) at least ``min_angle`` degrees away from :math:`L_a`.

An embedding that puts the anchor nearer its positive (same light, other scene) than its negative (same
scene, other light) has to encode the illuminant. The backbone is the illuminant task's (same names and
arguments, stored under ``backbone.*``), so a checkpoint of this task initialises
:class:`tinct.constancy.task.IlluminantTask` directly; a projection MLP maps its pooled features to a
unit-norm embedding that is discarded after pretraining.

Losses: the triplet margin loss (Schroff et al. 2015), or InfoNCE with several negatives per anchor (the
anchor's scene under several other illuminants), as CLCC does (Lo et al. 2021).

References:
    F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet: a unified embedding for face recognition and
    clustering", CVPR 2015.
    Y.-C. Lo, C.-C. Chang, H.-C. Chiu, Y.-H. Huang, C.-P. Chen, Y.-L. Chang, K. Jou, "CLCC: contrastive
    learning for color constancy", CVPR 2021.
"""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from tinct.color.illuminant import angular_error
from tinct.constancy.task import IlluminantDataConfig, IlluminantDataModule, build_backbone, preprocess_input
from tinct.constancy.transforms import clip_saturated, relight
from tinct.core.checks import check_choice, check_shape
from tinct.core.config import ExperimentConfig, StrictModel
from tinct.engine.task import TASKS, ReportColumn, ReportTable, Task
from tinct.nn.backbones import BackboneName
from tinct.nn.heads import PooledRegressionHead

__all__ = [
    "DISTANCES",
    "EmbeddingModelConfig",
    "IlluminantEmbeddingConfig",
    "IlluminantEmbeddingTask",
    "InfoNCELoss",
    "ProjectionHead",
    "TripletMarginLoss",
    "embedding_distance",
    "info_nce_loss",
    "make_contrastive_views",
    "make_triplets",
    "triplet_margin_loss",
]

DISTANCES = ("cosine", "l2")


# -- view construction ------------------------------------------------------------------------------
def _derangement(n: int, generator: torch.Generator | None) -> Tensor:
    # A random cyclic permutation (one n-cycle) has no fixed point for any n >= 2.
    order = torch.randperm(n, generator=generator)
    out = torch.empty_like(order)
    out[order] = order.roll(-1)
    return out


def _shifted_illuminants(
    illuminants: Tensor, n: int, min_angle: float, generator: torch.Generator | None, candidates: int = 8
) -> Tensor:
    """``n`` random positive illuminants per row, each at least ``min_angle`` degrees away from it.

    Each is a point on the great circle from the row's illuminant towards a random positive direction
    (uniform on the chromaticity simplex), at an angle drawn in ``[1, 4] * max(min_angle, 1)`` degrees.
    The arc stays in the positive octant (which is geodesically convex), so every gain is positive. The
    three primaries are always among the directions: the farthest is at least 54.7 degrees away, so any
    ``min_angle <= 45`` is reachable.
    """
    b = illuminants.shape[0]
    ref = illuminants.detach().double().cpu()
    ref = (ref / ref.norm(dim=-1, keepdim=True).clamp_min(1e-12))[:, None, None].expand(
        b, n, candidates + 3, 3
    )
    simplex = (
        -torch.rand(b, n, candidates, 3, generator=generator, dtype=torch.float64).clamp_min(1e-12).log()
    )
    axes = torch.eye(3, dtype=torch.float64).expand(b, n, 3, 3)
    towards = torch.cat([simplex / simplex.norm(dim=-1, keepdim=True), axes], dim=2)
    span = torch.deg2rad(angular_error(towards, ref))
    aim = torch.deg2rad(
        max(min_angle, 1.0) * (1 + 3 * torch.rand(b, n, generator=generator, dtype=torch.float64))
    )
    far_enough = span[..., :candidates] >= aim[..., None]
    # The first random direction that reaches the aimed angle, else the farthest direction of all.
    pick = torch.where(far_enough.any(dim=-1), far_enough.double().argmax(dim=-1), span.argmax(dim=-1))
    span = span.gather(-1, pick[..., None])[..., 0]
    towards = towards.gather(2, pick[..., None, None].expand(b, n, 1, 3))[:, :, 0]
    # 0.99: stop short of an axis, where a channel would be 0.
    theta = torch.minimum(aim, 0.99 * span)[..., None]
    span = span[..., None]
    out = (torch.sin(span - theta) * ref[:, :, 0] + torch.sin(theta) * towards) / torch.sin(span)
    out = out / out.norm(dim=-1, keepdim=True)
    return out.to(device=illuminants.device, dtype=illuminants.dtype)


def _clipped(image: Tensor) -> Tensor:
    """Relit linear images clipped at saturation 1.0, with the clipped pixels zeroed (masked)."""
    mask = torch.zeros_like(image[..., :1, :, :], dtype=torch.bool)
    image, mask = clip_saturated(image, mask)
    return image.masked_fill(mask, 0.0)


def make_contrastive_views(
    images: Tensor,
    illuminants: Tensor,
    n_negatives: int = 1,
    generator: torch.Generator | None = None,
    min_angle: float = 3.0,
) -> dict[str, Tensor]:
    r"""Anchors, positives (other scene, anchor's light) and ``n_negatives`` negatives (anchor's scene, other light).

    Positive scenes follow a random permutation of the batch without fixed points. Each negative
    illuminant is drawn uniformly among the batch's illuminants at least ``min_angle`` degrees from the
    anchor's (so negatives follow the data's own distribution of lights); rows with no such illuminant in
    the batch get random positive illuminants 1 to 4 times ``max(min_angle, 1)`` degrees away instead.

    Args:
        images: linear RGB images (masked pixels already zeroed, so they stay zero after relighting).
        illuminants: their illuminants (any positive scale).
        n_negatives: negatives per anchor.
        generator: random generator (CPU); ``None`` uses the global one.
        min_angle: least angle in degrees between an anchor's and a negative's illuminant, in [0, 45].

    Returns:
        ``anchor`` (the images), ``positive``, ``negatives``, ``anchor_illuminant`` (the illuminants),
        ``positive_scene_index`` (which image each positive was relit from) and ``negative_illuminants``
        (unit norm).

    Shape:
        - images: :math:`(B, 3, H, W)`; illuminants: :math:`(B, 3)`.
        - anchor, positive: :math:`(B, 3, H, W)`; negatives: :math:`(B, N, 3, H, W)`;
          positive_scene_index: :math:`(B,)`; negative_illuminants: :math:`(B, N, 3)`.

    Note:
        Relit views are clipped at the sensor's saturation level 1.0 as a camera would record them, and the
        pixels that reach it in any channel are zeroed like the masked pixels of the anchors
        (:func:`tinct.constancy.transforms.clip_saturated`): a gain above 1 never makes a super-white whose
        chromaticity no camera could record. A batch of one has no other scene, so its positive is the
        anchor itself.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> v = make_contrastive_views(torch.rand(4, 3, 8, 8), torch.rand(4, 3) + 0.1, 2, generator=g)
        >>> v["negatives"].shape, bool((v["positive_scene_index"] != torch.arange(4)).all())
        (torch.Size([4, 2, 3, 8, 8]), True)
    """
    check_shape(images, ["B", "3", "H", "W"], "images")
    check_shape(illuminants, [str(images.shape[0]), "3"], "illuminants")
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
    if not 0 <= min_angle <= 45:
        raise ValueError(f"min_angle must be in [0, 45] degrees, got {min_angle}")
    b, device = images.shape[0], images.device
    src = _derangement(b, generator).to(device) if b > 1 else torch.zeros(1, dtype=torch.long, device=device)
    positive = _clipped(relight(images[src], illuminants[src], illuminants))

    unit = illuminants.detach() / illuminants.detach().norm(dim=-1, keepdim=True).clamp_min(1e-8)
    pair = angular_error(unit[:, None].expand(b, b, 3), unit[None, :].expand(b, b, 3))
    allowed = (pair >= min_angle) & ~torch.eye(b, dtype=torch.bool, device=device)
    has = allowed.any(dim=1)
    # Rows without a candidate draw from a dummy uniform row and are overwritten below.
    weights = torch.where(has[:, None], allowed, torch.ones_like(allowed)).double().cpu()
    pick = torch.multinomial(weights, n_negatives, replacement=True, generator=generator).to(device)
    negative_illuminants = unit[pick]
    if not bool(has.all()):
        shifted = _shifted_illuminants(unit, n_negatives, min_angle, generator)
        negative_illuminants = torch.where(has[:, None, None], negative_illuminants, shifted)
    negatives = _clipped(relight(images[:, None], illuminants[:, None], negative_illuminants))
    return {
        "anchor": images,
        "positive": positive,
        "negatives": negatives,
        "anchor_illuminant": illuminants,
        "positive_scene_index": src,
        "negative_illuminants": negative_illuminants,
    }


def make_triplets(
    images: Tensor,
    illuminants: Tensor,
    generator: torch.Generator | None = None,
    min_angle: float = 3.0,
) -> dict[str, Tensor]:
    """One (anchor, positive, negative) triplet per image: :func:`make_contrastive_views` with one negative.

    Returns:
        ``anchor``, ``positive``, ``negative`` :math:`(B, 3, H, W)`, ``anchor_illuminant``,
        ``negative_illuminant`` :math:`(B, 3)` and ``positive_scene_index`` :math:`(B,)`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> t = make_triplets(torch.rand(3, 3, 8, 8), torch.rand(3, 3) + 0.1, generator=g)
        >>> sorted(t)  # doctest: +NORMALIZE_WHITESPACE
        ['anchor', 'anchor_illuminant', 'negative', 'negative_illuminant', 'positive',
         'positive_scene_index']
    """
    v = make_contrastive_views(images, illuminants, 1, generator, min_angle)
    return {
        "anchor": v["anchor"],
        "positive": v["positive"],
        "negative": v["negatives"][:, 0],
        "anchor_illuminant": v["anchor_illuminant"],
        "positive_scene_index": v["positive_scene_index"],
        "negative_illuminant": v["negative_illuminants"][:, 0],
    }


# -- losses -----------------------------------------------------------------------------------------
def embedding_distance(a: Tensor, b: Tensor, distance: str = "cosine", dim: int = -1) -> Tensor:
    r"""Distance between embeddings: ``cosine`` :math:`1 - \cos(a, b)` or ``l2`` :math:`\lVert a - b \rVert_2`.

    Note:
        Range [0, 2] for ``cosine``; [0, 2] for ``l2`` between unit vectors (where it equals
        :math:`\sqrt{2 (1 - \cos)}`). ``l2`` has a zero (finite) gradient at ``a == b``.

    Example:
        >>> a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        >>> embedding_distance(a, b), embedding_distance(a, b, "l2")
        (tensor(1.), tensor(1.4142))
    """
    check_choice(distance, DISTANCES, "distance")
    if distance == "cosine":
        return 1 - F.cosine_similarity(a, b, dim=dim, eps=1e-8)
    sq = (a - b).pow(2).sum(dim=dim)
    positive = sq > 0
    return torch.where(positive, torch.where(positive, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 0.2,
    distance: str = "cosine",
    reduction: str = "mean",
) -> Tensor:
    r"""Triplet margin loss :math:`\max(0, d(a, p) - d(a, n) + m)` (Schroff et al. 2015).

    Args:
        anchor, positive, negative: embeddings.
        margin: :math:`m \ge 0`.
        distance: ``"cosine"`` or ``"l2"`` (:func:`embedding_distance`).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        :math:`(B, D)` each -> scalar, or :math:`(B,)` with ``reduction="none"``.

    Example:
        >>> a, p, n = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
        >>> triplet_margin_loss(a, p, n), triplet_margin_loss(a, n, p)
        (tensor(0.), tensor(1.2000))

    References:
        F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet", CVPR 2015.
    """
    check_choice(reduction, ("mean", "sum", "none"), "reduction")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    gap = embedding_distance(anchor, positive, distance) - embedding_distance(anchor, negative, distance)
    loss = (gap + margin).clamp_min(0)
    return loss if reduction == "none" else getattr(loss, reduction)()


def info_nce_loss(
    anchor: Tensor,
    positive: Tensor,
    negatives: Tensor,
    temperature: float = 0.1,
    distance: str = "cosine",
    reduction: str = "mean",
) -> Tensor:
    r"""InfoNCE: cross-entropy of picking the positive among it and the negatives, logits :math:`-d / \tau`.

    With ``cosine`` the logits are :math:`(\cos - 1) / \tau`, the usual :math:`\cos / \tau` shifted by a
    constant (softmax is unchanged).

    Shape:
        anchor, positive :math:`(B, D)`; negatives :math:`(B, N, D)` -> scalar (or :math:`(B,)`).

    Example:
        >>> a = torch.tensor([[1.0, 0.0]])
        >>> info_nce_loss(a, a, torch.tensor([[[0.0, 1.0]]]), temperature=1.0)  # log(1 + e^-1)
        tensor(0.3133)

    References:
        A. van den Oord, Y. Li, O. Vinyals, "Representation learning with contrastive predictive coding",
        arXiv:1807.03748, 2018. Lo et al., "CLCC", CVPR 2021.
    """
    check_choice(reduction, ("mean", "sum", "none"), "reduction")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    check_shape(negatives, [str(anchor.shape[0]), "N", str(anchor.shape[-1])], "negatives")
    d_pos = embedding_distance(anchor, positive, distance)
    d_neg = embedding_distance(anchor[:, None], negatives, distance)
    logits = -torch.cat([d_pos[:, None], d_neg], dim=1) / temperature
    target = torch.zeros(anchor.shape[0], dtype=torch.long, device=anchor.device)
    return F.cross_entropy(logits, target, reduction=reduction)


class TripletMarginLoss(nn.Module):
    """Module twin of :func:`triplet_margin_loss`."""

    def __init__(self, margin: float = 0.2, distance: str = "cosine", reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.distance, self.reduction = margin, distance, reduction

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.distance, self.reduction)


class InfoNCELoss(nn.Module):
    """Module twin of :func:`info_nce_loss`."""

    def __init__(self, temperature: float = 0.1, distance: str = "cosine", reduction: str = "mean") -> None:
        super().__init__()
        self.temperature, self.distance, self.reduction = temperature, distance, reduction

    def forward(self, anchor: Tensor, positive: Tensor, negatives: Tensor) -> Tensor:
        return info_nce_loss(anchor, positive, negatives, self.temperature, self.distance, self.reduction)


# -- model and task ---------------------------------------------------------------------------------
class ProjectionHead(PooledRegressionHead):
    """Global average pooling, an MLP (one hidden ReLU layer unless ``hidden == 0``), L2 normalisation.

    Shape:
        ``(B, C, h, w)`` -> ``(B, out_features)`` of unit norm.
    """

    def __init__(self, in_features: int, out_features: int = 128, hidden: int = 128) -> None:
        super().__init__(in_features, out_features, hidden=hidden)

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(super().forward(features), dim=-1, eps=1e-8)


class EmbeddingModelConfig(StrictModel):
    """Backbone (as in the illuminant task), projector, loss and view construction."""

    backbone: BackboneName = "small_cnn"
    width: int = Field(16, ge=1)
    depth: int = Field(4, ge=1)
    weights: str | None = None
    weights_partial: bool = False
    input_space: Literal["linear", "log"] = "linear"
    embed_dim: int = Field(128, ge=1)
    projector_hidden: int = Field(128, ge=0)
    distance: Literal["cosine", "l2"] = "cosine"
    margin: float = Field(0.2, ge=0)
    loss: Literal["triplet", "infonce"] = "triplet"
    n_negatives: int = Field(4, ge=1)
    temperature: float = Field(0.1, gt=0)
    min_angle: float = Field(3.0, ge=0, le=45)


class IlluminantEmbeddingConfig(ExperimentConfig):
    task: Literal["illuminant_embedding"] = "illuminant_embedding"
    data: IlluminantDataConfig = IlluminantDataConfig()
    model: EmbeddingModelConfig = EmbeddingModelConfig()


@TASKS.register("illuminant_embedding")
class IlluminantEmbeddingTask(Task):
    r"""Learn a unit-norm illuminant embedding from relit in-batch views (see the module docstring).

    ``step`` returns the loss, the anchors' embeddings as ``output``, scalar terms ``accuracy`` (share of
    anchors nearer their positive than every negative), ``pos_distance`` and ``neg_distance``, and as
    per-sample ``errors`` the gap :math:`d(a, p) - \min_k d(a, n_k)` (negative when the anchor is ordered
    correctly). Validation views are drawn from a generator seeded by the batch, so ``val/loss`` (the
    monitor) is comparable across epochs.
    """

    Config = IlluminantEmbeddingConfig
    monitor = "val/loss"
    monitor_mode = "min"
    error_name = "gap"
    report_table = ReportTable(
        "Embedding table",
        (
            ReportColumn("Loss", "loss"),
            ReportColumn("Accuracy", "accuracy", 100.0),
            ReportColumn("Gap mean", "gap_mean"),
            ReportColumn("Gap median", "gap_median"),
        ),
        note="accuracy: % of anchors nearer their positive than every negative; gap: d(a, p) - min d(a, n)",
    )

    def __init__(self, cfg: IlluminantEmbeddingConfig) -> None:
        super().__init__(cfg)
        m = cfg.model
        self.backbone = build_backbone(m)
        self.projector = ProjectionHead(self.backbone.num_features, m.embed_dim, m.projector_hidden)

    def preprocess(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        # The illuminant task's own pipeline, so pretrained features meet the same inputs when fine-tuned.
        return preprocess_input(image, mask, self.cfg.model.input_space)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.projector(features)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.forward_head(self.forward_features(self.preprocess(image, mask)))

    def _view_generator(self, batch: dict[str, Tensor]) -> torch.Generator | None:
        if self.training:
            return None
        offset = int(batch["index"].sum()) if "index" in batch else 0
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + offset)

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        m = self.cfg.model
        image = batch["image"]
        if batch.get("mask") is not None:
            image = image.masked_fill(batch["mask"], 0.0)
        n_neg = m.n_negatives if m.loss == "infonce" else 1
        v = make_contrastive_views(
            image, batch["illuminant"], n_neg, self._view_generator(batch), m.min_angle
        )
        b = image.shape[0]
        # One pass over all views, so BatchNorm statistics are shared by anchors, positives and negatives.
        z = self(torch.cat([v["anchor"], v["positive"], v["negatives"].flatten(0, 1)]))
        za, zp, zn = z[:b], z[b : 2 * b], z[2 * b :].view(b, n_neg, -1)
        d_pos = embedding_distance(za, zp, m.distance)
        d_neg = embedding_distance(za[:, None], zn, m.distance)
        if m.loss == "triplet":
            loss = triplet_margin_loss(za, zp, zn[:, 0], m.margin, m.distance)
        else:
            loss = info_nce_loss(za, zp, zn, m.temperature, m.distance)
        gap = d_pos - d_neg.amin(dim=1)
        return {
            "loss": loss,
            "output": za,
            "errors": gap.detach(),
            "accuracy": (gap < 0).float().mean(),
            "pos_distance": d_pos.detach().mean(),
            "neg_distance": d_neg.detach().mean(),
        }

    def build_datamodule(self) -> L.LightningDataModule:
        return IlluminantDataModule(self.cfg)  # type: ignore[arg-type]
