"""Label-aware constancy augmentation: the label follows relighting; geometry and intensity keep it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tinct.color.illuminant import angular_error
from tinct.constancy.transforms import ConstancyAugment, relight


def _grey_batch(b: int = 32, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    illum = F.normalize(torch.rand(b, 3, generator=g) + 0.2, dim=-1)
    shade = torch.rand(b, 1, size, size, generator=g) * 0.8 + 0.1
    return {
        "image": shade * illum[:, :, None, None],  # achromatic scene: every pixel has the illuminant's colour
        "mask": torch.zeros(b, 1, size, size, dtype=torch.bool),
        "illuminant": illum,
    }


def test_relight_hand_computed() -> None:
    out = relight(torch.ones(1, 3, 1, 1), torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([[1.0, 1.0, 1.0]]))
    # gains 1/L normalised to green: (2, 1, 0.5)
    torch.testing.assert_close(out.flatten(), torch.tensor([2.0, 1.0, 0.5]))


@pytest.mark.parametrize("mode", ["dataset", "random"])
def test_label_follows_relighting(mode: str) -> None:
    batch = _grey_batch()
    aug = ConstancyAugment(
        16, illuminants=batch["illuminant"], relight=mode, p_relight=1.0, rotate=30, crop=0.6
    )
    torch.manual_seed(1)
    out = aug(batch)
    usable = (~out["mask"]).float()
    mean_rgb = (out["image"] * usable).sum((-2, -1)) / usable.sum((-2, -1))
    assert angular_error(mean_rgb, out["illuminant"], dim=-1).max() < 1e-3
    assert angular_error(out["illuminant"], batch["illuminant"], dim=-1).mean() > 1.0, "labels did change"


def test_no_relight_keeps_labels_and_shapes() -> None:
    batch = _grey_batch(size=20)
    out = ConstancyAugment(12, relight="none")(batch)
    assert out["image"].shape == (32, 3, 12, 12) and out["mask"].shape == (32, 1, 12, 12)
    torch.testing.assert_close(out["illuminant"], batch["illuminant"])


def test_rotation_masks_outside_corners() -> None:
    batch = _grey_batch(b=64)
    out = ConstancyAugment(16, crop=1.0, rotate=45, relight="none", flip=False)(batch)
    assert out["mask"].any(), "rotated frames leave empty corners, which must be masked"


def test_dataset_relight_needs_illuminants() -> None:
    with pytest.raises(ValueError, match="training illuminants"):
        ConstancyAugment(16, relight="dataset")
