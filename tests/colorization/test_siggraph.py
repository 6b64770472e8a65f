"""The SIGGRAPH17 network: shapes at odd sizes, its heads and stages, the 529-bin grid, its loss."""

from __future__ import annotations

import pytest
import torch

from tinct.colorization.networks import Colorizer
from tinct.colorization.siggraph import (
    AB_MAX,
    GRID_BINS,
    STAGES,
    SIGGRAPHNet,
    grid_bin_centers,
    grid_index,
    hint_input,
)
from tinct.colorization.task import ColorizationTask
from tinct.engine.config import config_from_dict


@pytest.mark.parametrize(("h", "w"), [(37, 53), (8, 8), (101, 17), (256, 341)])
def test_colorizer_at_odd_sizes(h: int, w: int) -> None:
    torch.manual_seed(0)
    colorizer = Colorizer(SIGGRAPHNet(width=0.125), infer_size=32).eval()
    rgb, lab = colorizer(torch.rand(1, 3, h, w))
    assert rgb.shape == lab.shape == (1, 3, h, w) and torch.isfinite(lab).all()
    assert lab[:, 1:].abs().max() <= AB_MAX + 1e-4  # tanh x 110


def test_width_one_is_the_papers_network() -> None:
    net = SIGGRAPHNet(width=1.0)
    # The authors' SIGGRAPHGenerator (colorization-pytorch): 64-512 channels, 529 + 2 outputs.
    assert sum(p.numel() for p in net.parameters()) == 34_187_027
    assert net.stage_channels == (64, 128, 256, 512, 512, 512, 512, 256, 256, 128, 128, 128, 128)
    assert len(STAGES) == 13


def test_heads_stages_and_split() -> None:
    torch.manual_seed(0)
    net = SIGGRAPHNet(width=0.125).eval()
    x = hint_input(torch.randn(2, 1, 24, 40))
    with torch.no_grad():
        out = net(x)
        stages = net.forward_stages(x)
        again = net.forward_head(stages[:7])
        features = net.forward_features(x)
    assert out.logits.shape == (2, GRID_BINS, 6, 10) and out.ab.shape == (2, 2, 24, 40)
    assert torch.equal(again.ab, out.ab) and torch.equal(again.logits, out.logits)
    assert torch.equal(features, stages[6]) and features.shape[1] == net.num_features
    # fuse replaces a stage's features and the network goes on from them.
    with torch.no_grad():
        zeroed = net(x, lambda i, t: torch.zeros_like(t) if i == 12 else t)
    constant = torch.tanh(net.regressor[0].bias) * AB_MAX  # zero features: the head's bias alone
    assert torch.allclose(zeroed.ab, constant[None, :, None, None].expand_as(zeroed.ab))
    assert torch.equal(zeroed.logits, out.logits)


def test_grid_index_is_the_nearest_centre() -> None:
    ab = (torch.rand(1, 2, 9, 9) * 240 - 120).double()
    index = grid_index(ab)
    centres = grid_bin_centers(torch.float64)
    d = (ab.permute(0, 2, 3, 1)[..., None, :] - centres).square().sum(-1)  # (1, 9, 9, 529)
    inside = (ab.abs() <= AB_MAX).all(1)
    assert torch.equal(index[inside], d.argmin(-1)[inside])


def test_hint_input_encoding() -> None:
    lightness = torch.full((1, 1, 4, 4), 0.25)
    ab = torch.zeros(1, 2, 4, 4)
    ab[0, :, 1, 2] = torch.tensor([55.0, -22.0])
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 1, 2] = 1.0
    x = hint_input(lightness, ab + 7.0 * (1 - mask), mask)  # ab outside the mask is ignored
    assert x[0, 1:3, 1, 2].tolist() == pytest.approx([0.5, -0.2]) and x[0, 1:3].abs().sum() == pytest.approx(
        0.7
    )
    assert x[0, 3, 1, 2] == 0.5 and (x[0, 3].sum() == 0.5 - 15 * 0.5)


def test_siggraph_training_step_with_hints_and_rebalancing() -> None:
    torch.manual_seed(0)
    cfg = config_from_dict(
        {
            "task": "colorization",
            "data": {"hints": {"rate": 1.0}},
            "model": {"arch": "siggraph17", "head": "regression", "width": 0.125, "rebalance": True},
        }
    )
    task = ColorizationTask(cfg)  # type: ignore[arg-type]
    task.train()
    batch = {"image": torch.rand(2, 3, 32, 32)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = task.step(batch)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["ce"] > 0 and out["huber"] > 0
    assert all(p.grad is not None for p in task.net.parameters())
    with pytest.raises(ValueError, match=r"model\.head: regression"):
        config_from_dict({"task": "colorization", "model": {"arch": "siggraph17"}})
