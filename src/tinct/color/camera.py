"""White-balanced camera RGB to linear sRGB through the camera's colour matrix (the DNG / dcraw approach).

A raw file carries a matrix from CIE XYZ to the camera's native RGB (the DNG ``ColorMatrix``, or the
Adobe coefficients LibRaw / dcraw keep for each camera model). Composed with the sRGB primaries it maps
linear sRGB to camera RGB; each row is then scaled to sum to 1, so that the camera's neutral (1, 1, 1 after
white balance) corresponds to the sRGB white (1, 1, 1), i.e. to D65, and the inverse of that matrix maps
white-balanced camera RGB to linear sRGB. This is dcraw's ``cam_xyz_coeff`` and the DNG specification's
mapping with the white balance already applied; it does not adapt chromatically between the scene
illuminant and D65 (white balance has done that, von Kries in camera RGB), and it ignores the camera's
tone and hue / saturation profiles, so the colours are those of a neutral, linear rendering.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tinct.color.rgb import SRGB_TO_XYZ_MATRIX, _matmul_channels
from tinct.core.checks import check_channel_dim, check_floating, check_shape

__all__ = ["CameraToLinearSrgb", "camera_to_linear_srgb", "camera_to_srgb_matrix"]


def camera_to_srgb_matrix(xyz_to_camera: Tensor) -> Tensor:
    r"""The matrix from white-balanced camera RGB to linear sRGB of a camera's XYZ -> camera matrix.

    .. math::
        M_{sRGB \to cam} = M_{XYZ \to cam} M_{sRGB \to XYZ}, \quad
        \tilde M = \mathrm{diag}(M_{sRGB \to cam} \mathbf{1})^{-1} M_{sRGB \to cam}, \quad
        M_{cam \to sRGB} = \tilde M^{-1}

    Args:
        xyz_to_camera: camera RGB from CIE XYZ (the DNG ``ColorMatrix``; any row scale, which the row
            normalisation removes).

    Returns:
        ``M_cam->sRGB``, same dtype and device; each row sums to 1, so camera ``(k, k, k)`` maps to sRGB
        ``(k, k, k)``.

    Raises:
        TypeCheckError: ``xyz_to_camera`` is not a floating tensor.
        ShapeError: it is not ``(*, 3, 3)``.
        ValueError: the camera's response to the sRGB white is not positive in some channel (the matrix is
            not a camera matrix: wrong orientation, camera -> XYZ instead of XYZ -> camera?), or the
            normalised matrix is singular or not finite.

    Shape:
        - xyz_to_camera: :math:`(*, 3, 3)`.
        - output: :math:`(*, 3, 3)`.

    Note:
        The sRGB -> XYZ matrix is :data:`tinct.color.rgb.SRGB_TO_XYZ_MATRIX` (IEC 61966-2-1, the one
        colour-science uses: ``colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ``). LibRaw's
        ``color_matrix`` of a DNG (computed with dcraw's 6-digit sRGB matrix) agrees to about 1e-3.

    Example:
        >>> xyz_to_camera = torch.tensor([[0.8, -0.2, -0.05], [-0.4, 1.3, 0.1], [-0.05, 0.15, 0.6]])
        >>> camera_to_srgb_matrix(xyz_to_camera).sum(dim=-1)
        tensor([1.0000, 1.0000, 1.0000])

    References:
        Adobe, Digital Negative (DNG) Specification 1.4.0.0 (2012), chapter 6, "Mapping Camera Color
        Space to CIE XYZ Space". D. Coffin, dcraw.c, ``cam_xyz_coeff``.
    """
    check_floating(xyz_to_camera, "xyz_to_camera")
    check_shape(xyz_to_camera, ["*", "3", "3"], "xyz_to_camera")
    srgb_to_xyz = torch.as_tensor(SRGB_TO_XYZ_MATRIX, dtype=xyz_to_camera.dtype, device=xyz_to_camera.device)
    srgb_to_camera = xyz_to_camera @ srgb_to_xyz
    white = srgb_to_camera.sum(dim=-1, keepdim=True)
    if not bool((white > 0).all()):
        raise ValueError(
            "xyz_to_camera: the camera's response to the sRGB white must be positive in every channel, got "
            f"{white.squeeze(-1).tolist()}; expected a camera-from-XYZ matrix (a DNG ColorMatrix)"
        )
    normalised = srgb_to_camera / white
    # Singular to working precision (rows that differ only in scale, a zero row ...): its inverse is noise.
    cond = torch.linalg.cond(normalised.detach())
    if not bool((cond < 1.0 / torch.finfo(normalised.dtype).eps).all()):
        raise ValueError(
            f"xyz_to_camera: the normalised camera matrix is singular (condition number {cond.max().item():.3g}); "
            "it cannot be inverted"
        )
    return torch.linalg.inv(normalised)


def camera_to_linear_srgb(x: Tensor, xyz_to_camera: Tensor, dim: int = -3) -> Tensor:
    """Convert white-balanced camera RGB to linear sRGB with the camera's colour matrix.

    Args:
        x: white-balanced camera RGB (a neutral surface has equal channels).
        xyz_to_camera: the camera's ``(3, 3)`` XYZ -> camera RGB matrix; see :func:`camera_to_srgb_matrix`.
        dim: channel axis.

    Returns:
        Linear sRGB, same shape and dtype as ``x``; not clipped (saturated colours outside the sRGB gamut
        give values below 0 or above 1).

    Raises:
        TypeCheckError, ShapeError, ValueError: as :func:`camera_to_srgb_matrix`, or ``x`` has no 3
            channels along ``dim``.

    Shape:
        - x: :math:`(*, 3, H, W)` (``dim=-3``) or :math:`(*, 3)` (``dim=-1``).
        - xyz_to_camera: :math:`(3, 3)`.
        - output: same as ``x``.

    Note:
        Domain camera RGB >= 0 (any scale: the map is linear), range linear sRGB of the same scale;
        neutrals stay neutral and keep their value.

    Example:
        >>> xyz_to_camera = torch.tensor([[0.8, -0.2, -0.05], [-0.4, 1.3, 0.1], [-0.05, 0.15, 0.6]])
        >>> camera_to_linear_srgb(torch.tensor([[0.5, 0.5, 0.5]]), xyz_to_camera, dim=-1)
        tensor([[0.5000, 0.5000, 0.5000]])

    References:
        Adobe, Digital Negative (DNG) Specification 1.4.0.0 (2012), chapter 6.
    """
    pos = check_channel_dim(x, dim)
    check_shape(xyz_to_camera, ["3", "3"], "xyz_to_camera")
    matrix = camera_to_srgb_matrix(xyz_to_camera.to(device=x.device, dtype=x.dtype))
    return _matmul_channels(x, matrix, pos)


class CameraToLinearSrgb(nn.Module):
    """Module twin of :func:`camera_to_linear_srgb`; the camera matrix is a buffer (it follows ``.to()``)."""

    xyz_to_camera: Tensor

    def __init__(self, xyz_to_camera: Tensor, dim: int = -3) -> None:
        super().__init__()
        check_shape(check_floating(xyz_to_camera, "xyz_to_camera"), ["3", "3"], "xyz_to_camera")
        camera_to_srgb_matrix(xyz_to_camera)  # a bad matrix is refused here, not at the first forward
        self.register_buffer("xyz_to_camera", xyz_to_camera.detach().clone())
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return camera_to_linear_srgb(x, self.xyz_to_camera, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
