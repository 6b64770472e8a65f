"""Colorization epoch metrics: AuC pooled over every pixel of the epoch, not a mean of per-batch AuCs."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from tinct.color.lab import lab_to_rgb, rgb_to_lab
from tinct.colorization.metrics import (
    ABAccuracy,
    ABAuC,
    ab_errors,
    colorfulness,
    pixel_rebalancing_weights,
    psnr,
)
from tinct.colorization.task import ColorizationConfig, ColorizationModelConfig, ColorizationTask


def test_metric_is_abaccuracy_and_merges() -> None:
    g = torch.Generator().manual_seed(0)
    errors = torch.rand(3, 8, 8, generator=g) * 160
    weights = torch.rand(3, 8, 8, generator=g) * 5
    first, second = ABAuC(), ABAuC()
    first.update(errors[:1], weights[:1])
    second.update(errors[1:], weights[1:])
    first.merge_state(second)  # what the synchronisation across processes does: histograms summed
    expected = ABAccuracy().update(errors, weights).auc()
    assert first.compute().item() == pytest.approx(expected, abs=1e-12)


def _batches() -> list[dict[str, torch.Tensor]]:
    """Two batches of very different difficulty: three small near-grey photos, one big saturated one."""
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(3, 1, 16, 16, generator=g).expand(3, 3, 16, 16) * 0.8 + 0.1
    vivid = torch.zeros(1, 3, 32, 32)
    vivid[0, 0, :16], vivid[0, 1, 16:, :16], vivid[0, 2, 16:, 16:] = 1.0, 1.0, 1.0
    vivid[0, :2, :16, 16:] = 1.0  # red, green, blue, yellow quarters
    return [{"image": grey.contiguous()}, {"image": vivid}]


def test_validation_auc_is_pooled_over_every_pixel() -> None:
    torch.manual_seed(0)
    task = ColorizationTask(ColorizationConfig(model=ColorizationModelConfig(width=0.125)))
    batches = _batches()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    (logged,) = trainer.validate(task, dataloaders=DataLoader(batches, batch_size=None), verbose=False)

    # Independently: the model's predictions, every pixel pooled into one ABAccuracy per variant.
    raw, reb = ABAccuracy(), ABAccuracy()
    per_batch: dict[str, list[float]] = {"raw": [], "reb": []}
    image_psnr, image_cf, image_error = [], [], []
    task.eval()
    with torch.no_grad():
        for batch in batches:
            lab = rgb_to_lab(batch["image"])
            pred = task.colorizer().decode(task((lab[:, :1] - 50.0) / 100.0))
            pred = F.interpolate(pred, size=lab.shape[-2:], mode="bilinear", align_corners=False)
            errors, weights = ab_errors(pred, lab[:, 1:]), pixel_rebalancing_weights(lab[:, 1:])
            raw.update(errors)
            reb.update(errors, weights)
            per_batch["raw"].append(ABAccuracy().update(errors).auc())
            per_batch["reb"].append(ABAccuracy().update(errors, weights).auc())
            rgb = lab_to_rgb(torch.cat([lab[:, :1], pred], 1), clip=True)
            image_psnr += psnr(rgb, batch["image"]).clamp(max=100.0).tolist()
            image_cf += colorfulness(rgb).tolist()
            image_error += errors.mean(dim=(-2, -1)).tolist()
    sizes = [3, 1]  # the old per-batch AuCs, averaged by Lightning weighted by batch size
    for key, pooled, name in (("raw", raw, "val/auc_raw"), ("reb", reb, "val/auc_rebalanced")):
        old = sum(s * v for s, v in zip(sizes, per_batch[key], strict=True)) / sum(sizes)
        assert abs(pooled.auc() - old) > 0.05  # the two batches really differ, so the test can fail
        assert float(logged[name]) == pytest.approx(pooled.auc(), abs=1e-6)
    assert float(logged["val/psnr"]) == pytest.approx(sum(image_psnr) / 4, rel=1e-5)
    assert float(logged["val/colorfulness"]) == pytest.approx(sum(image_cf) / 4, rel=1e-5)
    assert float(logged["val/ab_error_mean"]) == pytest.approx(sum(image_error) / 4, rel=1e-5)
    median = sum(sorted(image_error)[1:3]) / 2  # of four values: the mean of the middle two
    assert float(logged["val/ab_error_median"]) == pytest.approx(median, rel=1e-5)
