"""Perceptual metrics of colorized photos: SSIM maps in bounded memory, and LPIPS and FID from weights the
user names (nothing is downloaded). Used by :mod:`tinct.colorization.evaluation`.

References:
    Wang, Z., Bovik, A. C., Sheikh, H. R., & Simoncelli, E. P. (2004). Image quality assessment: from error
    visibility to structural similarity. IEEE TIP 13(4), 600-612. https://doi.org/10.1109/TIP.2003.819861

    Zhang, R., Isola, P., Efros, A. A., Shechtman, E., & Wang, O. (2018). The Unreasonable Effectiveness of
    Deep Features as a Perceptual Metric. CVPR 2018. https://arxiv.org/abs/1801.03924

    Heusel, M., Ramsauer, H., Unterthiner, T., Nessler, B., & Hochreiter, S. (2017). GANs Trained by a Two
    Time-Scale Update Rule Converge to a Local Nash Equilibrium. NeurIPS 2017 (FID).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinct.core.exceptions import ConfigError, DataError

__all__ = ["FID_WEIGHTS_FILE", "load_fid", "load_lpips", "lpips_score", "ssim_map"]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


#: The file name of the FID Inception weights (torch-fidelity's conversion of the TensorFlow FID network).
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"

# Sigma of the SSIM window; torchmetrics' window is 2 * int(3.5 sigma + 0.5) + 1 = 11 pixels wide.
_SSIM_SIGMA = 1.5
# Rows of the SSIM map computed at a time: bounds its temporaries (about 200 bytes a pixel) for large photos.
_SSIM_ROWS = 512
# Smallest side each LPIPS backbone's five feature maps exist for (measured with torchmetrics 1.9).
_LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}

# -- SSIM ------------------------------------------------------------------------------------------------


def ssim_map(pred: Tensor, target: Tensor, sigma: float = _SSIM_SIGMA, rows: int = _SSIM_ROWS) -> Tensor:
    """The full SSIM map of sRGB images (data range 1, Gaussian window), computed ``rows`` rows at a time.

    Each strip is taken with ``pad`` rows of context on both sides (the image's own rows, or its reflection
    at the top and bottom, as torchmetrics pads the whole image), so the map equals torchmetrics'
    ``structural_similarity_index_measure(pred, target, data_range=1.0, return_full_image=True)`` up to
    float rounding, in bounded memory.

    Args:
        pred: sRGB images in [0, 1].
        target: sRGB images in [0, 1], same shape.
        sigma: standard deviation of the Gaussian window in pixels (its width is 2 int(3.5 sigma + 0.5) + 1).
        rows: rows per strip.

    Returns:
        SSIM per pixel and channel, in [-1, 1] (1 where the images agree); its mean is the image's SSIM.

    Raises:
        ValueError: an image side is not longer than the window's half-width (nothing to reflect).

    Shape:
        - pred, target: :math:`(B, C, H, W)`.
        - Output: :math:`(B, C, H, W)`.

    Example:
        >>> x = torch.rand(1, 3, 40, 30, generator=torch.Generator().manual_seed(0))
        >>> bool((ssim_map(x, x) - 1).abs().max() < 1e-4)
        True
        >>> y = (x + 0.1).clamp(0, 1)
        >>> bool((ssim_map(y, x, rows=7) - ssim_map(y, x)).abs().max() < 1e-5)
        True

    References:
        Wang, Bovik, Sheikh & Simoncelli (2004), IEEE TIP 13(4), 600-612.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    pad = int(3.5 * sigma + 0.5)
    h, w = pred.shape[-2:]
    if min(h, w) <= pad:
        raise ValueError(f"ssim_map: images must be more than {pad} pixels on a side, got {h} x {w}")

    def full(a: Tensor, b: Tensor) -> Tensor:
        _, out = structural_similarity_index_measure(
            a, b, gaussian_kernel=True, sigma=sigma, data_range=1.0, return_full_image=True
        )
        return out  # type: ignore[no-any-return]

    if h <= rows:
        return full(pred, target)
    strips = []
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        index = torch.arange(r0 - pad, r1 + pad, device=pred.device)
        index = torch.where(index < 0, -index, index)
        index = torch.where(index > h - 1, 2 * (h - 1) - index, index)
        strips.append(full(pred.index_select(-2, index), target.index_select(-2, index))[..., pad:-pad, :])
    return torch.cat(strips, dim=-2)


# -- LPIPS -----------------------------------------------------------------------------------------------


def _backbone_state(path: Path) -> tuple[str, dict[str, Tensor]]:
    """The ``features`` tensors of torchvision AlexNet / VGG-16 weights, keyed as in ``model.features``."""
    from tinct.nn.weights import read_state_dict

    state = read_state_dict(path, "LPIPS backbone weights")
    features: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("classifier."):
            continue  # a whole torchvision model: the classifier is not used
        features[key.removeprefix("features.")] = value
    kernels = sum(1 for v in features.values() if v.ndim == 4)
    net = {5: "alex", 13: "vgg"}.get(kernels)
    if net is None:
        raise DataError(
            f"{path}: not torchvision AlexNet or VGG-16 weights ({kernels} convolution kernels; expected 5 or 13)"
        )
    return net, features


def load_lpips(path: str | os.PathLike[str]) -> nn.Module:
    """The LPIPS network with its backbone from a local file, built without any download.

    The linear layers are those torchmetrics ships (``lpips_models/alex.pth`` / ``vgg.pth``, from the LPIPS
    release, version 0.1); the backbone is built at random (``pnet_rand=True``) and loaded from ``path``:
    torchvision's ImageNet AlexNet or VGG-16 weights (``alexnet-owt-7be5be79.pth``,
    ``vgg16-397923af.pth``: the whole model's state dict, or its ``features``'), which the linear layers were
    fitted on. Which backbone is read from the file.

    Args:
        path: a local ``.pth`` file, read with ``torch.load(weights_only=True)``.

    Returns:
        torchmetrics' LPIPS module in eval mode (:func:`lpips_score` runs it); ``pnet_type`` names the backbone.

    Raises:
        DataError: the file is missing, unsafe or unreadable, or holds other weights (named).
    """
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    path = Path(path)
    net_type, features = _backbone_state(path)
    lpips = _NoTrainLpips(net=net_type, pnet_rand=True)  # type: ignore[arg-type]
    own = lpips.net.state_dict()
    missing = [k for k in own if k.split(".", 1)[1] not in features]
    if missing:
        raise DataError(f"{path}: LPIPS backbone tensor {missing[0].split('.', 1)[1]!r} missing")
    try:
        lpips.net.load_state_dict({k: features[k.split(".", 1)[1]] for k in own})
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if "size mismatch" in ln]
        raise DataError(
            f"{path}: LPIPS backbone weights do not fit ({(lines or [_first_line(err)])[0]})"
        ) from err
    return lpips.eval()


def lpips_score(
    lpips: nn.Module, pred: Tensor, target: Tensor, spatial: bool = False
) -> tuple[float, Tensor | None]:
    """LPIPS of one sRGB image against another, and (``spatial``) its map at the image's resolution.

    The score is torchmetrics' (sum over the five layers of the spatial mean of the linear layer applied to
    the squared difference of unit-normalised features); the map sums each layer's map upsampled bilinearly
    to the image (the LPIPS release's ``spatial=True``), for means over regions.

    Args:
        lpips: from :func:`load_lpips`.
        pred: sRGB in [0, 1].
        target: sRGB in [0, 1], same shape.
        spatial: also return the map.

    Returns:
        ``(score, map)``: score >= 0 (0 for identical images; lower is more similar), and the map
        :math:`(1, 1, H, W)` or None.

    Raises:
        ValueError: the image is smaller than the backbone's smallest input (AlexNet 31, VGG 16 pixels).

    Shape:
        - pred, target: :math:`(1, 3, H, W)`.
    """
    h, w = pred.shape[-2:]
    least = _LPIPS_MIN_SIDE.get(getattr(lpips, "pnet_type", "alex"), 31)
    if min(h, w) < least:
        raise ValueError(f"lpips_score: images must be at least {least} pixels on a side, got {h} x {w}")
    device = next(lpips.parameters()).device
    outs0 = lpips.net(lpips.scaling_layer(2 * pred.to(device) - 1))
    outs1 = lpips.net(lpips.scaling_layer(2 * target.to(device) - 1))
    score = torch.zeros((), dtype=torch.float64)
    spatial_map = None
    for layer, (f0, f1) in enumerate(zip(outs0, outs1, strict=True)):
        n0 = f0 / torch.sqrt(1e-8 + f0.square().sum(1, keepdim=True))
        n1 = f1 / torch.sqrt(1e-8 + f1.square().sum(1, keepdim=True))
        diff = lpips.lins[layer]((n0 - n1).square())
        score += diff.mean().double().cpu()
        if spatial:
            up = F.interpolate(diff, size=(h, w), mode="bilinear", align_corners=False).cpu()
            spatial_map = up if spatial_map is None else spatial_map + up
    return float(score), spatial_map


# -- FID -------------------------------------------------------------------------------------------------


def load_fid(path: str | os.PathLike[str]) -> Any:
    """torchmetrics' ``FrechetInceptionDistance`` (2048 features) with its Inception from a local file.

    The file is torch-fidelity's FID Inception weights (``pt_inception-2015-12-05-6726825d.pth``, the
    TensorFlow FID network converted). It is read with ``torch.load(weights_only=True)`` and handed to
    torch-fidelity as a copy written from its tensors (torch-fidelity itself loads with
    ``weights_only=False``), so no code in the user's file is ever run. Updates take uint8 images.

    Args:
        path: a local ``.pth`` file.

    Returns:
        A ``FrechetInceptionDistance`` (``normalize=False``: uint8 sRGB images :math:`(B, 3, H, W)`).

    Raises:
        ConfigError: torch-fidelity, which torchmetrics' FID needs, is not installed.
        DataError: the file is missing, unsafe or unreadable, or holds other weights (named).
    """
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    path = Path(path)
    if not _TORCH_FIDELITY_AVAILABLE:
        raise ConfigError(
            f"--fid-weights {path}: FID needs the torch-fidelity package, which is not installed "
            "(pip install torch-fidelity)"
        )
    from torchmetrics.image.fid import FrechetInceptionDistance

    from tinct.nn.weights import read_state_dict

    state = read_state_dict(path, "FID Inception weights")
    with tempfile.TemporaryDirectory(prefix="tinct-fid-") as tmp:
        safe = Path(tmp) / "inception.pth"
        torch.save(dict(state), safe)
        try:
            return FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(safe))
        except RuntimeError as err:
            raise DataError(
                f"{path}: not the FID Inception weights ({FID_WEIGHTS_FILE}): {_first_line(err)}"
            ) from err
