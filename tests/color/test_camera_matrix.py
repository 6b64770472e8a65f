"""Tests of tinct.color.camera: camera RGB -> linear sRGB through the DNG / dcraw camera matrix.

The reference is computed in numpy with colour-science's sRGB matrix
(``colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ``, colour-science 0.4.7) as dcraw's ``cam_xyz_coeff``
does: rows of sRGB -> camera normalised to sum to 1, then inverted.
"""

from __future__ import annotations

import colour
import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from tinct.color.camera import CameraToLinearSrgb, camera_to_linear_srgb, camera_to_srgb_matrix
from tinct.core.exceptions import ShapeError, TypeCheckError

#: XYZ -> camera of the Canon EOS 5D Mark II under D65 (dcraw.c adobe_coeff, / 10000).
CANON = torch.tensor(
    [[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480], [-0.1496, 0.1937, 0.6651]], dtype=torch.float64
)


def reference(xyz_to_camera: np.ndarray) -> np.ndarray:
    srgb_to_camera = xyz_to_camera @ colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ
    return np.linalg.inv(srgb_to_camera / srgb_to_camera.sum(axis=1, keepdims=True))


def test_matches_the_dcraw_normalisation_with_colour_sciences_srgb_matrix() -> None:
    np.testing.assert_allclose(camera_to_srgb_matrix(CANON).numpy(), reference(CANON.numpy()), atol=1e-12)


def test_a_camera_that_sees_srgb_needs_no_conversion() -> None:
    # the exact inverse: colour-science's matrix_XYZ_to_RGB is IEC's 4-decimal one (see tinct.color.rgb)
    xyz_to_srgb = torch.from_numpy(np.linalg.inv(colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ))
    torch.testing.assert_close(camera_to_srgb_matrix(xyz_to_srgb), torch.eye(3, dtype=torch.float64))


def test_neutrals_stay_neutral_and_row_scale_is_irrelevant() -> None:
    m = camera_to_srgb_matrix(CANON)
    torch.testing.assert_close(m.sum(dim=-1), torch.ones(3, dtype=torch.float64))
    scaled = torch.diag(torch.tensor([2.0, 0.5, 3.0], dtype=torch.float64)) @ CANON
    torch.testing.assert_close(camera_to_srgb_matrix(scaled), m)
    grey = torch.full((2, 3, 4, 5), 0.25, dtype=torch.float64)
    torch.testing.assert_close(camera_to_linear_srgb(grey, CANON), grey)


def test_image_and_colour_list_layouts_agree_and_batches_broadcast() -> None:
    x = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    as_list = camera_to_linear_srgb(x.movedim(1, -1), CANON, dim=-1).movedim(-1, 1)
    torch.testing.assert_close(camera_to_linear_srgb(x, CANON), as_list)
    torch.testing.assert_close(
        camera_to_srgb_matrix(torch.stack([CANON, 2 * CANON]))[1], camera_to_srgb_matrix(CANON)
    )


def test_float32_image_with_float64_matrix_keeps_the_image_dtype() -> None:
    x = torch.rand(3, 4, 4)
    out = camera_to_linear_srgb(x, CANON)
    assert out.dtype == torch.float32 and out.shape == x.shape


def test_gradcheck() -> None:
    x = torch.rand(1, 3, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert gradcheck(
        camera_to_linear_srgb, (x.requires_grad_(), CANON.clone().requires_grad_()), eps=1e-6, atol=1e-6
    )


def test_module_equals_function_and_follows_to() -> None:
    module = CameraToLinearSrgb(CANON.float())
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(module(x), camera_to_linear_srgb(x, CANON.float()))
    assert module.to(torch.float64).xyz_to_camera.dtype == torch.float64
    assert "xyz_to_camera" in module.state_dict()


def test_bad_matrices_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"xyz_to_camera: expected shape \(\*, 3, 3\)"):
        camera_to_srgb_matrix(torch.eye(4))
    with pytest.raises(ShapeError, match=r"expected shape \(3, 3\)"):
        camera_to_linear_srgb(torch.rand(3, 2, 2), torch.stack([CANON, CANON]))
    with pytest.raises(TypeCheckError, match="floating-point"):
        camera_to_srgb_matrix(torch.eye(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="response to the sRGB white must be positive"):
        camera_to_srgb_matrix(-CANON)
    singular = CANON.clone()
    singular[2] = singular[0] * 1.5
    with pytest.raises(ValueError, match="singular"):
        camera_to_srgb_matrix(singular)
    with pytest.raises(ValueError, match="positive"):
        CameraToLinearSrgb(-CANON)
