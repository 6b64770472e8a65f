"""Shared fixtures. Tests never need the network or a GPU; ``gpu`` tests skip without CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, torch.get_num_threads()))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (present in CI and development, absent on a user's clone)."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} not present (only in development checkouts)")
    return SHARED


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
