import colour
import numpy as np
import pytest
import torch

from tinct.constancy.mondrian import MondrianDataset
from tinct.spectral.locus import daylight_xy, planckian_xy, sample_illuminants


def test_planckian_matches_colour_science_kang2002() -> None:
    cct = np.array([1700.0, 2000.0, 2856.0, 3500.0, 5000.0, 6504.0, 10000.0, 20000.0])
    ref = np.stack([colour.temperature.CCT_to_xy_Kang2002(t) for t in cct])
    assert np.allclose(planckian_xy(torch.tensor(cct)).numpy(), ref, atol=1e-9)


def test_daylight_matches_colour_science_cie_d() -> None:
    cct = np.array([4000.0, 5003.0, 6504.0, 7000.0, 7500.0, 12000.0, 25000.0])
    ref = np.stack([colour.temperature.CCT_to_xy_CIE_D(t) for t in cct])
    assert np.allclose(daylight_xy(torch.tensor(cct)).numpy(), ref, atol=1e-9)


def test_range_errors() -> None:
    with pytest.raises(ValueError, match="4000"):
        daylight_xy(torch.tensor([3000.0]))
    with pytest.raises(ValueError):
        sample_illuminants(3, cct_range=(1000.0, 5000.0))


def test_sampled_illuminants_are_warm_to_cool() -> None:
    ill = sample_illuminants(2000, torch.Generator().manual_seed(0))
    assert ill.shape == (2000, 3) and torch.allclose(ill.norm(dim=1), torch.ones(2000), atol=1e-5)
    assert (ill > 0).all()
    ratio = ill[:, 2] / ill[:, 0]  # blue / red spans warm (< 1) to cool (> 1) light
    assert ratio.min() < 0.5 and ratio.max() > 1.0


def test_mondrian_deterministic_and_in_range() -> None:
    a, b = MondrianDataset(3, size=16, seed=5), MondrianDataset(3, size=16, seed=5)
    for i in range(3):
        assert torch.equal(a[i]["image"], b[i]["image"])
    item = a[0]
    assert item["image"].min() >= 0 and item["image"].max() <= 1
    assert not torch.equal(a[0]["image"], MondrianDataset(3, size=16, seed=6)[0]["image"])
    with pytest.raises(IndexError):
        a[3]
