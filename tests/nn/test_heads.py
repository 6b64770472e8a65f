"""Tests of tinct.nn.heads: FC4 confidence-weighted pooling and the pooled regression head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tinct.nn.heads import ConfidencePoolingHead, PooledRegressionHead


def _head(hidden: int = 0) -> ConfidencePoolingHead:
    torch.manual_seed(0)
    return ConfidencePoolingHead(5, hidden=hidden).double()


@pytest.mark.parametrize("hidden", [0, 8])
def test_output_is_confidence_times_unit_local_estimates(hidden: int) -> None:
    # Independent of the head's pooling code: normalise the raw local outputs by hand and weight them by
    # the confidence map the head reports (FC4, Hu et al. 2017, Eq. 3 with unit local estimates).
    head = _head(hidden)
    x = torch.rand(2, 5, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    raw = head.net(x)
    weight = head.confidence(x)
    assert weight.shape == (2, 1, 4, 6) and (weight >= 0).all()
    torch.testing.assert_close(weight.sum(dim=(-2, -1)), torch.ones(2, 1, dtype=torch.float64))
    torch.testing.assert_close(weight, raw[:, 3:] / raw[:, 3:].sum(dim=(-2, -1), keepdim=True))
    unit = raw[:, :3] / raw[:, :3].norm(dim=1, keepdim=True)
    expected = (weight * unit).sum(dim=(-2, -1))
    torch.testing.assert_close(head(x), expected)
    rgb, w = head.local(x)
    torch.testing.assert_close(rgb, raw[:, :3])
    torch.testing.assert_close(w, weight)


def test_a_huge_local_estimate_with_small_confidence_does_not_dominate() -> None:
    # Two locations: a red vote of norm 1000 with weight 0.01 and a blue vote of norm 1 with weight 0.99.
    # FC4 weighs directions by confidence only, so the pooled estimate is nearly blue; the old head
    # (confidence x norm) came out about 10 times redder than blue.
    head = ConfidencePoolingHead(1, hidden=0)
    local = torch.zeros(1, 4, 1, 2)
    local[0, :, 0, 0] = torch.tensor([1000.0, 0.0, 0.0, 0.01])
    local[0, :, 0, 1] = torch.tensor([0.0, 0.0, 1.0, 0.99])
    head.net = nn.Identity()
    out = head(local)
    torch.testing.assert_close(out, torch.tensor([[0.01, 0.0, 0.99]]))
    assert out[0, 2] > 50 * out[0, 0]
    torch.testing.assert_close(head.confidence(local).flatten(), torch.tensor([0.01, 0.99]))


def test_zero_local_estimate_votes_for_nothing_and_gradients_are_finite() -> None:
    head = ConfidencePoolingHead(1, hidden=0)
    head.net = nn.Identity()
    local = torch.zeros(1, 4, 1, 2)
    local[0, 3] = 1.0  # equal confidence, but the first location's estimate is zero
    local[0, 1, 0, 1] = 2.0
    local.requires_grad_()
    out = head(local)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.5, 0.0]]), atol=1e-6, rtol=0)
    out.sum().backward()
    assert torch.isfinite(local.grad).all()


@pytest.mark.parametrize("head", [ConfidencePoolingHead(6, hidden=4), PooledRegressionHead(6, 3, hidden=4)])
def test_forward_backward_every_parameter(head: nn.Module) -> None:
    torch.manual_seed(0)
    out = head(torch.rand(3, 6, 5, 5))
    assert out.shape == (3, 3)
    out.sum().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
