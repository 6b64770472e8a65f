"""Instance-aware colorization (Su, Chu & Huang, "Instance-aware Image Colorization", CVPR 2020).

Three SIGGRAPH17 networks (:class:`~tinct.colorization.siggraph.SIGGRAPHNet`) of the same width:

- the **full-image network** colorizes the whole photo;
- the **instance network** colorizes each object's box, cropped and resized to ``crop_size`` x ``crop_size``
  (:func:`crop_instances`, bilinear ROI alignment);
- the **fusion network** is the full-image network with a :class:`FusionModule` after each of its 13 feature
  stages (``conv1_2`` ... ``conv10_2``): a small convolution stack predicts a weight map for the full image's
  features and one for each instance's; the instance features and weights are resized to their box at that
  stage's resolution and pasted there; a softmax over full image + instances at every pixel (an instance has
  no weight outside its box, so outside every box the full image's features pass unchanged) mixes them.

With no boxes the fusion network is exactly the full-image network. ``style="instcolorization"`` is the
authors' release exactly (for its weights, ``tinct import-weights instcolorization``): weight nets ending in a
ReLU, box cells by truncation (:func:`release_box_cells`), an instance's weight logit 0 (not -inf) outside its
box but inside another, the full image's logit + 1e5 outside every box, and photos without boxes colorized by
a separate SIGGRAPH17 network (:attr:`InstanceFusionNet.plain`, the release's ``GComp``). Boxes come from
:mod:`tinct.colorization.boxes` (files or a detector); training runs the paper's three stages (full ->
instance -> fusion), see :mod:`tinct.colorization.instance_task`.

References:
    Su, J.-W., Chu, H.-K., & Huang, J.-B. (2020). Instance-aware Image Colorization. CVPR 2020, section 3
    (fusion module: figure 3 and equation 2) and the authors' release (github.com/ericsujw/InstColorization).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.colorization.networks import Colorizer
from tinct.colorization.siggraph import STAGES, SIGGRAPHNet, SIGGRAPHOutput

__all__ = [
    "FUSION_STYLES",
    "FusionModule",
    "InstanceColorizer",
    "InstanceFusionNet",
    "box_cells",
    "crop_instances",
    "release_box_cells",
]

#: How the fusion modules mix features: tinct's (``"tinct"``) or the authors' release (``"instcolorization"``).
FUSION_STYLES = ("tinct", "instcolorization")
# The release adds this to the full image's weight logit outside every box (networks.py, WeightGenerator).
_RELEASE_OUTSIDE = 1e5


def box_cells(boxes: Tensor, image_size: tuple[int, int], feature_size: tuple[int, int]) -> Tensor:
    """Boxes in input pixels -> the cells they cover on a feature map: (N, 4) int64 ``[x0, y0, x1, y1)``.

    A box covers every cell its extent touches (floor of the start, ceiling of the end, in the feature
    map's coordinates), at least one cell, clipped to the map.

    Args:
        boxes: (N, 4) ``[x0, y0, x1, y1]`` in pixels of an input of ``image_size`` = (H, W).
        feature_size: (h, w) of the feature map.

    Example:
        >>> box_cells(torch.tensor([[8.0, 4.0, 24.0, 13.0]]), (32, 32), (4, 4)).tolist()
        [[1, 0, 3, 2]]
        >>> box_cells(torch.tensor([[30.5, 31.0, 31.0, 32.0]]), (32, 32), (4, 4)).tolist()
        [[3, 3, 4, 4]]
    """
    (h_in, w_in), (h, w) = image_size, feature_size
    scale = boxes.new_tensor([w / w_in, h / h_in, w / w_in, h / h_in], dtype=torch.float64)
    b = boxes.to(torch.float64) * scale
    x0 = b[:, 0].floor().long().clamp(0, w - 1)
    y0 = b[:, 1].floor().long().clamp(0, h - 1)
    x1 = torch.maximum(b[:, 2].ceil().long().clamp(max=w), x0 + 1)
    y1 = torch.maximum(b[:, 3].ceil().long().clamp(max=h), y0 + 1)
    return torch.stack([x0, y0, x1, y1], dim=1)


def release_box_cells(boxes: Tensor, image_size: tuple[int, int], feature_size: tuple[int, int]) -> Tensor:
    """Boxes -> feature-map cells as InstColorization's release (``get_box_info`` of its ``image_util.py``).

    Each edge is ``int(edge / image side * feature side)`` (truncated, so a box may lose its last partial
    cell, unlike :func:`box_cells`); an empty extent grows by one cell to the right (or bottom), or to the
    left (top) at the map's far edge. Cells are then clipped to the map (the release's detector boxes always
    lie inside the photo).

    Args:
        boxes: (N, 4) ``[x0, y0, x1, y1]`` in pixels of an input of ``image_size`` = (H, W).
        feature_size: (h, w) of the feature map.

    Returns:
        (N, 4) int64 ``[x0, y0, x1, y1)`` cells.

    Example:
        >>> release_box_cells(torch.tensor([[8.0, 4.0, 24.0, 13.0]]), (32, 32), (4, 4)).tolist()
        [[1, 0, 3, 1]]
        >>> release_box_cells(torch.tensor([[30.5, 31.0, 31.0, 32.0]]), (32, 32), (4, 4)).tolist()
        [[2, 3, 3, 4]]
    """
    (h_in, w_in), (h, w) = image_size, feature_size
    rows = []
    for x0, y0, x1, y1 in boxes.detach().to("cpu", torch.float64).tolist():
        edges = []
        for start, end, side_in, side in ((x0, x1, w_in, w), (y0, y1, h_in, h)):
            s, e = int(start / side_in * side), int(end / side_in * side)
            if e - s < 1:  # the release's rule for an extent under one cell
                if side - e > 1:
                    e += 1
                else:
                    s -= 1
            s = min(max(s, 0), side - 1)
            edges.append((s, min(max(e, s + 1), side)))
        (sx, ex), (sy, ey) = edges
        rows.append([sx, sy, ex, ey])
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 4)


def crop_instances(x: Tensor, boxes: Tensor, crop_size: int) -> Tensor:
    """Crops of the boxes of one input, each resized to ``crop_size`` x ``crop_size`` (bilinear ROI align,
    :func:`torchvision.ops.roi_align` with pixel-exact box edges, averaging ``ceil(box / crop)`` samples
    per output pixel when shrinking).

    Shape:
        - x: :math:`(1, C, H, W)`; boxes: :math:`(N, 4)` ``[x0, y0, x1, y1]`` in pixels of x.
        - Output: :math:`(N, C, S, S)`, S = ``crop_size``.

    Example:
        >>> x = torch.arange(64.0).reshape(1, 1, 8, 8)
        >>> crop_instances(x, torch.tensor([[2.0, 4.0, 6.0, 8.0]]), 4)[0, 0].tolist() == x[0, 0, 4:, 2:6].tolist()
        True
    """
    from torchvision.ops import roi_align

    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1).to(x.dtype)
    return roi_align(x, rois, (crop_size, crop_size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def _weight_net(channels: int, inner: int, style: str = "tinct") -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(channels, inner, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(inner, inner, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(inner, 1, 3, padding=1),
    )
    if style == "instcolorization":  # the release's weight nets end in a ReLU (logits >= 0)
        net.append(nn.ReLU(inplace=True))
        return net
    # Equal weights at the start (the paper's nets start from random weights; a zero last layer makes the
    # first fusion steps a plain average of full-image and instance features, both from trained networks).
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def _check_style(style: str) -> str:
    if style not in FUSION_STYLES:
        raise ValueError(f"fusion style must be one of {', '.join(map(repr, FUSION_STYLES))}, got {style!r}")
    return style


class FusionModule(nn.Module):
    """Fuses the full image's features with its instances' at one stage (Su et al. 2020, figure 3).

    Args:
        channels: channels of the stage.
        inner: channels of the weight-predicting convolution stacks (the paper: 16).
        style: ``"tinct"`` (an instance has weight 0 outside its box) or ``"instcolorization"`` (the
            release's mixing, see the module's description; for its weights).

    Shape:
        - full: :math:`(1, C, h, w)`; instances: :math:`(N, C, s, s)`; cells: :math:`(N, 4)` from
          :func:`box_cells` at :math:`(h, w)`.
        - Output: :math:`(1, C, h, w)`; equal to ``full`` where no box lies (and everywhere when N = 0).

    Example:
        >>> m = FusionModule(8)
        >>> full, inst = torch.rand(1, 8, 6, 6), torch.rand(2, 8, 4, 4)
        >>> cells = torch.tensor([[0, 0, 2, 3], [1, 1, 4, 4]])
        >>> out = m(full, inst, cells)
        >>> torch.equal(out[..., 4:, :], full[..., 4:, :]), torch.equal(m(full, inst[:0], cells[:0]), full)
        (True, True)
    """

    def __init__(self, channels: int, inner: int = 16, style: str = "tinct") -> None:
        super().__init__()
        self.style = _check_style(style)
        self.full_weight = _weight_net(channels, inner, style)
        self.instance_weight = _weight_net(channels, inner, style)

    def forward(self, full: Tensor, instances: Tensor, cells: Tensor) -> Tensor:
        if len(instances) == 0:
            return full
        if self.style == "instcolorization":
            return self._forward_release(full, instances, cells)
        h, w = full.shape[-2:]
        inst_logits = self.instance_weight(instances)
        features, logits = [full], [self.full_weight(full)]
        for i, (x0, y0, x1, y1) in enumerate(cells.tolist()):
            size = (y1 - y0, x1 - x0)
            feature = full.new_zeros(full.shape)
            feature[..., y0:y1, x0:x1] = F.interpolate(
                instances[i : i + 1], size=size, mode="bilinear", align_corners=False
            )
            logit = full.new_full((1, 1, h, w), float("-inf"))
            logit[..., y0:y1, x0:x1] = F.interpolate(
                inst_logits[i : i + 1], size=size, mode="bilinear", align_corners=False
            )
            features.append(feature)
            logits.append(logit)
        weights = torch.softmax(torch.cat(logits, dim=1), dim=1)  # (1, 1 + N, h, w), finite: full is
        return (torch.cat(features, dim=0) * weights.transpose(0, 1)).sum(0, keepdim=True)

    def _forward_release(self, full: Tensor, instances: Tensor, cells: Tensor) -> Tensor:
        # As the release's WeightGenerator.forward: instances first, the full image last; an instance's
        # logit and features are zero-padded outside its box, the full image's logit is raised by 1e5
        # outside every box (so its features pass unchanged there).
        h, w = full.shape[-2:]
        inst_logits = self.instance_weight(instances)
        features, logits = [], []
        inside = full.new_zeros(1, 1, h, w)
        for i, (x0, y0, x1, y1) in enumerate(cells.tolist()):
            size = (y1 - y0, x1 - x0)
            feature = full.new_zeros(full.shape)
            feature[..., y0:y1, x0:x1] = F.interpolate(
                instances[i : i + 1], size=size, mode="bilinear", align_corners=False
            )
            logit = full.new_zeros(1, 1, h, w)
            logit[..., y0:y1, x0:x1] = F.interpolate(
                inst_logits[i : i + 1], size=size, mode="bilinear", align_corners=False
            )
            inside[..., y0:y1, x0:x1] = 1.0
            features.append(feature)
            logits.append(logit)
        features.append(full)
        logits.append(self.full_weight(full) + (1.0 - inside) * _RELEASE_OUTSIDE)
        weights = torch.softmax(torch.cat(logits, dim=1), dim=1)
        return (torch.cat(features, dim=0) * weights.transpose(0, 1)).sum(0, keepdim=True)


class InstanceFusionNet(nn.Module):
    """The fusion network of InstColorization: full-image and instance SIGGRAPH17 networks fused at 13 stages.

    Args:
        width: channel multiplier of both networks.
        crop_size: side to which each box's crop is resized for the instance network (multiple of 8).
        inner: channels of the fusion modules' weight nets.
        style: ``"tinct"``, or ``"instcolorization"``: the release's fusion (:class:`FusionModule`), its box
            cells (:func:`release_box_cells`) and a third SIGGRAPH17 network, :attr:`plain`, for photos
            without boxes (the release's ``GComp``; with ``"tinct"`` they go through :attr:`full`).

    Shape:
        - x: :math:`(B, 4, H, W)` (:func:`~tinct.colorization.siggraph.hint_input`); boxes: B tensors
          :math:`(N_b, 4)` ``[x0, y0, x1, y1]`` in pixels of x (N_b may be 0).
        - Output: :class:`~tinct.colorization.siggraph.SIGGRAPHOutput` as the full network's.

    Example:
        >>> net = InstanceFusionNet(width=0.125, crop_size=16).eval()
        >>> x = torch.rand(1, 4, 32, 40)
        >>> out = net(x, [torch.tensor([[4.0, 4.0, 20.0, 28.0]])])
        >>> out.ab.shape, torch.equal(net(x, [torch.zeros(0, 4)]).ab, net.full(x).ab)
        (torch.Size([1, 2, 32, 40]), True)
    """

    hint_channels = 3

    def __init__(
        self, width: float = 1.0, crop_size: int = 64, inner: int = 16, style: str = "tinct"
    ) -> None:
        super().__init__()
        if crop_size < 8 or crop_size % 8:
            raise ValueError(f"crop_size must be a positive multiple of 8, got {crop_size}")
        self.width = width
        self.crop_size = crop_size
        self.style = _check_style(style)
        self.full = SIGGRAPHNet(width)
        self.instance = SIGGRAPHNet(width)
        self.fusion = nn.ModuleList(FusionModule(c, inner, style) for c in self.full.stage_channels)
        assert len(self.fusion) == len(STAGES)
        if style == "instcolorization":
            #: The network for photos without boxes (style ``"instcolorization"`` only).
            self.plain = SIGGRAPHNet(width)

    def _without_boxes(self, x: Tensor) -> SIGGRAPHOutput:
        return self.plain(x) if self.style == "instcolorization" else self.full(x)

    def forward(self, x: Tensor, boxes: Sequence[Tensor] | None = None) -> SIGGRAPHOutput:
        if boxes is None or all(len(b) == 0 for b in boxes):
            return self._without_boxes(x)
        if len(boxes) != len(x):
            raise ValueError(f"got {len(boxes)} box lists for a batch of {len(x)}")
        outs = [self._one(x[i : i + 1], b.to(x.device)) for i, b in enumerate(boxes)]
        return SIGGRAPHOutput(torch.cat([o.logits for o in outs]), torch.cat([o.ab for o in outs]))

    def _one(self, x: Tensor, boxes: Tensor) -> SIGGRAPHOutput:
        if len(boxes) == 0:
            return self._without_boxes(x)
        stages = self.instance.forward_stages(crop_instances(x, boxes, self.crop_size))
        size = x.shape[-2:]
        cells_of = release_box_cells if self.style == "instcolorization" else box_cells

        def fuse(i: int, features: Tensor) -> Tensor:
            cells = cells_of(boxes, (size[0], size[1]), (features.shape[-2], features.shape[-1]))
            return self.fusion[i](features, stages[i], cells)

        return self.full(x, fuse)

    def extra_repr(self) -> str:
        style = "" if self.style == "tinct" else f", style={self.style!r}"
        return f"width={self.width}, crop_size={self.crop_size}{style}"


class InstanceColorizer(Colorizer):
    """A :class:`InstanceFusionNet` as a photo colorizer: as :class:`~tinct.colorization.networks.Colorizer`,
    plus the photo's boxes (pixel coordinates of the photo) in :meth:`predict_ab` / :meth:`predict_ab_lowres`.

    Example:
        >>> c = InstanceColorizer(InstanceFusionNet(0.125, crop_size=16), infer_size=32).eval()
        >>> L = torch.rand(1, 1, 60, 80) * 100
        >>> c.predict_ab(L, boxes=torch.tensor([[10.0, 10.0, 50.0, 40.0]])).shape
        torch.Size([1, 2, 60, 80])
    """

    #: Callers pass the photo's boxes (``boxes=`` of :meth:`predict_ab`).
    uses_boxes = True

    def network_ab(
        self,
        x: Tensor,
        temperature: float | None = None,
        hints: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
    ) -> Tensor:
        from tinct.colorization.siggraph import hint_input

        ab, mask = hints if hints is not None else (None, None)
        box_list = None if boxes is None else [boxes] * len(x)
        return self.net(hint_input(x, ab, mask), box_list).ab
