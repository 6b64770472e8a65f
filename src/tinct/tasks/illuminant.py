"""Illuminant estimation as regression: a CNN maps a linear (or log) camera-RGB image to the illuminant.

Loss and metric are the recovery angular error in degrees (:func:`tinct.color.illuminant.angular_error`);
epoch statistics are the community's mean / median / trimean / best 25 % / worst 25 %.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from tinct.engine.config import ExperimentConfig, StrictModel
from tinct.models.backbones import create_backbone
from tinct.models.heads import PooledRegressionHead
from tinct.tasks.base import TASKS, Task

__all__ = ["IlluminantConfig", "IlluminantDataConfig", "IlluminantModelConfig", "IlluminantTask"]


class IlluminantDataConfig(StrictModel):
    """Data of the illuminant task: synthetic Mondrians (embedded default) or a folder (``gt.csv`` layout)."""

    kind: Literal["mondrian", "folder"] = "mondrian"
    root: str | None = None
    n_train: int = Field(2048, ge=1)
    n_val: int = Field(256, ge=1)
    n_test: int = Field(256, ge=1)
    size: int = Field(32, ge=8)
    cct_range: tuple[float, float] = (2500.0, 10000.0)
    black_level: float = 0.0
    saturation: float | None = None
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, ge=0, lt=1)
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _folder_needs_root(self) -> IlluminantDataConfig:
        if self.kind == "folder" and not self.root:
            raise ValueError("data.kind 'folder' needs data.root (a folder with gt.csv: image,r,g,b)")
        return self


class IlluminantModelConfig(StrictModel):
    backbone: str = "small_cnn"
    width: int = Field(16, ge=1)
    depth: int = Field(4, ge=1)
    weights: str | None = None
    input_space: Literal["linear", "log"] = "linear"
    hidden: int = Field(64, ge=0)
    dropout: float = Field(0.0, ge=0, lt=1)


class IlluminantConfig(ExperimentConfig):
    task: Literal["illuminant"] = "illuminant"
    data: IlluminantDataConfig = IlluminantDataConfig()
    model: IlluminantModelConfig = IlluminantModelConfig()


class _Flip(Dataset[dict[str, Tensor]]):
    """Random horizontal flips (an illuminant is invariant to them)."""

    def __init__(self, base: Dataset[dict[str, Tensor]]) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        item = dict(self.base[i])
        if torch.rand(()) < 0.5:
            item["image"] = item["image"].flip(-1)
            item["mask"] = item["mask"].flip(-1)
        return item


class IlluminantDataModule(L.LightningDataModule):
    def __init__(self, cfg: IlluminantConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.train_set: Dataset[dict[str, Tensor]] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:  # idempotent: train() validates the data before Lightning runs
            return
        d, seed = self.cfg.data, self.cfg.seed
        if d.kind == "mondrian":
            from tinct.data.synthetic import MondrianDataset

            self.train_set = MondrianDataset(d.n_train, d.size, seed=3 * seed, cct_range=d.cct_range)
            self.val_set = MondrianDataset(d.n_val, d.size, seed=3 * seed + 1, cct_range=d.cct_range)
            self.test_set = MondrianDataset(d.n_test, d.size, seed=3 * seed + 2, cct_range=d.cct_range)
            return
        from tinct.data.illuminant_folder import IlluminantFolder, read_ground_truth

        assert d.root is not None  # guaranteed by IlluminantDataConfig
        gt = read_ground_truth(d.root)
        n = len(gt)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        n_test = round(n * d.test_fraction)
        n_val = max(1, round(n * d.val_fraction)) if n > 2 else 0
        parts = order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
        kw = {"size": d.size, "black": d.black_level, "saturation": d.saturation, "gt": gt}
        self.train_set = IlluminantFolder(d.root, indices=parts[0] or order, **kw)
        self.val_set = IlluminantFolder(d.root, indices=parts[1] or order, **kw)
        self.test_set = IlluminantFolder(d.root, indices=parts[2] or order, **kw)

    def _loader(self, ds: Dataset[Any], shuffle: bool) -> DataLoader[Any]:
        d = self.cfg.data
        return DataLoader(
            ds,
            batch_size=d.batch_size,
            shuffle=shuffle,
            num_workers=d.num_workers,
            persistent_workers=d.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        assert self.train_set is not None
        return self._loader(_Flip(self.train_set), True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.test_set, False)


@TASKS.register("illuminant")
class IlluminantTask(Task):
    """Regress the scene illuminant (unit-norm camera RGB) from a linear image.

    Inputs are normalised per image by their maximum (exposure invariance); with ``input_space: log`` the
    network sees ``linear_to_log`` of that (linearise first, then log).
    """

    Config = IlluminantConfig
    monitor = "val/angular_mean"
    monitor_mode = "min"
    error_name = "angular"

    def __init__(self, cfg: IlluminantConfig) -> None:
        super().__init__(cfg)
        m = cfg.model
        self.backbone = create_backbone(m.backbone, in_channels=3, weights=m.weights, **_backbone_kwargs(m))
        self.head = PooledRegressionHead(self.backbone.num_features, 3, hidden=m.hidden, dropout=m.dropout)

    def preprocess(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        from tinct.color.log import linear_to_log

        if mask is not None:
            image = image.masked_fill(mask, 0.0)
        scale = image.amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-6)
        x = image / scale
        return linear_to_log(x) if self.cfg.model.input_space == "log" else x

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        rgb = F.softplus(self.head(features)) + 1e-4
        return rgb / rgb.norm(dim=-1, keepdim=True)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.forward_head(self.forward_features(self.preprocess(image, mask)))

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        from tinct.color.illuminant import angular_error

        pred = self(batch["image"], batch.get("mask"))
        errors = angular_error(pred, batch["illuminant"], dim=-1)
        return {"loss": errors.mean(), "output": pred, "errors": errors}

    def build_datamodule(self) -> L.LightningDataModule:
        return IlluminantDataModule(self.cfg)  # type: ignore[arg-type]

    def with_data(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        data = self.cfg.data.model_copy(
            update={"kind": "folder", "root": str(path), "test_fraction": 0.999999}
        )
        return self.cfg.model_copy(update={"data": data})

    @torch.no_grad()
    def predict_files(self, paths: Sequence[Path], out_dir: Path) -> list[dict[str, Any]]:
        from tinct.color.illuminant import correct_illuminant
        from tinct.color.rgb import linear_to_srgb, srgb_to_linear
        from tinct.data.illuminant_folder import linear_from_raw, thumbnail
        from tinct.data.io import read_image, to_tensor_image, write_image

        self.eval()
        d = self.cfg.data
        rows: list[dict[str, Any]] = []
        for path in paths:
            raw = read_image(path)
            if raw.linear:
                image, mask = linear_from_raw(raw, d.black_level, d.saturation)
            else:
                warnings.warn(
                    f"{path}: 8-bit / JPEG files are display-encoded sRGB, not linear camera RGB; "
                    "linearising with the sRGB curve, so the estimate is only approximate",
                    stacklevel=2,
                )
                image = srgb_to_linear(to_tensor_image(raw))
                mask = (image >= 1.0).any(dim=0, keepdim=True)
            thumb = thumbnail(image, mask, d.size).to(self.device)
            illum = self(thumb.unsqueeze(0))[0].cpu()
            balanced = correct_illuminant(image, illum)
            balanced = balanced / torch.quantile(
                balanced.flatten()[:: max(1, balanced.numel() // 200_000)], 0.99
            ).clamp_min(1e-6)
            preview = write_image(
                out_dir / f"{Path(path).stem}_balanced.png", linear_to_srgb(balanced.clamp(0, 1))
            )
            r, g, b = illum.tolist()
            rows.append({"image": str(path), "r": r, "g": g, "b": b, "preview": str(preview)})
        return rows


def _backbone_kwargs(m: IlluminantModelConfig) -> dict[str, Any]:
    return {"width": m.width, "depth": m.depth} if m.backbone == "small_cnn" else {}
