"""Label-aware constancy augmentation: the label follows relighting; geometry and intensity keep it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tinct.color.illuminant import angular_error
from tinct.constancy.transforms import ConstancyAugment, clip_saturated, relight


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


def _relight_to(target: list[float], intensity: tuple[float, float] = (1.0, 1.0)) -> ConstancyAugment:
    """Deterministic photometric augmentation: every sample relit to ``target``, no geometry."""
    return ConstancyAugment(
        16, crop=1.0, flip=False, rotate=0.0, intensity=intensity, relight="dataset",
        illuminants=torch.tensor([target]), jitter=0.0, p_relight=1.0,
    )  # fmt: skip


def test_gains_above_one_clip_at_saturation_and_mask_as_a_camera() -> None:
    # Images of the constancy data path saturate at 1.0. Relit from grey to (2, 1, 0.5), red doubles:
    # the camera would have clipped every pixel whose red went past 1, so they must be clipped and masked.
    batch = _grey_batch()
    grey = F.normalize(torch.ones(32, 3), dim=-1)
    batch["image"] = batch["image"] / batch["illuminant"][:, :, None, None]  # grey scene in [0.1, 0.9]
    batch["illuminant"] = grey
    batch["mask"][:, :, 0, 0] = True  # an already unusable pixel stays unusable
    out = _relight_to([2.0, 1.0, 0.5])(batch)
    gained = batch["image"] * torch.tensor([2.0, 1.0, 0.5])[:, None, None]
    assert gained.max() > 1.2, "the test needs super-whites"
    assert out["image"].max() <= 1.0
    clipped = (gained >= 1.0).any(dim=1, keepdim=True)
    assert torch.equal(out["mask"], batch["mask"] | clipped)
    torch.testing.assert_close(out["image"], gained.clamp(max=1.0))
    # a global intensity gain above 1 (over-exposure) clips too
    out = ConstancyAugment(16, crop=1.0, flip=False, rotate=0.0, intensity=(1.5, 1.5), relight="none")(batch)
    assert out["image"].max() <= 1.0
    assert torch.equal(out["mask"], batch["mask"] | (batch["image"] * 1.5 >= 1.0).any(dim=1, keepdim=True))


def test_gains_below_one_keep_the_mask() -> None:
    batch = _grey_batch()
    batch["mask"][:, :, 3, 4] = True
    grey = F.normalize(torch.ones(32, 3), dim=-1)
    batch["image"] = batch["image"] / batch["illuminant"][:, :, None, None]  # grey scene in [0.1, 0.9]
    batch["illuminant"] = grey
    out = _relight_to([0.5, 1.0, 0.7])(batch)
    assert torch.equal(out["mask"], batch["mask"])
    torch.testing.assert_close(out["image"], batch["image"] * torch.tensor([0.5, 1.0, 0.7])[:, None, None])


def test_clip_saturated_hand_values() -> None:
    image = torch.tensor([[0.2, 1.0, 0.4], [0.3, 0.3, 0.3], [1.5, 0.1, 0.1]]).T.reshape(3, 1, 3)
    out, mask = clip_saturated(image, torch.zeros(1, 1, 3, dtype=torch.bool))
    assert mask.flatten().tolist() == [True, False, True]
    assert out.max() == 1.0 and out[0, 0, 2] == 1.0 and out[1, 0, 2] == pytest.approx(0.1)
    out, mask = clip_saturated(image * 100, torch.zeros(1, 1, 3, dtype=torch.bool), saturation=65535.0)
    assert not mask.any() and torch.equal(out, image * 100)
