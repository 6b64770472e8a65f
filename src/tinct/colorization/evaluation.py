"""``tinct evaluate colorization``: a colorizer's metrics on whole photos and inside their object boxes.

Every photo is colorized at full resolution and scored beside the grayscale baseline (ab = 0):

- ``auc_raw`` / ``auc_rebalanced``: the ab-accuracy AuC of Zhang et al. (2016), pooled over pixels
  (:class:`~tinct.colorization.metrics.ABAccuracy`);
- ``psnr``: PSNR (dB) of the sRGB result against the original, mean over photos (capped at 100 dB);
- ``ssim``: SSIM (Wang et al. 2004) of the sRGB result against the original, data range 1, Gaussian window
  sigma 1.5 (11 x 11), constants K1 = 0.01, K2 = 0.03: the mean of the SSIM map (torchmetrics'
  ``structural_similarity_index_measure``, ``return_full_image=True``) over the three channels and the
  pixels whose window lies inside the photo (5 pixels from its border and more), as scikit-image's
  ``structural_similarity`` and the authors' MATLAB code average it (torchmetrics' own mean also counts
  the border pixels, whose windows see the photo's reflection); mean over photos;
- ``colorfulness``: Hasler & Süsstrunk's colourfulness of the sRGB result, mean over photos;
- ``lpips`` (only with local backbone weights, ``lpips_weights``): LPIPS (Zhang et al. 2018; torchmetrics'
  linear layers, AlexNet or VGG-16 backbone from the user's file), mean over photos, lower is better;
- ``fid`` (only with local Inception weights, ``fid_weights``): the Fréchet Inception distance of the
  results to the original photos (2048 pool features, torchmetrics / torch-fidelity), over the set.

With a box source every metric but FID is also computed inside the union of each photo's selected boxes
(:meth:`tinct.colorization.boxes.Boxes.select`: score > 0.7, at most 8): AuC pooled over the box pixels of
all photos; PSNR from the mean squared error over a photo's box pixels; SSIM the mean of its map over the
box pixels 5 pixels from the photo's border and more, LPIPS the mean of its map (``spatial``: each layer's
map upsampled bilinearly to the photo) over the box pixels; colourfulness of the set of box pixels. FID is a
statistic of whole photos and is not computed for boxes.

References:
    Su, J.-W., Chu, H.-K., & Huang, J.-B. (2020). Instance-aware Image Colorization. CVPR 2020, 7968-7977
    (the evaluation: LPIPS, PSNR, SSIM on whole images). https://arxiv.org/abs/2005.10825

    The SSIM, LPIPS and FID references are in :mod:`tinct.colorization.perceptual`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from tinct.colorization.perceptual import (
    _LPIPS_MIN_SIDE,
    _SSIM_SIGMA,
    load_fid,
    load_lpips,
    lpips_score,
    ssim_map,
)
from tinct.core.atomic import atomic_write_json
from tinct.core.exceptions import DataError
from tinct.core.progress import track
from tinct.io.limits import check_max_pixels

if TYPE_CHECKING:
    from tinct.colorization.boxes import BoxSource

__all__ = [
    "EVALUATION_KEYS",
    "LPIPS_FID_NOTE",
    "evaluate_colorization",
    "load_fid",
    "load_lpips",
    "lpips_score",
    "ssim_map",
]

#: Every metric ``evaluate_colorization`` can report, in table order (``lpips`` and ``fid`` only with local
#: weights; ``fid`` never inside boxes).
EVALUATION_KEYS = ("auc_raw", "auc_rebalanced", "psnr", "ssim", "colorfulness", "lpips", "fid")

#: What ``tinct evaluate colorization`` prints when LPIPS and FID were not asked for.
LPIPS_FID_NOTE = (
    "tinct: LPIPS and FID need local backbone weights (--lpips-weights, --fid-weights); not computed"
)

_NAMES = ("model", "gray")
_PHOTO_KEYS = ("psnr", "ssim", "colorfulness", "lpips")


def _uint8(rgb: Tensor) -> Tensor:
    return (rgb * 255.0).round_().clamp_(0, 255).to(torch.uint8)


# -- accumulation ----------------------------------------------------------------------------------------


class _Region:
    """Running metrics of one region of the photos (whole, or inside boxes) for the model and the baseline."""

    def __init__(self) -> None:
        from tinct.colorization.metrics import ABAccuracy

        self.raw = {n: ABAccuracy() for n in _NAMES}
        self.reb = {n: ABAccuracy() for n in _NAMES}
        self.photo: dict[str, dict[str, list[float]]] = {n: {k: [] for k in _PHOTO_KEYS} for n in _NAMES}
        self.original_cf: list[float] = []
        self.pixels = 0
        self.photo_pixels = 0

    def add(self, mask: Tensor | None, rgb: Tensor, errors: dict[str, Tensor], weights: Tensor,
            outputs: dict[str, Tensor], ssim: dict[str, Tensor] | None, interior: Tensor | None,
            lpips: dict[str, tuple[float, Tensor | None]], per_image: bool = False,
            ) -> dict[str, dict[str, float]] | None:  # fmt: skip
        """Add one photo's pixels inside ``mask`` (None: all of them); SSIM over those in ``interior`` too.

        Returns the photo's own metrics (``{"model": {...}, "gray": {...}}``, AuC over its pixels) when
        ``per_image``, else None.
        """
        from tinct.colorization.metrics import ABAccuracy, colorfulness, psnr

        def pick(x: Tensor) -> Tensor:  # (*, H, W) -> (*, n, 1): the metrics' pixel axes kept
            return x if mask is None else x[..., mask].unsqueeze(-1)

        ssim_pixels = None if interior is None else interior if mask is None else interior & mask
        if ssim_pixels is not None and not bool(ssim_pixels.any()):
            ssim_pixels = None
        target = pick(rgb)
        self.pixels += target.shape[-2] * target.shape[-1]
        self.photo_pixels += rgb.shape[-2] * rgb.shape[-1]
        own: dict[str, dict[str, float]] = {}
        for name in _NAMES:
            self.raw[name].update(pick(errors[name]))
            self.reb[name].update(pick(errors[name]), pick(weights))
            out = pick(outputs[name])
            values = {"psnr": float(psnr(out, target)[0]), "colorfulness": float(colorfulness(out)[0])}
            if ssim is not None and ssim_pixels is not None:
                values["ssim"] = float(ssim[name][..., ssim_pixels].double().mean())
            if name in lpips:
                value, spatial = lpips[name]
                if mask is None:
                    values["lpips"] = value
                elif spatial is not None:
                    values["lpips"] = float(pick(spatial).double().mean())
            for key, value in values.items():
                self.photo[name][key].append(value)
            if per_image:
                own[name] = {
                    "auc_raw": ABAccuracy().update(pick(errors[name])).auc(),
                    "auc_rebalanced": ABAccuracy().update(pick(errors[name]), pick(weights)).auc(),
                    **values,
                    "psnr": min(values["psnr"], 100.0),  # as in the mean; JSON has no inf
                }
        self.original_cf.append(float(colorfulness(target)[0]))
        return own if per_image else None

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _NAMES:
            scores = self.photo[name]
            out[name] = {
                "auc_raw": self.raw[name].auc(),
                "auc_rebalanced": self.reb[name].auc(),
                "psnr": float(np.mean(np.minimum(scores["psnr"], 100.0))),
                "colorfulness": float(np.mean(scores["colorfulness"])),
            }
            if scores["ssim"]:
                out[name]["ssim"] = float(np.mean(scores["ssim"]))
            if scores["lpips"]:
                out[name]["lpips"] = float(np.mean(scores["lpips"]))
        out["original"] = {"colorfulness": float(np.mean(self.original_cf))}
        out["n_images"] = len(self.original_cf)
        return out


def evaluate_colorization(
    model: str | os.PathLike[str] | None,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = "colorization_metrics.json",
    *,
    temperature: float | None = None,
    progress: bool = True,
    limit: int | None = None,
    max_pixels: int | None = None,
    boxes: str | os.PathLike[str] | BoxSource | None = None,
    lpips_weights: str | os.PathLike[str] | None = None,
    fid_weights: str | os.PathLike[str] | None = None,
    per_image: bool = False,
    backend: str | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """The metrics of a colorizer on every photo of ``data`` (a folder, searched recursively, or a list of
    files), at full resolution, beside the grayscale baseline (ab = 0), on whole photos and inside boxes.

    The metrics (``auc_raw``, ``auc_rebalanced``, ``psnr``, ``ssim``, ``colorfulness``, and ``lpips`` /
    ``fid`` with local weights) are described in the module's docstring. An instance-aware colorizer
    (``uses_boxes``) is given each photo's selected boxes (``boxes=``, :math:`(N, 4)` ``[x0, y0, x1, y1]``
    in the photo's pixels; none when its boxes could not be read); without a box source it colours whole
    photos only.

    Grayscale photos (no reference colours), unreadable files and photos above ``max_pixels`` (default: the
    reader's limit, see :func:`tinct.io.image.read_image`) are skipped and counted. Photos whose boxes
    cannot be read are reported on stderr (``tinct: skipped boxes of FILE: reason``) and left out of the
    box statistics only; photos with no selected box are left out of them and counted. Photos under 11
    pixels on a side have no SSIM (nor have boxes lying within 5 pixels of the border), photos smaller
    than the LPIPS backbone's input (AlexNet 31, VGG 16 pixels) no LPIPS; FID needs 2 photos at least.

    Args:
        model: a run directory, checkpoint, exported weights file or None (the shipped colorizer).
        data: a folder of photos or a list of photo files.
        out: the JSON file to write (None: none); a run directory given as ``model`` gets a copy.
        temperature: annealed-mean temperature (default: the model's).
        progress: show a progress bar on a terminal.
        limit: score only the first ``limit`` photos.
        max_pixels: skip photos with more pixels.
        boxes: object boxes: a path (:func:`tinct.colorization.boxes.open_box_source`: a YOLO folder, a COCO
            JSON file or per-image JSON files) or a box source (``boxes_for(image, size, rgb)``).
        lpips_weights: local torchvision AlexNet or VGG-16 weights for LPIPS (:func:`load_lpips`).
        fid_weights: local FID Inception weights (:func:`load_fid`; needs torch-fidelity).
        per_image: also list each photo's own metrics (AuC over its pixels; no FID) under ``"per_image"``.
        backend, device: where the network runs
            (:func:`~tinct.colorization.colorize.load_colorizer`): ``"torch"`` on ``device`` (the metrics are
            computed on the CPU), or ``"onnxruntime"`` on the CPU (an ``.onnx`` model always).

    Returns:
        The whole-photo metrics of the model at the top level, the same under ``"model"`` and the
        baseline's under ``"gray"``, ``"original"`` (the photos' own colourfulness), ``n_images``,
        ``skipped``, ``data``, ``model_source`` and ``temperature`` (as before boxes existed); ``"whole"``:
        ``{"model", "gray", "original", "n_images"}``; with ``boxes``, ``"boxes"``: the same inside the
        boxes plus ``n_without_boxes``, ``skipped`` (photos whose boxes could not be read),
        ``pixel_fraction`` (of the photos with boxes) and ``source`` (the box source's description). With
        ``per_image``, ``"per_image"``: for each scored photo ``{"image", "whole": {...}, "boxes": {...},
        "gray": {"whole": {...}, "boxes": {...}}, "n_boxes"}``, the model's metrics at the top (``boxes``
        and ``n_boxes`` only where it has boxes / a box source). Written to ``out`` unless it is None.

    Raises:
        DataError: ``data`` is missing or holds no readable colour photo; a weights file is missing or
            wrong; the box source cannot be opened. Checked before the model is loaded.
        ConfigError: ``temperature``, ``max_pixels``, ``backend`` or ``device`` is invalid; torch-fidelity is
            missing for FID.
        RunDirError: ``model`` cannot be loaded.

    Example:
        >>> import cv2, tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> rng = np.random.default_rng(0)
        >>> photo = cv2.resize((rng.random((4, 5, 3)) * 255).astype(np.uint8), (40, 32))
        >>> cv2.imwrite(str(folder / "a.png"), photo)
        True
        >>> m = evaluate_colorization(None, folder, None, progress=False)
        >>> sorted(m["whole"]["model"])
        ['auc_raw', 'auc_rebalanced', 'colorfulness', 'psnr', 'ssim']
        >>> m["ssim"] == m["whole"]["model"]["ssim"] and "boxes" not in m
        True
    """
    from tinct.color.lab import lab_to_rgb, rgb_to_lab
    from tinct.colorization.colorize import _read, load_colorizer
    from tinct.colorization.metrics import ab_errors, grayscale_from_lab, pixel_rebalancing_weights
    from tinct.colorization.photos import list_photos

    if isinstance(data, (str, os.PathLike)):
        root = Path(data)
        if not root.exists():
            raise DataError(f"{root}: evaluation data folder not found")
        paths = list_photos(root)[:limit]
        label = str(root)
    else:
        paths = [Path(p) for p in data][:limit]
        label = f"{len(paths)} listed photos"
    if not paths:
        raise DataError(f"{label}: no photos (jpg, png, tif, bmp) found")
    max_pixels = None if max_pixels is None else check_max_pixels(max_pixels)
    lpips = None if lpips_weights is None else load_lpips(lpips_weights)
    fid = None
    if fid_weights is not None:
        fid = {"model": load_fid(fid_weights)}
        # The baseline's metric shares the Inception network (already loaded) and takes uint8 images too.
        from torchmetrics.image.fid import FrechetInceptionDistance

        fid["gray"] = FrechetInceptionDistance(feature=fid["model"].inception)
    from tinct.colorization.boxes import as_box_source

    source = as_box_source(boxes)
    source_label = None if source is None else getattr(source, "description", type(source).__name__)
    colorizer, info = load_colorizer(model, temperature, backend=backend, device=device)
    with_boxes = source is not None and getattr(colorizer, "uses_boxes", False)

    whole, inside = _Region(), _Region()
    skipped: list[str] = []
    box_skipped: list[str] = []
    without_boxes = 0
    photo_rows: list[dict[str, Any]] = []
    for path in track(paths, "evaluating", enabled=progress):
        try:
            rgb, note = _read(path, max_pixels)
        except DataError as err:
            print(f"tinct: skipped {err}", file=sys.stderr)
            skipped.append(str(path))
            continue
        if note and "grayscale" in note:
            skipped.append(str(path))
            continue
        rgb = rgb[None]
        h, w = rgb.shape[-2:]
        mask: Tensor | None = None
        xyxy: Tensor | None = None
        row: dict[str, Any] = {"image": str(path)}
        if source is not None:
            try:
                image = rgb[0].permute(1, 2, 0).numpy()  # H x W x 3 in [0, 1], for a detector
                selected = source.boxes_for(path, (h, w), image).select()
                box_mask = selected.mask(h, w)
            except DataError as err:
                print(f"tinct: skipped boxes of {path}: {err}", file=sys.stderr)
                box_skipped.append(str(path))
                xyxy = torch.zeros(0, 4, dtype=torch.float64)
            else:
                xyxy = torch.tensor(np.array(selected.xyxy, dtype=np.float64)).reshape(-1, 4)
                row["n_boxes"] = len(xyxy)
                mask = torch.from_numpy(np.ascontiguousarray(box_mask, dtype=bool))
                if not bool(mask.any()):
                    mask = None
                    without_boxes += 1
        with torch.no_grad():
            true_lab = rgb_to_lab(rgb)
            # The colorizer works from the L computed here (one Lab conversion per photo).
            if with_boxes:
                ab = colorizer.predict_ab(true_lab[:, :1], temperature, boxes=xyxy)
            else:
                ab = colorizer.predict_ab(true_lab[:, :1], temperature)
            pred_lab = torch.cat([true_lab[:, :1], ab], 1)
            outputs = {"model": lab_to_rgb(pred_lab, clip=True), "gray": grayscale_from_lab(true_lab)}
            gray_lab = torch.cat([true_lab[:, :1], torch.zeros_like(true_lab[:, 1:])], 1)
            errors = {
                "model": ab_errors(pred_lab[:, 1:], true_lab[:, 1:]),
                "gray": ab_errors(gray_lab[:, 1:], true_lab[:, 1:]),
            }
            weights = pixel_rebalancing_weights(true_lab[:, 1:])
            del true_lab, pred_lab, gray_lab, ab
            pad = int(3.5 * _SSIM_SIGMA + 0.5)
            ssim, interior = None, None
            if min(h, w) > 2 * pad:  # some window inside the photo
                ssim = {n: ssim_map(outputs[n], rgb) for n in _NAMES}
                interior = torch.zeros(h, w, dtype=torch.bool)
                interior[pad : h - pad, pad : w - pad] = True
            lpips_out: dict[str, tuple[float, Tensor | None]] = {}
            if lpips is not None and min(h, w) >= _LPIPS_MIN_SIDE[lpips.pnet_type]:
                lpips_out = {n: lpips_score(lpips, outputs[n], rgb, spatial=mask is not None) for n in _NAMES}
            if fid is not None:
                real = _uint8(rgb)
                for name in _NAMES:
                    fid[name].update(real, real=True)
                    fid[name].update(_uint8(outputs[name]), real=False)
            own = whole.add(None, rgb, errors, weights, outputs, ssim, interior, lpips_out, per_image)
            own_boxes = None
            if mask is not None:
                own_boxes = inside.add(
                    mask, rgb, errors, weights, outputs, ssim, interior, lpips_out, per_image
                )
        if own is not None:
            row.update(whole=own["model"], gray={"whole": own["gray"]})
            if own_boxes is not None:
                row["boxes"] = own_boxes["model"]
                row["gray"]["boxes"] = own_boxes["gray"]
            photo_rows.append(row)
    if not whole.original_cf:
        raise DataError(f"{label}: none of the {len(paths)} files is a readable colour photo")
    whole_result = whole.result()
    if fid is not None:
        if whole_result["n_images"] >= 2:
            for name in _NAMES:
                whole_result[name]["fid"] = float(fid[name].compute())
        else:
            print("tinct: FID needs 2 photos at least; not computed", file=sys.stderr)
    metrics: dict[str, Any] = {
        **whole_result["model"],
        "model": whole_result["model"],
        "gray": whole_result["gray"],
        "original": whole_result["original"],
        "n_images": whole_result["n_images"],
        "skipped": skipped,
        "data": label,
        "model_source": info["source"],
        "temperature": colorizer.temperature if temperature is None else temperature,
        "whole": whole_result,
    }
    if source is not None:
        box_result: dict[str, Any] = inside.result() if inside.original_cf else {"n_images": 0}
        box_result.update(
            n_without_boxes=without_boxes,
            skipped=box_skipped,
            pixel_fraction=inside.pixels / inside.photo_pixels if inside.photo_pixels else 0.0,
            source=source_label,
        )
        metrics["boxes"] = box_result
    if per_image:
        metrics["per_image"] = photo_rows
    if out is not None:
        atomic_write_json(out, metrics)
        if model is not None and Path(model).is_dir():
            atomic_write_json(Path(model) / "colorization_metrics.json", metrics)
    if skipped:
        warnings.warn(f"{len(skipped)} file(s) skipped (unreadable or grayscale)", stacklevel=2)
    return metrics
