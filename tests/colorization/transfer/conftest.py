"""Shared fixtures of the transfer tests: tiny folders of photos in class folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def hue_folder(root: Path, per_class: int = 12, size: int = 40, hues: dict[str, int] | None = None) -> Path:
    """Classes told apart by hue only (same saturation, same spread of value): ``root/<class>/<i>.png``."""
    import cv2

    rng = np.random.default_rng(0)
    for name, hue in (hues or {"red": 0, "green": 60, "blue": 120}).items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            hsv = np.empty((size, size, 3), np.uint8)
            hsv[..., 0] = hue
            hsv[..., 1] = 200
            ramp = np.linspace(rng.integers(60, 120), rng.integers(160, 255), size)[None, :]
            hsv[..., 2] = np.clip(ramp + rng.normal(0, 10, (size, size)), 0, 255)
            cv2.imwrite(str(root / name / f"{i}.png"), cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR))
    return root


def colorizer_file(path: Path, arch: str = "siggraph17", width: float = 0.125, seed: int = 0) -> Path:
    """A colorizer of random weights in the exported format (``tinct export``), BatchNorm statistics not the
    defaults (so a reset would show)."""
    import torch

    from tinct.colorization.networks import COLORIZERS
    from tinct.colorization.pretrained import FORMAT

    torch.manual_seed(seed)
    head = "regression" if arch == "siggraph17" else "classification"
    net = COLORIZERS.get(arch)(width=width, head=head)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    config = {
        "task": "colorization",
        "model": {"arch": arch, "width": width, "head": head, "infer_size": 32},
        "data": {"l_cent": 50.0, "l_norm": 100.0},
    }
    torch.save({"format": FORMAT, "config": config, "state_dict": net.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def make_colorizer_file() -> Callable[..., Path]:
    """:func:`colorizer_file`, for tests and fixtures of any scope."""
    return colorizer_file


@pytest.fixture(scope="session")
def make_hue_folder() -> Callable[..., Path]:
    """:func:`hue_folder`, for tests and fixtures of any scope."""
    return hue_folder
