"""Shared fixtures. Tests never need the network or a GPU; ``gpu`` tests skip without CUDA."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Set (to anything but "" or "0") in CI: a test whose reference data are missing fails instead of skipping.
REQUIRE_DATA = "TINCT_REQUIRE_DATA"


def shared_path(relative: str = "") -> Path:
    """``../shared/data/<relative>`` if it exists; else skip (a user's clone has no ``../shared``), or fail
    when ``TINCT_REQUIRE_DATA`` is set, so that CI never passes by skipping the tests on real data."""
    path = SHARED / relative if relative else SHARED
    if not path.exists():
        message = f"reference data {path} not present (only in development checkouts and CI)"
        if os.environ.get(REQUIRE_DATA, "") not in ("", "0"):
            pytest.fail(f"{message}, and {REQUIRE_DATA} is set", pytrace=False)
        pytest.skip(f"{message}; set {REQUIRE_DATA}=1 to make this a failure")
    return path


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (present in CI and development, absent on a user's clone): see :func:`shared_path`."""
    return shared_path()


@pytest.fixture
def shared_file() -> Callable[[str], Path]:
    """``shared_file("spectra/x.csv")``: a path under ``../shared/data``, or skip / fail as :func:`shared_path`."""
    return shared_path


@pytest.fixture(autouse=True)
def _isolate_run_dir_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINCT_RUN_DIR", raising=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# -- photos in class folders and colorizer files, for the transfer tests (tests/colorization/transfer) --


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
