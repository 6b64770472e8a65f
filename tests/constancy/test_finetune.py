"""Illuminant task heads and initialisation from another run: frozen backbones really stay frozen."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinct.constancy.task import IlluminantConfig, IlluminantTask
from tinct.core.exceptions import ConfigError
from tinct.engine.train import train


def _cfg(tmp_path: Path, **model) -> IlluminantConfig:
    return IlluminantConfig.model_validate(
        {
            "name": "ft",
            "output_dir": str(tmp_path),
            "data": {"n_train": 32, "n_val": 16, "n_test": 16, "size": 16, "batch_size": 16},
            "model": {"width": 4, "depth": 2, "hidden": 8, **model},
            "trainer": {"max_epochs": 1, "progress": "none"},
        }
    )


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("src")
    train(_cfg(tmp), run_dir=tmp / "run", verbose=False)
    return tmp / "run"


def test_fc4_head_trains_and_predicts_unit_vectors(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, head="fc4")
    metrics = train(cfg, run_dir=tmp_path / "run", verbose=False)
    assert metrics["val/angular_mean"] < 45
    task = IlluminantTask(cfg).eval()
    out = task(torch.rand(2, 3, 16, 16))
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    assert task.head.confidence(task.forward_features(torch.rand(2, 3, 16, 16))).shape[1] == 1


def test_frozen_backbone_does_not_change(source_run: Path, tmp_path: Path) -> None:
    train(_cfg(tmp_path, init=str(source_run), freeze=True), run_dir=tmp_path / "frozen", verbose=False)
    before, after = _state(source_run), _state(tmp_path / "frozen")
    backbone = [k for k in before if k.startswith("backbone.")]
    assert any("running_mean" in k for k in backbone), "BatchNorm statistics are part of the check"
    for k in backbone:
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=0, msg=f"{k} changed while frozen")
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("head.")), "head trained"


def test_full_fine_tuning_changes_the_backbone(source_run: Path, tmp_path: Path) -> None:
    train(_cfg(tmp_path, init=str(source_run), freeze=False), run_dir=tmp_path / "full", verbose=False)
    before, after = _state(source_run), _state(tmp_path / "full")
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("backbone."))


def test_init_must_match_the_architecture(source_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.width is 4 but this config has 8"):
        train(_cfg(tmp_path, init=str(source_run), width=8), run_dir=tmp_path / "bad", verbose=False)


def test_freeze_without_init_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"freeze needs model\.init"):
        _cfg(tmp_path, freeze=True)
