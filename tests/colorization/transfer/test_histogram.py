"""The CIELAB histogram baseline of classification (tinct.colorization.transfer.histogram)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tinct.colorization.transfer.data import ClassificationDataConfig
from tinct.colorization.transfer.histogram import histogram_baseline, lab_histogram
from tinct.core.exceptions import ConfigError, ShapeError


def _data(root: Path, **kw: object) -> ClassificationDataConfig:
    return ClassificationDataConfig(
        root=str(root), resize=40, crop=32, eval_size=32, val_fraction=0.2, test_fraction=0.3, **kw
    )


def test_histogram_is_normalised_and_flat() -> None:
    rgb = torch.rand(3, 16, 12, generator=torch.Generator().manual_seed(0))
    h = lab_histogram(rgb)
    assert h.shape == (4 * 9 * 9,) and h.dtype == np.float64
    assert h.sum() == pytest.approx(1.0) and (h >= 0).all()
    assert lab_histogram(rgb, bins=(2, 3, 5)).shape == (30,)
    np.testing.assert_array_equal(lab_histogram(rgb.numpy()), h)  # numpy in, same histogram


def test_grey_falls_in_the_central_ab_bin() -> None:
    # Grey photos of every lightness: a* = b* = 0 up to float rounding, in the middle of the middle a*, b* bin.
    for level in (0.0, 0.2, 0.5, 1.0):
        h = lab_histogram(torch.full((3, 4, 4), level)).reshape(4, 9, 9)
        assert h[:, 4, 4].sum() == pytest.approx(1.0), level
    # Black (L* 0) and white (L* 100) are the first and last lightness bins.
    assert lab_histogram(torch.zeros(3, 2, 2)).reshape(4, 9, 9)[0, 4, 4] == 1.0
    assert lab_histogram(torch.ones(3, 2, 2)).reshape(4, 9, 9)[3, 4, 4] == 1.0


def test_saturated_colours_land_in_the_expected_bins() -> None:
    # sRGB primaries in CIELAB (D65): red (53.2, 80.1, 67.2), blue (32.3, 79.2, -107.9); bins of 24.4 on
    # [-110, 110]: a* 80 -> 7, b* 67 -> 7, b* -108 -> 0. Half red, half blue: half the mass in each bin.
    rgb = torch.zeros(3, 2, 2)
    rgb[0, 0] = 1.0
    rgb[2, 1] = 1.0
    h = lab_histogram(rgb).reshape(4, 9, 9)
    assert h[2, 7, 7] == 0.5 and h[1, 7, 0] == 0.5


def test_histogram_refuses_bad_input() -> None:
    with pytest.raises(ShapeError):
        lab_histogram(torch.rand(4, 4, 3))
    with pytest.raises(ShapeError):
        lab_histogram(torch.rand(3, 0, 4))
    with pytest.raises(ConfigError, match="three positive integers"):
        lab_histogram(torch.rand(3, 4, 4), bins=(4, 0, 8))
    with pytest.raises(ConfigError, match="three positive integers"):
        lab_histogram(torch.rand(3, 4, 4), bins=(4, 8))


def test_baseline_tells_hues_apart(make_hue_folder: Callable[..., Path], tmp_path: Path) -> None:
    root = make_hue_folder(tmp_path / "hues")
    groups = {"warm": ["red"], "cool": ["green", "blue"]}
    out = tmp_path / "out"
    s = histogram_baseline(_data(root, groups=groups), Cs=(0.1, 1.0), out=out)
    assert s["classes"] == ["blue", "green", "red"]
    assert s["accuracy"] >= 0.9  # chance: 1/3
    assert s["macro_f1"] >= 0.85
    assert s["C"] in (0.1, 1.0) and 0.9 <= s["val_accuracy"] <= 1.0
    assert s["n_test"] == s["n"] == int(np.sum(s["matrix"])) > 0
    assert {"within_group_confusion", "accuracy_red", "features", "bins"} <= set(s)
    assert "CIELAB" in s["features"]
    saved = json.loads((out / "histogram_baseline.json").read_text())
    assert saved["accuracy"] == s["accuracy"] and saved["C"] == s["C"]
    assert (out / "figures" / "confusion_histogram.png").stat().st_size > 0


def test_baseline_refuses_bad_settings(make_hue_folder: Callable[..., Path], tmp_path: Path) -> None:
    root = make_hue_folder(tmp_path / "hues", per_class=2)
    with pytest.raises(ConfigError, match="Cs"):
        histogram_baseline(_data(root), Cs=())
    with pytest.raises(ConfigError, match="Cs"):
        histogram_baseline(_data(root), Cs=(1.0, -1.0))
    with pytest.raises(ConfigError, match="purple"):
        histogram_baseline(_data(root, groups={"x": ["purple"]}))
