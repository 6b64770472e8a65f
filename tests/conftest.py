"""Shared fixtures. Tests never need the network or a GPU; ``gpu`` tests skip without CUDA."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

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
