"""tinct in a few lines of Python: colorize photos, estimate their illuminant, predict a patch's colour.

Each function takes one image or a list of them, as file paths, PIL images or numpy arrays, and returns numpy
arrays; ``model=`` names a run directory, a checkpoint, an exported model file, or nothing (the model shipped
with tinct); ``device=`` runs it on the CPU (default) or a GPU (``"cuda"``, ``"cuda:1"``). Models are loaded
once and kept (per source, device and backend) for the next call.

>>> import numpy as np
>>> import tinct
>>> photo = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
>>> tinct.colorize(photo).shape                                  # (H, W, 3) sRGB in [0, 1]
(48, 64, 3)
>>> light = tinct.estimate_illuminant(np.full((32, 32, 3), [0.5, 0.4, 0.2], np.float32))
>>> light.shape, round(float(np.linalg.norm(light)), 4)        # unit-norm camera RGB of the light
((3,), 1.0)
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinct.core.exceptions import ConfigError, DataError

__all__ = [
    "COLORIZER_CHOICES",
    "DEFAULT_ILLUMINANT_MODEL",
    "DEFAULT_PATCH_MODEL",
    "WhiteBalance",
    "colorize",
    "colorize_panel",
    "estimate_illuminant",
    "patch_prediction",
    "predict_patch",
    "takes_hints",
    "white_balance",
]

#: The shipped colorizers by label (``model=`` also takes these ``shipped:<name>`` sources).
COLORIZER_CHOICES = {
    "SIGGRAPH17, automatic or with hints (shipped, default)": "shipped:siggraph17",
    "ECCV16 (shipped)": "shipped:eccv16",
    "InstColorization, instance-aware (shipped)": "shipped:instance",
}

Image = Any  # a path, a PIL image or a numpy array


def _shipped(name: str) -> Any:
    from tinct.colorization import pretrained
    from tinct.constancy.weights import ILLUMINANT_MODEL
    from tinct.patch.weights import PATCH_MODEL

    table = {
        "siggraph17": pretrained.SIGGRAPH17_COLORIZER,
        "eccv16": pretrained.ECCV16_COLORIZER,
        "instance": pretrained.INSTANCE_COLORIZER,
        "illuminant": ILLUMINANT_MODEL,
        "patch": PATCH_MODEL,
    }
    if name not in table:
        raise ConfigError(f"shipped:{name}: no such shipped model; choose one of {', '.join(table)}")
    return table[name].path()


#: ``model=None`` of :func:`estimate_illuminant` and :func:`predict_patch`.
DEFAULT_ILLUMINANT_MODEL = "shipped:illuminant"
DEFAULT_PATCH_MODEL = "shipped:patch"


def _source(model: Any) -> Any:
    """A model argument as a path (``shipped:<name>`` resolved), or None."""
    if isinstance(model, str) and model.startswith("shipped:"):
        return _shipped(model.removeprefix("shipped:"))
    return model


def _many(images: Any) -> tuple[list[Any], bool]:
    """``(list of images, whether one image was given)``."""
    if isinstance(images, str | os.PathLike | np.ndarray) or hasattr(images, "convert"):
        return [images], True
    if isinstance(images, Sequence):
        return list(images), False
    raise DataError(
        f"expected an image (path, PIL image, numpy array) or a list of them, got {type(images).__name__}"
    )


def _rgb(image: Image) -> np.ndarray:
    """An sRGB ``(H, W, 3)`` float32 array in [0, 1] from a path (EXIF rotation and ICC applied, as
    ``tinct colorize``), a PIL image (EXIF rotation applied) or an array (uint8, uint16, float in [0, 1];
    ``(H, W)`` gray or ``(H, W, 3|4)``)."""
    if isinstance(image, str | os.PathLike):
        from tinct.colorization.photos import read_photo

        return read_photo(image)
    if hasattr(image, "convert") and not isinstance(image, np.ndarray):
        from PIL import ImageOps

        image = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 1:
        raise DataError(f"expected an (H, W, 3) image array, got shape {a.shape}")
    a = a[..., :3]
    if a.dtype in (np.uint8, np.uint16):
        return a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max)
    if a.dtype.kind != "f":
        raise DataError(f"image array of dtype {a.dtype}: expected uint8, uint16 or float in [0, 1]")
    if not np.isfinite(a).all():
        raise DataError("image array holds NaN or infinite values")
    return a.astype(np.float32).clip(0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _colorizer(source: Any, device: str, backend: str, temperature: float | None) -> Any:
    from tinct.colorization.colorize import load_colorizer

    return load_colorizer(source, temperature, backend=backend, device=device)[0]


def _load_colorizer(model: Any, device: str, backend: str, temperature: float | None) -> Any:
    source = _source(model)
    key = None if source is None else str(source)
    # torch decodes at any temperature per call; an ONNX graph has its export's temperature built in
    return _colorizer(key, str(device), backend, temperature if backend != "torch" else None)


def takes_hints(model: Any = None) -> bool:
    """Whether a colorizer is made for colour hints: SIGGRAPH17 networks are; ECCV16 ones cannot read them;
    instance-aware ones have the inputs but were not trained for them (one hint floods large regions), so
    they answer False, although :func:`colorize` passes hints on to them."""
    colorizer = _load_colorizer(model, "cpu", "torch", None)
    net = getattr(colorizer, "net", None)
    return bool(getattr(net, "hint_channels", 0)) and not getattr(colorizer, "uses_boxes", False)


def colorize(
    images: Image | Sequence[Image],
    model: Any = None,
    *,
    device: str = "cpu",
    temperature: float | None = None,
    hints: Sequence[Mapping[str, Any]] | Sequence[Sequence[Mapping[str, Any]] | None] | None = None,
    boxes: Any = None,
    backend: str = "torch",
) -> np.ndarray | list[np.ndarray]:
    """Colorize photos at full resolution: their lightness is kept, ab is predicted.

    Photos of equal size (a camera's folder) are colorized in batches on ``device``; others one at a time.
    The output's L* equals the input's; only its colour is predicted (the input's colour is ignored).

    Args:
        images: a path, a PIL image, an array (``(H, W)`` gray, ``(H, W, 3)`` uint8 / uint16 / float sRGB in
            [0, 1]) or a list of them.
        model: a colorization run directory, checkpoint, ``.pt`` / ``.onnx`` file, a ``shipped:<name>`` of
            :data:`COLORIZER_CHOICES`, or None (the shipped SIGGRAPH17 colorizer).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        temperature: annealed-mean temperature of ECCV16 models (default: the model's).
        hints: colour hints for a SIGGRAPH17 model: for one image, a list of points ``{"x", "y", "ab" |
            "rgb" | "hex"}`` (the format of ``tinct colorize --hints``, :mod:`tinct.colorization.hints`); for
            a list of images, one such list (or None) per image.
        boxes: object boxes ``(N, 4)`` ``[x0, y0, x1, y1]`` in pixels for an instance-aware model (one
            image), or one per image.
        backend: ``"torch"`` or ``"onnxruntime"`` (CPU).

    Returns:
        ``(H, W, 3)`` float32 sRGB in [0, 1] per image (a list for a list).

    Raises:
        DataError: an unreadable file, a bad array or bad hints (named).
        ConfigError: hints for a model without hint channels, an unknown device or backend.
    """
    import torch

    from tinct.color.lab import lab_to_rgb, rgb_to_lab
    from tinct.colorization.hints import Hints

    items, single = _many(images)
    per_hints = _per_image(hints, len(items), single, "hints")
    per_boxes = _per_image(boxes, len(items), single, "boxes")
    colorizer = _load_colorizer(model, device, backend, temperature)
    if any(h for h in per_hints) and not getattr(getattr(colorizer, "net", None), "hint_channels", 0):
        raise ConfigError(f"model {model or 'shipped'} takes no colour hints (a SIGGRAPH17 model does)")
    arrays = [_rgb(x) for x in items]
    out: list[np.ndarray | None] = [None] * len(items)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, a in enumerate(arrays):
        alone = bool(per_hints[i]) or per_boxes[i] is not None
        groups.setdefault((i,) if alone else a.shape[:2], []).append(i)
    with torch.no_grad():
        for members in groups.values():
            rgb = torch.from_numpy(np.stack([arrays[i] for i in members])).permute(0, 3, 1, 2)
            lightness = rgb_to_lab(rgb)[:, :1]
            h, w = lightness.shape[-2:]
            extra: dict[str, Any] = {}
            i0 = members[0]
            if per_hints[i0]:
                points = Hints.from_points(per_hints[i0], source="hints")
                extra["hints"] = points.rasterize((h, w), colorizer.network_size(h, w))
            if per_boxes[i0] is not None:
                extra["boxes"] = torch.as_tensor(np.asarray(per_boxes[i0], np.float32)).reshape(-1, 4)
            ab = colorizer.predict_ab(lightness, temperature, **extra).float().cpu()
            result = lab_to_rgb(torch.cat([lightness, ab], dim=1), clip=True)
            for j, i in enumerate(members):
                out[i] = result[j].permute(1, 2, 0).numpy().astype(np.float32)
    return out[0] if single else out  # type: ignore[return-value]


def _per_image(value: Any, n: int, single: bool, what: str) -> list[Any]:
    if value is None:
        return [None] * n
    if single:
        return [value]
    if not isinstance(value, Sequence) or len(value) != n:
        raise ConfigError(f"{what}: give one entry (or None) per image, {n} in all")
    return list(value)


def colorize_panel(gray: np.ndarray, colorized: np.ndarray, original: np.ndarray | None = None) -> np.ndarray:
    """Side by side, at most 384 pixels high: the grayscale input, the colorized photo and (if given) the
    original, as ``tinct colorize`` writes ``<stem>_panel.png``; uint8 ``(h, W, 3)``.

    Example:
        >>> a = np.zeros((20, 30, 3), np.float32)
        >>> colorize_panel(a, a, a).shape
        (20, 98, 3)
    """
    import torch
    import torch.nn.functional as F

    from tinct.colorization import strips

    h, w = colorized.shape[:2]
    size = strips.panel_size(h, w)
    parts = []
    for a in (gray, colorized, original):
        if a is None:
            continue
        t = torch.from_numpy(_rgb(a)).permute(2, 0, 1)[None]
        parts.append(F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)[0])
    panel = strips.join_panel(parts)
    return (panel.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


# -- illuminant --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _task(source: str, device: str, kind: str) -> Any:
    from tinct.core.checks import check_device
    from tinct.engine.modelfile import load_model

    task = load_model(source)
    if task.cfg.task != kind:
        raise ConfigError(f"{source}: a {task.cfg.task!r} model, not an {kind!r} one")
    return task.to(check_device(device)).eval()


def _illuminant_model(model: Any, device: str) -> Any:
    from tinct.constancy.predict import CLASSICAL_ESTIMATES

    if isinstance(model, str) and model in CLASSICAL_ESTIMATES:
        return model
    source = _source(DEFAULT_ILLUMINANT_MODEL if model is None else model)
    return _task(str(source), str(device), "illuminant")


def _levels(estimator: Any) -> tuple[float, float | None]:
    """Black and saturation levels a learned estimator's linear files were stored with (classical: 0, none)."""
    from tinct.constancy.task import raw_levels

    return (0.0, None) if isinstance(estimator, str) else raw_levels(estimator.cfg)


def _estimate(estimator: Any, photos: Sequence[Any]) -> np.ndarray:
    import torch

    from tinct.constancy.folder import thumbnail
    from tinct.constancy.predict import classical_estimates

    if isinstance(estimator, str):
        return np.stack([classical_estimates(p)[estimator] for p in photos])
    size = estimator.cfg.data.size
    thumbs = torch.stack([thumbnail(p.image, p.mask, size) for p in photos])
    with torch.no_grad():
        est = estimator(thumbs.to(estimator.device))
    return est.float().cpu().numpy().astype(np.float64)


def estimate_illuminant(
    images: Image | Sequence[Image],
    model: Any = None,
    *,
    device: str = "cpu",
    batch_size: int = 32,
    linear: bool | None = None,
) -> np.ndarray:
    """The illuminant of linear camera images: unit-norm camera RGB of the light, one row per image.

    Args:
        images: camera raw files (DNG, CR2, NEF ...), linear files (16-bit PNG / TIFF, float ``.npy``),
            display-encoded photos (JPEG: linearised with the sRGB curve, with a warning: the estimate is
            only approximate), arrays (float: linear in [0, 1]; uint16: linear; uint8: display-encoded), PIL
            images (display-encoded), or a list of them.
        model: an illuminant run directory, checkpoint, model file or ``.onnx`` graph (``tinct export``); a classical
            method (``"gray_world"``, ``"white_patch"``, ``"shades_of_gray"``, ``"gray_edge"``); or None: the
            shipped FFCC estimator trained on Cube+ (Canon 550D; other cameras' sensors differ).
        device: where a learned model runs.
        batch_size: thumbnails per forward pass.
        linear: override whether arrays are linear (default: float and uint16 are, uint8 is not).

    Returns:
        ``(3,)`` for one image, else ``(N, 3)``, float64.

    Raises:
        DataError: an unreadable file or an image without a usable pixel (named).
    """
    import warnings

    from tinct.constancy.predict import read_linear

    items, single = _many(images)
    estimator = _illuminant_model(model, device)
    levels = _levels(estimator)
    rows = []
    for start in range(0, len(items), batch_size):
        photos = [read_linear(x, levels, linear=linear) for x in items[start : start + batch_size]]
        for p in photos:
            for note in p.warnings:
                warnings.warn(note, stacklevel=2)
        rows.append(_estimate(estimator, photos))
    est = np.concatenate(rows) if rows else np.zeros((0, 3))
    return est[0] if single else est


@dataclass
class WhiteBalance:
    """What :func:`white_balance` found for one image.

    Attributes:
        illuminant: ``(3,)`` unit-norm estimate of the chosen model.
        preview: ``(H, W, 3)`` float32 sRGB in [0, 1], white-balanced with it.
        original: ``(H, W, 3)`` the same rendering without white balance.
        classical: ``{method: (3,) estimate}`` of the classical methods, for comparison.
        warnings: what had to be assumed about the input (display-encoded, no colour matrix).
    """

    illuminant: np.ndarray
    preview: np.ndarray
    original: np.ndarray
    classical: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def white_balance(
    image: Image, model: Any = None, *, device: str = "cpu", linear: bool | None = None
) -> WhiteBalance:
    """Estimate one image's illuminant (``model`` as :func:`estimate_illuminant`) and white-balance it;
    the classical methods' estimates come alongside.

    Raises:
        DataError: an unreadable file or an image without a usable pixel (named).
    """
    import torch

    from tinct.constancy.predict import balanced_preview, classical_estimates, read_linear

    estimator = _illuminant_model(model, device)
    photo = read_linear(image, _levels(estimator), linear=linear)
    est = _estimate(estimator, [photo])[0]
    preview = balanced_preview(photo, torch.as_tensor(est, dtype=torch.float32))
    original = balanced_preview(photo, None)
    return WhiteBalance(
        illuminant=est,
        preview=preview.permute(1, 2, 0).numpy().astype(np.float32),
        original=original.permute(1, 2, 0).numpy().astype(np.float32),
        classical=classical_estimates(photo),
        warnings=list(photo.warnings),
    )


# -- patch colour ------------------------------------------------------------------------------------


def _patch_files(
    photos: Sequence[Image], folder: Path, metadata: Sequence[Mapping[str, Any] | None]
) -> list[Path]:
    """Paths of the photos; arrays and PIL images are written (PNG, with a PIL image's EXIF, and a
    ``<stem>.json`` of ``metadata``) into ``folder``, a temporary folder the caller removes."""
    import json

    from PIL import Image as PILImage

    paths = []
    for i, (photo, meta) in enumerate(zip(photos, metadata, strict=True)):
        if isinstance(photo, str | os.PathLike):
            if meta:
                raise ConfigError(
                    "metadata= is for arrays and PIL images; a file's come from its EXIF or <stem>.json"
                )
            paths.append(Path(photo))
            continue
        path = folder / f"photo-{i}.png"
        if hasattr(photo, "convert") and not isinstance(photo, np.ndarray):
            exif = photo.getexif()
            photo.convert("RGB").save(path, exif=exif)
        else:
            PILImage.fromarray((_rgb(photo) * 255.0 + 0.5).astype(np.uint8)).save(path)
        if meta:
            path.with_suffix(".json").write_text(json.dumps(dict(meta)))
        paths.append(path)
    return paths


def _patch_predictions(photos: Any, model: Any, device: str, metadata: Any) -> tuple[list[Any], bool]:
    from tinct.patch.predict import predict_patches

    items, single = _many(photos)
    metas = _per_image(metadata, len(items), single, "metadata")
    task = _task(str(_source(DEFAULT_PATCH_MODEL if model is None else model)), str(device), "patch")
    with tempfile.TemporaryDirectory(prefix="tinct-patch-") as tmp:
        paths = _patch_files(items, Path(tmp), metas)
        return predict_patches(task, paths, device=task.device), single


def predict_patch(
    photos: Image | Sequence[Image],
    model: Any = None,
    *,
    device: str = "cpu",
    metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
) -> np.ndarray:
    """The CIELAB colour (D65 / 2 degrees) of the patch in each photo, from the photo and its camera
    metadata (EXIF, or ``<stem>.json`` beside the file).

    Args:
        photos: photo files, PIL images (their EXIF is used) or arrays, or a list of them.
        model: a patch run directory, checkpoint, model file or ``.onnx`` graph, or None: the shipped model (cross-attention
            fusion, trained on tinct's synthetic skin-patch photos of three cameras).
        device: where the model runs.
        metadata: for arrays and PIL images, EXIF-style values (``{"ExposureTime": 0.01, "ISO": 400,
            "FNumber": 2.8, "BrightnessValue": 3.2, "Model": ...}`` or tinct's keys ``exposure_time``,
            ``iso``, ``f_number``, ``brightness``, ``camera``); one per image for a list.

    Returns:
        ``(3,)`` L*, a*, b* for one photo, else ``(N, 3)``.

    Raises:
        DataError: an unreadable photo, or one in which no patch is found (named).
    """
    preds, single = _patch_predictions(photos, model, device, metadata)
    lab = np.stack([p.lab for p in preds]).astype(np.float64)
    return lab[0] if single else lab


def patch_prediction(
    photo: Image, model: Any = None, *, device: str = "cpu", metadata: Mapping[str, Any] | None = None
) -> Any:
    """:func:`predict_patch` for one photo with what lies behind it: a
    :class:`~tinct.patch.predict.PatchPrediction` (``lab``, the ``box`` found, the ``crop`` the network saw,
    the ``metadata`` used, a ``swatch`` of the predicted colour)."""
    preds, _ = _patch_predictions(photo, model, device, metadata)
    return preds[0]
