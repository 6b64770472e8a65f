"""Real raw data end to end: 16-bit PNG decoding, saturation masking, angular error, statistics.

Reference: ../shared/data/README.md states that Gray World on the 30 INTEL-TAU IMX135 images (black level
already subtracted, saturated pixels excluded) gives a mean angular error of about 3.5 degrees and a median
of about 2.3 degrees against the JSON ground truth.
"""

import json

import pytest
import torch

from tinct.color import angular_error
from tinct.constancy.folder import load_linear
from tinct.engine.statistics import error_statistics


def test_gray_world_on_intel_tau_imx135(shared_data) -> None:
    root = shared_data / "constancy" / "intel_tau_imx135"
    pngs = sorted(root.glob("*.png"))
    assert len(pngs) == 30
    errors, clipped = [], 0
    for png in pngs:
        image, mask = load_linear(png)
        assert image.dtype == torch.float32 and image.shape == (3, 256, 384)
        clipped += int(mask.any())
        gt = json.loads(png.with_name(f"{png.stem}_metadata.json").read_text())["illuminant_color_raw"]
        estimate = image[:, ~mask[0]].mean(dim=1)
        errors.append(angular_error(estimate, torch.tensor(gt), dim=-1))
    assert clipped > 0  # some scenes have highlights clipped at 65535, and they are masked
    stats = error_statistics(torch.stack(errors))
    assert stats["mean"] == pytest.approx(3.5, abs=0.1)
    assert stats["median"] == pytest.approx(2.3, abs=0.1)
