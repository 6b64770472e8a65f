from __future__ import annotations

from pathlib import Path

import pytest

from tinct.engine.config import config_from_dict

TINY = {
    "task": "illuminant",
    "name": "tiny",
    "seed": 1,
    "data": {"kind": "mondrian", "n_train": 64, "n_val": 32, "n_test": 32, "size": 16, "batch_size": 32},
    "model": {"backbone": "small_cnn", "width": 4, "depth": 2, "hidden": 8},
    "optim": {"lr": 0.01},
    "trainer": {"max_epochs": 2, "progress": "none"},
}


@pytest.fixture
def tiny_cfg(tmp_path: Path):
    return config_from_dict({**TINY, "output_dir": str(tmp_path / "runs")})
