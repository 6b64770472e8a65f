"""Perceptual patch colour: the CIELAB (D65) colour of a skin patch from a photo plus camera metadata.

The network (:class:`tinct.patch.networks.PatchColorNet`) sees a crop around the patch (tight, or with
``data.context`` pixels of background), optionally robust colour statistics of the patch and its surround
("mean features"), and the camera metadata (exposure time, ISO, EV100, brightness, camera) fused by
concatenation, FiLM or cross-attention. The loss is CIEDE2000 (:func:`tinct.color.delta_e_ciede2000`,
finite gradients at zero difference) plus optional Huber terms in Lab and sRGB. Validation and test log
``de00_mean / median / trimean / best25 / worst25 / p90 / max`` and ``share_below_1``, over every patch of
the split (all processes of a distributed run); the test of a run also writes
``patch_metrics.json`` (overall, per camera, per exposure bin), ``patch_predictions.csv`` and
``figures/patch_swatches.png``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn
from torchmetrics import Metric

from tinct.core.config import ExperimentConfig, StrictModel
from tinct.core.exceptions import DataError
from tinct.engine.task import TASKS, ReportColumn, ReportTable, SplitDataModule, Task

__all__ = [
    "PatchConfig",
    "PatchDataConfig",
    "PatchDataModule",
    "PatchLossConfig",
    "PatchModelConfig",
    "PatchTask",
]


class PatchDataConfig(StrictModel):
    """Data of the patch task.

    ``kind``: ``synthetic`` (:mod:`tinct.patch.synth`, generated into ``root`` or a folder under
    ``output_dir`` on first use) or ``folder`` (photos + ``labels.csv``, see :mod:`tinct.patch.labels`).
    ``split``: ``group`` holds whole shades / sets out, ``camera`` whole cameras (``test_cameras``),
    ``random`` single photos. ``crop``: ``auto`` finds the patch (:func:`tinct.patch.crop.locate_patch`,
    boxes cached under ``output_dir/cache``), ``labels`` reads ``patch_x0..patch_y1`` from the CSV,
    ``none`` takes whole images as the patch. ``context``: pixels of background kept around the patch.
    """

    kind: Literal["synthetic", "folder"] = "synthetic"
    root: str | None = None
    synth_n: int = Field(2000, ge=8)
    synth_size: tuple[int, int] = (160, 120)
    synth_seed: int = 0
    photos_per_shade: int = Field(8, ge=1)
    split: Literal["random", "group", "camera"] = "group"
    test_cameras: list[str] | None = None
    val_fraction: float = Field(0.15, ge=0, lt=1)
    test_fraction: float = Field(0.2, ge=0, le=1)
    split_seed: int = 0
    split_file: str | None = None
    crop: Literal["auto", "labels", "none"] = "auto"
    context: int = Field(0, ge=0)
    size: int = Field(64, ge=16)
    augment: bool = True
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> PatchDataConfig:
        if self.kind == "folder" and not self.root:
            raise ValueError("data.kind 'folder' needs data.root (photos + labels.csv)")
        return self

    def synthetic_root(self, output_dir: str) -> str:
        if self.root:
            return self.root
        w, h = self.synth_size
        name = f"synth-patches-n{self.synth_n}-{w}x{h}-p{self.photos_per_shade}-s{self.synth_seed}"
        return str(Path(output_dir) / "data" / name)


class PatchModelConfig(StrictModel):
    """Network of the patch task (see :class:`tinct.patch.networks.PatchColorNet`).

    ``metadata: false`` is the image-only model (fusion ``none``). ``cameras`` is the camera vocabulary of
    the learned embedding; left empty it is read from the training data and recorded in the run's config.
    ``weights``: a local backbone weights file, loaded exactly (an ImageNet classifier head aside) unless
    ``weights_partial: true``, which loads what matches and warns about the rest.
    """

    backbone: str = "small_cnn"
    width: int = Field(16, ge=1)
    depth: int = Field(4, ge=1)
    weights: str | None = None
    weights_partial: bool = False
    fusion: Literal["none", "concat", "film", "cross_attention"] = "concat"
    metadata: bool = True
    mean_features: bool = False
    device_embedding: bool = False
    cameras: list[str] = Field(default_factory=list)
    hidden: int = Field(128, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)

    @field_validator("backbone")
    @classmethod
    def _backbone(cls, name: str) -> str:
        from tinct.nn.backbones import BACKBONES

        if name not in BACKBONES and not name.startswith("timm/"):
            raise ValueError(
                f"unknown backbone {name!r}; valid: {', '.join(BACKBONES.names())}, timm/<model>"
            )
        return name

    @property
    def uses_metadata(self) -> bool:
        return self.metadata and self.fusion != "none"


class PatchLossConfig(StrictModel):
    """Loss weights: CIEDE2000 plus Huber terms on Lab and on sRGB (``huber_delta`` in their units)."""

    de00: float = Field(1.0, ge=0)
    huber_lab: float = Field(0.05, ge=0)
    huber_rgb: float = Field(0.0, ge=0)
    huber_delta: float = Field(1.0, gt=0)


class PatchConfig(ExperimentConfig):
    task: Literal["patch"] = "patch"
    data: PatchDataConfig = PatchDataConfig()
    model: PatchModelConfig = PatchModelConfig()
    loss: PatchLossConfig = PatchLossConfig()


def ensure_synthetic_patches(d: PatchDataConfig, output_dir: str) -> str:
    """Generate the synthetic patch set of ``d`` unless it is already complete; returns its folder."""
    from tinct.patch.synth import synthesize_patches

    root = Path(d.synthetic_root(output_dir))
    if not ((root / "labels.csv").is_file() and (root / "synth.json").is_file()):
        synthesize_patches(
            root, d.synth_n, size=d.synth_size, photos_per_shade=d.photos_per_shade, seed=d.synth_seed
        )
    return str(root)


class PatchDataModule(SplitDataModule):
    """Table, splits, patch boxes and loaders of :class:`PatchDataConfig`."""

    def __init__(self, cfg: PatchConfig) -> None:
        super().__init__(cfg)
        self._data: Any = None
        self.split_indices: dict[str, list[int]] = {}

    @property
    def data(self) -> Any:
        """The :class:`tinct.patch.labels.PatchTable` (read once)."""
        if self._data is None:
            from tinct.patch.labels import read_patch_table

            d = self.cfg.data
            root = ensure_synthetic_patches(d, self.cfg.output_dir) if d.kind == "synthetic" else d.root
            assert root is not None
            if not Path(root).is_dir():
                raise DataError(f"{root}: patch data folder not found")
            self._data = read_patch_table(root)
        return self._data

    def splits(self) -> dict[str, list[int]]:
        """Row indices of train / val / test (``data.split``; a split file fixes them across runs)."""
        from tinct.patch.splits import split_patches

        d, table = self.cfg.data, self.data.table
        n = len(table)
        if d.test_fraction >= 1.0:
            return {"train": [], "val": [], "test": list(range(n))}
        splits = split_patches(
            table, d.split, val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.split_seed,
            test_cameras=d.test_cameras,
        )  # fmt: skip
        if d.split_file:
            from tinct.core.splits import fixed_splits

            names = table["image"].astype(str).tolist()
            row = {name: i for i, name in enumerate(names)}
            own = {k: [names[i] for i in v] for k, v in splits.items()}
            where = {"kind": "patch", "root": str(Path(self.data.root).resolve()), "split": d.split}
            fixed = fixed_splits(d.split_file, own, where, names)
            splits = {k: sorted(row[x] for x in fixed[k]) for k in ("train", "val", "test")}
        return splits

    def boxes(self) -> dict[str, tuple[int, int, int, int] | None] | None:
        """Tight patch box of every image (``None`` for ``crop: none``; an image's box is None when the
        adaptive crop finds no patch in it)."""
        d, data = self.cfg.data, self.data
        names = data.table["image"].astype(str).tolist()
        if d.crop == "none":
            return None
        if d.crop == "labels":
            columns = ["patch_x0", "patch_y0", "patch_x1", "patch_y1"]
            missing = [c for c in columns if c not in data.table.columns]
            if missing:
                raise DataError(f"{data.root / 'labels.csv'}: data.crop 'labels' needs the columns {missing}")
            values = data.table[columns].to_numpy()
            return {name: tuple(int(v) for v in row) for name, row in zip(names, values, strict=True)}
        return _cached_boxes(data, names, Path(self.cfg.output_dir) / "cache")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from tinct.patch.dataset import PatchDataset

        d = self.cfg.data
        self.split_indices = self.splits()
        if not self.split_indices["train"] and stage in (None, "fit"):
            raise DataError(f"{self.data.root}: no training images left after the split")
        boxes = self.boxes()
        if boxes is not None:
            names = self.data.table["image"].astype(str).tolist()
            lost = [names[i] for v in self.split_indices.values() for i in v if boxes[names[i]] is None]
            if lost:
                warnings.warn(
                    f"{self.data.root}: no patch found in {len(lost)} image(s), left out "
                    f"(first: {lost[0]}); see `tinct data crop` and its contact sheet",
                    stacklevel=2,
                )
                self.split_indices = {
                    k: [i for i in v if boxes[names[i]] is not None] for k, v in self.split_indices.items()
                }
        cameras = {name: i + 1 for i, name in enumerate(self.cfg.model.cameras)}
        sets = {
            k: PatchDataset(self.data, v, boxes=boxes, size=d.size, context=d.context, camera_index=cameras)
            for k, v in self.split_indices.items()
        }
        self.train_set, self.val_set, self.test_set = sets["train"], sets["val"] or sets["test"], sets["test"]


def _cached_boxes(
    data: Any, names: list[str], cache_dir: Path
) -> dict[str, tuple[int, int, int, int] | None]:
    """Boxes found by :func:`tinct.patch.crop.locate_patch` (None: no patch found), cached per data folder
    and labels file under ``cache_dir``; a progress bar shows the first pass."""
    from tinct.core.atomic import atomic_write_json
    from tinct.core.progress import track
    from tinct.io.image import read_image
    from tinct.patch.crop import locate_patch

    root = Path(data.root).resolve()
    labels = root / "labels.csv"
    stamp = f"{root}|{labels.stat().st_mtime_ns if labels.is_file() else 0}"
    path = cache_dir / f"patch-boxes-{hashlib.sha1(stamp.encode()).hexdigest()[:16]}.json"
    cached: dict[str, list[int] | None] = {}
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
        except json.JSONDecodeError:
            cached = {}
    todo = [n for n in names if n not in cached]
    for name in track(todo, description="locating patches", total=len(todo), enabled=bool(todo)):
        try:
            cached[name] = list(locate_patch(read_image(root / name).array).as_tuple())
        except DataError:
            cached[name] = None
    if todo:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, cached)
    return {n: None if cached[n] is None else tuple(int(v) for v in cached[n]) for n in names}  # type: ignore[misc, union-attr]


def _record_metrics() -> dict[str, Metric]:
    from torchmetrics.aggregation import CatMetric

    # nan_strategy "disable": a NaN row stays (in line with the others) for de00_statistics to refuse.
    return {k: CatMetric(nan_strategy="disable") for k in ("index", "pred", "de00")}


@TASKS.register("patch")
class PatchTask(Task):
    """Predict the CIELAB (D65 / 2 degrees) colour of a patch from its photo and camera metadata."""

    Config = PatchConfig
    monitor = "val/de00_mean"
    monitor_mode = "min"
    error_name = "de00"
    report_table = ReportTable(
        "Patch table",
        (
            ReportColumn("ΔE00 mean", "de00_mean"),
            ReportColumn("median", "de00_median"),
            ReportColumn("p90", "de00_p90"),
            ReportColumn("share < 1", "share_below_1"),
        ),
        note="CIEDE2000 colour difference; share < 1: fraction of patches with ΔE00 below 1",
    )

    def __init__(self, cfg: PatchConfig) -> None:
        datamodule = None
        if cfg.model.uses_metadata and not cfg.model.cameras:
            datamodule = PatchDataModule(cfg)
            # The training split's cameras: a held-out camera (split: camera) stays "unknown" (id 0)
            # instead of getting an embedding row that was never trained.
            table = datamodule.data.table
            train = datamodule.splits()["train"]
            cameras = sorted({str(c) for c in table["camera"].iloc[train]} - {"unknown"})
            cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"cameras": cameras})})
            datamodule.cfg = cfg
        super().__init__(cfg)
        self._datamodule = datamodule
        from tinct.patch.networks import PatchColorNet

        m = cfg.model
        self.net = PatchColorNet(
            max(1, len(m.cameras)), backbone=m.backbone, fusion=m.fusion if m.metadata else "none",
            width=m.width, depth=m.depth, weights=m.weights, weights_partial=m.weights_partial,
            use_metadata=m.uses_metadata,
            mean_features=m.mean_features, device_embedding=m.device_embedding, hidden=m.hidden,
            dropout=m.dropout,
        )  # fmt: skip
        # Standardisation of the metadata and colour statistics, measured on the training split.
        self.register_buffer("meta_mean", torch.zeros(4))
        self.register_buffer("meta_std", torch.ones(4))
        self.register_buffer("stats_mean", torch.zeros(12))
        self.register_buffer("stats_std", torch.ones(12))
        # Every test patch's row index, prediction and error, gathered from all processes for the table.
        self.test_records = nn.ModuleDict(_record_metrics())
        self.test_table: Any = None

    # -- data ------------------------------------------------------------------------------------
    def build_datamodule(self) -> PatchDataModule:
        if self._datamodule is None or self._datamodule.cfg is not self.cfg:
            self._datamodule = PatchDataModule(self.cfg)  # type: ignore[arg-type]
        return self._datamodule

    def with_data(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        data = self.cfg.data.model_copy(
            update={"kind": "folder", "root": str(path), "split": "random", "test_fraction": 1.0,
                    "split_file": None}
        )  # fmt: skip
        return self.cfg.model_copy(update={"data": data})

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        dm = self.build_datamodule()
        dm.setup("fit")
        samples = [dm.train_set[i] for i in range(len(dm.train_set))]
        meta = torch.stack([s["meta"] for s in samples])
        mask = torch.stack([s["meta_mask"] for s in samples])
        stats = torch.stack([s["stats"] for s in samples])
        lab = torch.stack([s["lab"] for s in samples])
        for j in range(meta.shape[1]):
            known = meta[mask[:, j], j]
            if known.numel() > 1:
                self.meta_mean[j] = known.mean()
                self.meta_std[j] = known.std().clamp_min(1e-3)
        self.stats_mean.copy_(stats.mean(0))
        self.stats_std.copy_(stats.std(0).nan_to_num(1.0).clamp_min(1e-3))
        self.net.lab_mean.copy_(lab.mean(0))
        self.net.lab_scale.copy_(lab.std(0).nan_to_num(1.0).clamp_min(1.0))

    # -- model -----------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        meta = (batch["meta"] - self.meta_mean) / self.meta_std
        meta = torch.where(batch["meta_mask"], meta, torch.zeros_like(meta))
        stats = (batch["stats"] - self.stats_mean) / self.stats_std if "stats" in batch else None
        device = None
        if self.cfg.model.device_embedding:
            names = self.cfg.model.cameras
            device = [names[int(c) - 1] if 0 < int(c) <= len(names) else None for c in batch["camera"]]
        return self.net(batch["image"], meta, batch["meta_mask"], batch["camera"], stats=stats, device=device)

    def _augment(self, image: Tensor) -> Tensor:
        # Colour-preserving geometry only: per-sample horizontal / vertical flips.
        b = image.shape[0]
        flip_h = torch.rand(b, 1, 1, 1, device=image.device) < 0.5
        flip_v = torch.rand(b, 1, 1, 1, device=image.device) < 0.5
        image = torch.where(flip_h, image.flip(-1), image)
        return torch.where(flip_v, image.flip(-2), image)

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        from tinct.color.difference import delta_e_ciede2000
        from tinct.color.lab import lab_to_rgb

        if self.training and self.cfg.data.augment:
            batch = {**batch, "image": self._augment(batch["image"])}
        pred = self(batch)
        target = batch["lab"]
        errors = delta_e_ciede2000(pred, target, dim=-1)
        w = self.cfg.loss  # type: ignore[attr-defined]
        out = {"de00": errors.mean()}
        loss = w.de00 * out["de00"]
        if w.huber_lab > 0:
            out["huber_lab"] = F.huber_loss(pred, target, delta=w.huber_delta)
            loss = loss + w.huber_lab * out["huber_lab"]
        if w.huber_rgb > 0:
            rgb = lab_to_rgb(pred, dim=-1)
            out["huber_rgb"] = F.huber_loss(rgb * 255, lab_to_rgb(target, dim=-1) * 255, delta=w.huber_delta)
            loss = loss + w.huber_rgb * out["huber_rgb"]
        return {"loss": loss, **out, "output": pred, "errors": errors}

    # -- metrics ---------------------------------------------------------------------------------
    def build_metrics(self, stage: str) -> dict[str, Metric]:
        """The per-patch CIEDE2000 statistics: :func:`tinct.patch.metrics.de00_epoch_statistics`."""
        from tinct.engine.metrics import SampleStatistics
        from tinct.patch.metrics import de00_epoch_statistics

        return {"errors": SampleStatistics(de00_epoch_statistics, name=f"{stage}/{self.error_name}")}

    def update_metrics(self, stage: str, batch: Any, out: dict[str, Tensor]) -> None:
        super().update_metrics(stage, batch, out)
        if stage == "test":
            self.test_records["index"].update(batch["index"].detach().to(torch.float32))
            self.test_records["pred"].update(out["output"].detach())
            self.test_records["de00"].update(out["errors"].detach())

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        for metric in self.test_records.values():
            metric.reset()
        self.test_table = None

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self.updates_on_all_processes([self.test_records["index"]])[0]:
            # On every process (a collective): each gets every process's rows, in the split's order.
            records = {k: m.compute().detach().cpu() for k, m in self.test_records.items()}
            self.test_table = self._prediction_table(records)
        for metric in self.test_records.values():
            metric.reset()

    def _prediction_table(self, records: dict[str, Tensor]) -> Any:
        from tinct.patch.metrics import exposure_bin

        # The splits list rows in ascending order (tinct.patch.splits): the order of a one-process test.
        order = records["index"].argsort(stable=True)
        index = records["index"][order].round().long().numpy()
        pred = records["pred"].reshape(-1, 3)[order].numpy()
        de = records["de00"].reshape(-1)[order].numpy()
        table = self.build_datamodule().data.table.iloc[index].reset_index(drop=True)
        out = table[["image", "camera", "L", "a", "b"]].copy()
        offset = table["exposure_offset"] if "exposure_offset" in table else np.full(len(table), np.nan)
        out["exposure_offset"] = np.asarray(offset, dtype=np.float64)
        out["exposure_bin"] = [exposure_bin(v) for v in out["exposure_offset"]]
        out["pred_L"], out["pred_a"], out["pred_b"] = pred[:, 0], pred[:, 1], pred[:, 2]
        out["de00"] = de
        return out

    @torch.no_grad()
    def predict_files(
        self, paths: Sequence[Path], out_dir: Path, names: Sequence[Path] | None = None
    ) -> list[dict[str, Any]]:
        """The CIELAB colour of the patch in each photo (:func:`tinct.patch.predict.predict_patches`) and
        ``out_dir / <name>_patch.png``: the crop the network saw beside a swatch of the predicted colour.

        Returns:
            One row per photo: ``image``, ``L``, ``a``, ``b``, the patch box ``x0, y0, x1, y1`` (empty for a
            model trained on whole images), the ``camera`` read from its metadata and ``preview``.

        Raises:
            DataError: a photo is unreadable or holds no patch (named).
        """
        from tinct.core.naming import unique_output_names
        from tinct.io.image import write_image
        from tinct.patch.predict import predict_patches

        names = unique_output_names(paths) if names is None else names
        rows: list[dict[str, Any]] = []
        for pred, name in zip(predict_patches(self, paths, device=self.device), names, strict=True):
            crop = torch.from_numpy(pred.crop).permute(2, 0, 1)
            swatch = torch.from_numpy(pred.swatch).permute(2, 0, 1).float() / 255.0
            swatch = F.interpolate(swatch[None], size=crop.shape[-2:], mode="nearest")[0]
            target = Path(out_dir) / Path(name).parent / f"{Path(name).name}_patch.png"
            preview = write_image(target, torch.cat([crop, torch.ones(3, crop.shape[1], 2), swatch], dim=-1))
            L, a, b = (float(v) for v in pred.lab)
            x0, y0, x1, y1 = pred.box if pred.box is not None else ("",) * 4
            rows.append({"image": pred.image, "L": L, "a": a, "b": b, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                         "camera": pred.metadata.get("camera"), "preview": str(preview)})  # fmt: skip
        return rows

    def write_test_report(self, out_dir: Path, data: str) -> dict[str, Any]:
        """Write ``patch_metrics.json``, ``patch_predictions.csv`` and ``figures/patch_swatches.png``."""
        from tinct.core.atomic import atomic_write_json, atomic_write_text
        from tinct.patch.metrics import de00_statistics, patch_breakdown
        from tinct.patch.plots import plot_patch_swatches

        table = self.test_table
        if table is None or not len(table):
            return {}
        report = {
            "data": data,
            **de00_statistics(table["de00"].to_numpy()),
            "per_camera": patch_breakdown(table, "camera"),
            "per_exposure": patch_breakdown(table, "exposure_bin"),
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "patch_predictions.csv", table.to_csv(index=False))
        plot_patch_swatches(table, out_dir / "figures" / "patch_swatches.png")
        atomic_write_json(out_dir / "patch_metrics.json", report)
        return report
