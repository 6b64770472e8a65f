"""Object boxes found by a torchvision detector from weights the user names (nothing is downloaded).

InstColorization (Su et al. 2020) colorizes the objects a COCO detector finds (the authors ran detectron2's
Mask R-CNN). tinct runs any of torchvision's COCO detectors (:data:`DETECTORS`) on the photo's lightness,
as the colorizer sees it, and gives its boxes as a :class:`~tinct.colorization.boxes.BoxSource`, like the
box files of :func:`tinct.colorization.boxes.open_box_source`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinct.colorization.boxes import MIN_SCORE, Boxes, BoxSource, _check_size
from tinct.core.exceptions import ConfigError, DataError, ShapeError, TypeCheckError, some_of

__all__ = ["DETECTORS", "detector_source"]

# torchvision's COCO detectors and the keyword of each builder that sets its score threshold. Keypoint
# R-CNN is left out: it finds people only.
_SCORE_ARG = {
    "fasterrcnn_mobilenet_v3_large_fpn": "box_score_thresh",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "box_score_thresh",
    "fasterrcnn_resnet50_fpn": "box_score_thresh",
    "fasterrcnn_resnet50_fpn_v2": "box_score_thresh",
    "maskrcnn_resnet50_fpn": "box_score_thresh",
    "maskrcnn_resnet50_fpn_v2": "box_score_thresh",
    "retinanet_resnet50_fpn": "score_thresh",
    "retinanet_resnet50_fpn_v2": "score_thresh",
    "fcos_resnet50_fpn": "score_thresh",
    "ssd300_vgg16": "score_thresh",
    "ssdlite320_mobilenet_v3_large": "score_thresh",
}
#: The torchvision detection builders :func:`detector_source` accepts.
DETECTORS: tuple[str, ...] = tuple(_SCORE_ARG)

# The classification layer of each family: its first dimension is (anchors per place) x (classes).
_CLASS_KEYS = (
    "roi_heads.box_predictor.cls_score.weight",
    "head.classification_head.cls_logits.weight",
    "head.classification_head.module_list.0.weight",
    "head.classification_head.module_list.0.1.weight",
)
_COCO_CLASSES = 91  # torchvision's COCO label space: category ids 1..90 and the background 0


def detector_source(
    name: str, weights: str | os.PathLike[str], *, device: str = "cpu", min_score: float = MIN_SCORE
) -> BoxSource:
    """Boxes found by a torchvision detector, from weights in a local file (nothing is downloaded).

    The detector sees the photo as the colorizer does: its CIELAB lightness only, as gray sRGB
    (``lab_to_rgb([L, 0, 0])``). It is built once, runs in eval mode without gradients, and its boxes are
    clipped to the photo. The number of classes is read from the file's classification layer (91 for
    torchvision's COCO weights). Files saved from a model with frozen batch norm (torchvision's pretrained
    detectors) lack the ``num_batches_tracked`` counters, which are not needed for inference.

    Args:
        name: one of :data:`DETECTORS`.
        weights: a state dict saved with ``torch.save`` (bare, or under a ``"state_dict"`` or ``"model"``
            key; a ``module.`` or ``model.`` prefix on every key is removed), e.g. torchvision's COCO
            weights downloaded by the user.
        device: where the detector runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        min_score: the detector's own score threshold: it reports the boxes scoring above it (torchvision's
            ``box_score_thresh`` / ``score_thresh``). The default keeps exactly the boxes that
            :meth:`Boxes.select` keeps by default; non-maximum suppression only lets a box remove a
            lower-scoring one, so the boxes above any higher threshold do not depend on it. Lower it (e.g.
            0.05) to see weaker detections.

    Returns:
        A :class:`BoxSource` whose ``boxes_for`` runs the detector (on ``rgb`` when given, else on the
        photo read from disk), with scores in [0, 1] and torchvision's labels (COCO category ids).

    Raises:
        ConfigError: an unknown ``name`` (the valid ones are listed), a ``min_score`` outside [0, 1) or an
            unusable ``device``.
        DataError: the weights file is missing, cannot be loaded safely (``weights_only=True``) or does not
            fit the detector (missing, unexpected or reshaped tensors, named).

    Example:
        >>> "maskrcnn_resnet50_fpn" in DETECTORS, len(DETECTORS)
        (True, 11)
    """
    if name not in _SCORE_ARG:
        raise ConfigError(f"unknown detector {name!r}; valid choices: {', '.join(DETECTORS)}")
    if not (math.isfinite(min_score) and 0 <= min_score < 1):
        raise ConfigError(f"detector min_score must be in [0, 1), got {min_score}")
    import torch

    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as err:
        raise ConfigError(f"detector device {device!r} is not usable: {str(err).splitlines()[0]}") from err
    path = Path(weights)
    model = _load_detector(name, path, min_score)
    return _DetectorSource(name, path, model.to(dev).eval(), dev)


def _load_detector(name: str, path: Path, min_score: float) -> Any:

    from tinct.nn.weights import read_state_dict

    state = read_state_dict(path, "detector weights")
    for prefix in ("module.", "model."):  # DistributedDataParallel; a training module's attribute
        if state and all(str(k).startswith(prefix) for k in state):
            state = {str(k).removeprefix(prefix): v for k, v in state.items()}

    model = _build_detector(name, _COCO_CLASSES, min_score)
    own = model.state_dict()
    key = next((k for k in _CLASS_KEYS if k in own), None)
    if key is not None and key in state and state[key].ndim >= 1 and state[key].shape != own[key].shape:
        anchors = own[key].shape[0] // _COCO_CLASSES
        classes, rest = divmod(state[key].shape[0], anchors)
        if rest == 0 and classes >= 2 and state[key].shape[1:] == own[key].shape[1:]:
            model = _build_detector(name, classes, min_score)
            own = model.state_dict()

    # Frozen batch norm (torchvision's pretrained detectors) has no num_batches_tracked counters; in eval
    # mode it computes what BatchNorm2d computes (both eps 1e-5 in these builders).
    def counter(k: str) -> bool:
        return k.endswith("num_batches_tracked")

    missing = [k for k in own if k not in state and not counter(k)]
    unexpected = [k for k in state if k not in own and not counter(k)]
    reshaped = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or reshaped:
        parts = [
            f"{len(keys)} {what} ({some_of(keys, 3)})"
            for keys, what in (
                (missing, "missing"),
                (unexpected, "unexpected"),
                (reshaped, "of another shape"),
            )
            if keys
        ]
        raise DataError(f"{path}: does not fit detector {name}: tensors {'; '.join(parts)}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model


def _build_detector(name: str, num_classes: int, min_score: float) -> Any:
    from torchvision.models import get_model_builder

    builder: Callable[..., Any] = get_model_builder(name)
    # weights and weights_backbone None: never a download, the user's file gives every tensor.
    return builder(
        weights=None, weights_backbone=None, num_classes=num_classes, **{_SCORE_ARG[name]: min_score}
    )


class _DetectorSource:
    """A torchvision detector run on the gray (lightness-only) photo."""

    #: The detector looks at the photo: callers pass its pixels as ``rgb`` when they have them.
    needs_pixels = True

    def __init__(self, name: str, weights: Path, model: Any, device: Any) -> None:
        self.model = model
        self.device = device
        self.description = f"{name} detector, weights {weights}, on {device}"

    def boxes_for(self, image: Path, size: tuple[int, int], rgb: np.ndarray | None = None) -> Boxes:
        import torch

        from tinct.color.lab import lab_to_rgb, rgb_to_lab

        h, w = _check_size(size)
        if rgb is None:
            from tinct.colorization.photos import read_photo

            rgb = read_photo(image)  # a DataError names a missing or corrupt photo
            if rgb.shape[:2] != (h, w):
                raise DataError(
                    f"{image}: the photo is {rgb.shape[1]} x {rgb.shape[0]}, not {w} x {h} (W x H)"
                )
        elif np.shape(rgb) != (h, w, 3):
            raise ShapeError(f"rgb of {image} must be (H, W, 3) = {(h, w, 3)}, got {np.shape(rgb)}")
        elif np.asarray(rgb).dtype.kind != "f":
            raise TypeCheckError(
                f"rgb of {image} must be floats in [0, 1], got dtype {np.asarray(rgb).dtype}"
            )
        x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).clamp(0, 1)
        lab = rgb_to_lab(x)
        gray = lab_to_rgb(torch.cat([lab[:1], torch.zeros_like(lab[1:])]), clip=True)
        with torch.no_grad():
            found = self.model([gray.to(self.device)])[0]
        xyxy = found["boxes"].detach().cpu().double().numpy().reshape(-1, 4)
        xyxy = np.clip(xyxy, 0, [w, h, w, h])
        scores = found["scores"].detach().cpu().double().numpy().clip(0, 1)
        labels = found["labels"].detach().cpu().numpy().astype(np.int64)
        keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1]) & np.isfinite(scores)
        return Boxes(xyxy[keep], scores[keep], labels[keep])
