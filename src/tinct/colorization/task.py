"""Automatic colorization as multinomial classification over the 313 ab bins (Zhang, Isola & Efros 2016).

A network sees the lightness L of a photo and predicts, at 1/4 resolution, a distribution over the 313
in-gamut ab bins. Training targets are the soft encoding of the true ab (k nearest bins, Gaussian weights),
each pixel weighted by the class-rebalancing weight of its nearest bin (from a prior estimated on the
training photos, or the reference ImageNet prior); predictions are decoded with the annealed mean and
joined, upsampled, with the input's own full-resolution L. ``model.head: regression`` is the paper's L2
baseline (ab regressed directly), ``model.rebalance: false`` the unweighted classification.

The L channel is normalised as in the original release, ``(L - 50) / 100`` (``data.l_cent``,
``data.l_norm``). Validation and test log the metrics of the paper at the crop's resolution: raw and
class-rebalanced AuC of the ab error (pooled over every pixel of the epoch,
:class:`~tinct.colorization.metrics.ABAuC`), mean PSNR of the sRGB result and mean colourfulness over the
photos. ``tinct evaluate colorization`` measures the same on whole photos at full resolution
(:mod:`tinct.colorization.colorize`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor
from torchmetrics import Metric

from tinct.colorization.networks import Colorizer
from tinct.core.config import ExperimentConfig, StrictModel
from tinct.core.exceptions import DataError
from tinct.engine.task import TASKS, ReportColumn, ReportTable, SplitDataModule, Task

__all__ = [
    "ColorizationConfig",
    "ColorizationDataConfig",
    "ColorizationDataModule",
    "ColorizationModelConfig",
    "ColorizationTask",
    "Colorizer",
]


class HintSamplingConfig(StrictModel):
    """Simulated user hints for training a SIGGRAPH17 network (Zhang et al. 2017, section 3.3).

    A fraction ``rate`` of the training crops get hints: a number of points drawn from a geometric
    distribution with parameter ``p`` (mean 1 / p), each a square patch of side drawn from 1 to
    ``max_patch`` pixels revealing the mean true ab of the patch; the rest get none (the automatic case).
    """

    rate: float = Field(0.0, ge=0, le=1)
    p: float = Field(0.125, gt=0, le=1)
    max_patch: int = Field(9, ge=1)


class ColorizationDataConfig(StrictModel):
    """Photos for colorization.

    ``kind``: ``skimage`` (the colour photos bundled with scikit-image: the embedded default) or
    ``folder`` (every jpg / png / tif / bmp under ``root``, recursively, 8 or 16 bit; ``root`` may be a list
    of folders, each split on its own, so a photo's split does not depend on which other folders join it).
    Photos are resized
    so their short side is ``resize`` (0: as stored), then training draws random ``crop`` x ``crop``
    crops with horizontal flips and validation / test use centre crops of ``eval_size``. Each photo is
    assigned to train / val / test by a hash of its name (stable when files are added); with
    ``split_file`` the first run writes its splits there and later runs reuse them (see
    :mod:`tinct.core.splits`).
    """

    kind: Literal["skimage", "folder"] = "skimage"
    root: str | list[str] | None = None
    resize: int = Field(256, ge=0)
    crop: int = Field(128, ge=16)
    eval_size: int = Field(256, ge=16)
    flip: bool = True
    samples_per_epoch: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.15, ge=0, lt=1)
    split_seed: int = 0
    split_file: str | None = None
    l_cent: float = 50.0
    l_norm: float = Field(100.0, gt=0)
    batch_size: int = Field(16, ge=1)
    num_workers: int = Field(0, ge=0)
    hints: HintSamplingConfig = HintSamplingConfig()

    @property
    def roots(self) -> list[str]:
        """``root`` as a list (empty for the embedded default)."""
        return [] if self.root is None else [self.root] if isinstance(self.root, str) else list(self.root)

    @model_validator(mode="after")
    def _check(self) -> ColorizationDataConfig:
        if self.kind == "folder" and not self.root:
            raise ValueError("data.kind 'folder' needs data.root (a folder of photos)")
        for key in ("crop", "eval_size"):
            if getattr(self, key) % 8:
                raise ValueError(
                    f"data.{key} must be a multiple of 8 (the network's stride), got {getattr(self, key)}"
                )
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("data.val_fraction + data.test_fraction must be < 1")
        return self


class ColorizationModelConfig(StrictModel):
    """Network, targets and decoding.

    ``width``: channel multiplier of the ECCV16 network (1.0: the paper's; 0.25 trains on a CPU).
    ``prior``: ``data`` (estimated from the training photos: bin histogram, Gaussian smoothing with
    ``prior_sigma``) or ``reference`` (ImageNet, from the paper's release). ``lam``: weight of the uniform
    distribution in the rebalancing weights. ``k`` / ``sigma``: soft encoding. ``temperature``: annealed
    mean (0: mode, 1: mean). ``infer_size``: short side at which whole photos are colorized.

    ``arch: siggraph17`` (:class:`~tinct.colorization.siggraph.SIGGRAPHNet`, with ``head: regression``):
    the loss is ``class_weight`` x the cross entropy of its 529-bin head at 1/4 resolution (nearest bin)
    plus ``regression_weight`` x the Huber loss (delta 1 CIELAB unit) of its full-resolution ab on ab / 110,
    as the authors' release; with ``rebalance`` each pixel of both terms is weighted by the rebalancing
    weight of its nearest of the 313 bins. The colorizer's output is the regression head.

    ``init``: a colorization run folder, checkpoint or exported ``.pt`` (the shipped colorizers included)
    whose network, of this architecture and width, starts the training (fine-tuning); read when training
    starts, not when the config is parsed, and not when a run resumes from its own checkpoint.
    """

    arch: Literal["eccv16", "siggraph17"] = "eccv16"
    width: float = Field(0.25, gt=0, le=2)
    head: Literal["classification", "regression"] = "classification"
    rebalance: bool = True
    prior: Literal["data", "reference"] = "data"
    prior_sigma: float = Field(5.0, ge=0)
    lam: float = Field(0.5, ge=0, le=1)
    k: int = Field(5, ge=1, le=313)
    sigma: float = Field(5.0, gt=0)
    temperature: float = Field(0.38, ge=0)
    infer_size: int = Field(256, ge=16)
    class_weight: float = Field(1.0, ge=0)
    regression_weight: float = Field(10.0, ge=0)
    init: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ColorizationModelConfig:
        if self.arch == "siggraph17" and self.head != "regression":
            raise ValueError(
                "model.arch 'siggraph17' colorizes with its regression head: set model.head: regression "
                "(its 529-bin classification head is trained beside it, weighted by model.class_weight)"
            )
        return self


class ColorizationConfig(ExperimentConfig):
    task: Literal["colorization"] = "colorization"
    data: ColorizationDataConfig = ColorizationDataConfig()
    model: ColorizationModelConfig = ColorizationModelConfig()


class ColorizationDataModule(SplitDataModule):
    """Splits and loaders of :class:`ColorizationDataConfig`; ``train_images`` feed the prior."""

    drop_last_train = True

    def __init__(self, cfg: ColorizationConfig) -> None:
        super().__init__(cfg)
        self.splits: dict[str, list[Path]] = {}
        self.train_images: list[np.ndarray] = []

    def resolve_splits(self) -> dict[str, list[Path]]:
        """The photo paths of each split (without reading them); small folders fall back so that every
        split is non-empty (test <- val <- train)."""
        from tinct.colorization.photos import list_photos, skimage_photos, split_photos

        if not self.splits:
            d = self.cfg.data
            by_root = (
                {None: skimage_photos()} if d.kind == "skimage" else {r: list_photos(r) for r in d.roots}
            )
            splits: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
            for root, found in by_root.items():
                if not found:
                    raise DataError(f"{root}: no photos (jpg, png, tif, bmp) found")
                for key, value in split_photos(found, d.val_fraction, d.test_fraction, d.split_seed).items():
                    splits[key] += value
            if d.split_file:
                from tinct.core.splits import fixed_splits

                name = {}
                for root in by_root:
                    base = Path(root).resolve() if root is not None else None
                    prefix = f"{base.name}/" if base is not None and len(by_root) > 1 else ""
                    for p in by_root[root]:
                        name[p] = prefix + (p.resolve().relative_to(base).as_posix() if base else p.name)
                base = Path(d.roots[0]).resolve() if len(d.roots) == 1 else None
                by_name = {v: k for k, v in name.items()}
                roots = [str(Path(r).resolve()) for r in d.roots] or None
                where = {"kind": d.kind, "root": str(base) if base else roots}
                own = {k: [name[p] for p in v] for k, v in splits.items()}
                fixed = fixed_splits(d.split_file, own, where, list(by_name))
                splits = {k: [by_name[n] for n in v] for k, v in fixed.items()}
            splits["test"] = splits["test"] or splits["val"] or splits["train"]
            splits["val"] = splits["val"] or splits["test"]
            splits["train"] = splits["train"] or splits["val"]
            self.splits = splits
        return self.splits

    def setup(self, stage: str | None = None) -> None:
        from tinct.colorization.photos import PhotoCrops, PhotoImages, load_photos

        d = self.cfg.data
        where = ", ".join(d.roots) or "scikit-image's sample photos"
        self.resolve_splits()
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(
            stage or "", ("train", "val", "test")
        )
        short = d.resize or None
        for name in wanted:
            if getattr(self, f"{name}_set") is not None:
                continue  # idempotent: train() sets the data up before Lightning does
            images, kept = load_photos(self.splits[name], short)
            if not images:
                raise DataError(f"{where}: no readable {name} photos among {len(self.splits[name])}")
            self.splits[name] = kept
            if name == "train":
                self.train_images = images
                self.train_set = PhotoCrops(images, d.crop, d.flip, d.samples_per_epoch)
            else:
                setattr(self, f"{name}_set", PhotoImages(images, d.eval_size))


def initial_state(
    source: str | os.PathLike[str], part: str | None = None, what: str = "model.init"
) -> dict[str, Tensor]:
    """The network weights (float32) of a colorization run folder (its best checkpoint), ``.ckpt`` or
    exported ``.pt`` (:func:`tinct.colorization.colorize.load_colorizer`), to start a training from.

    ``part`` (``"full"`` or ``"instance"``) picks that network of an instance-aware (fusion) source; from any
    other source the whole network is taken.

    Raises:
        RunDirError: ``source`` does not exist or holds no colorizer.
    """
    from tinct.colorization.colorize import load_colorizer
    from tinct.core.exceptions import RunDirError

    if not Path(source).exists():
        raise RunDirError(f"{source}: {what} not found (a colorization run folder, .ckpt or exported .pt)")
    net = load_colorizer(source)[0].net
    if part is not None and hasattr(net, "full") and hasattr(net, "instance"):
        net = getattr(net, part)
    return {k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()}


def load_network(
    net: torch.nn.Module, source: str | os.PathLike[str], part: str | None = None, what: str = "model.init"
) -> None:
    """Load :func:`initial_state` of ``source`` into ``net``, strictly.

    Raises:
        RunDirError: ``source`` does not exist or holds no colorizer.
        ConfigError: its network does not fit ``net`` (architecture or width; the first mismatches named).
    """
    from tinct.core.exceptions import ConfigError
    from tinct.engine.run_dir import checkpoint_mismatches

    state = initial_state(source, part, what)
    problems = checkpoint_mismatches(net, state)
    if problems:
        raise ConfigError(
            f"{source}: {what} does not fit this network (model.width {getattr(net, 'width', '?')}): "
            + "; ".join(problems[:3])
        )
    net.load_state_dict(state)


def data_prior(images: Sequence[np.ndarray], sigma: float = 5.0) -> Tensor:
    """The ab prior of uint8 sRGB photos ``H x W x 3``: their bin counts smoothed (``sigma``), sum 1
    (float64, (313,)); see :mod:`tinct.color.quantize.prior`."""
    from tinct.color.lab import rgb_to_lab
    from tinct.color.quantize import PriorAccumulator

    acc = PriorAccumulator()
    for image in images:
        rgb = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
        acc.update(rgb_to_lab(rgb)[1:])
    return acc.prior(sigma)


@TASKS.register("colorization")
class ColorizationTask(Task):
    """Colorization (Zhang et al. 2016): L -> distribution over 313 ab bins (or ab directly, L2 baseline).

    Buffers ``prior`` (the ab prior the rebalancing weights come from) and ``class_weights`` are saved in
    checkpoints, so a trained model carries the statistics of its training photos.
    """

    Config = ColorizationConfig
    monitor = "val/auc_rebalanced"
    monitor_mode = "max"
    error_name = "ab_error"
    report_table = ReportTable(
        "Colorization table",
        (
            ReportColumn("AuC raw", "auc_raw", 100.0),
            ReportColumn("AuC rebalanced", "auc_rebalanced", 100.0),
            ReportColumn("PSNR", "psnr"),
            ReportColumn("Colourfulness", "colorfulness"),
        ),
        note="AuC in %, PSNR in dB",
    )

    prior: Tensor
    class_weights: Tensor

    def __init__(self, cfg: ColorizationConfig) -> None:
        super().__init__(cfg)
        from tinct.color.quantize import rebalancing_weights, reference_prior
        from tinct.colorization.networks import COLORIZERS

        m = cfg.model
        self.net = COLORIZERS.get(m.arch)(width=m.width, head=m.head)
        prior = reference_prior(dtype=torch.float64)
        self.register_buffer("prior", prior.float())
        self.register_buffer("class_weights", rebalancing_weights(prior, m.lam).float())

    def load_initial_weights(self) -> None:
        """Load ``model.init`` into the network (see :class:`ColorizationModelConfig`).

        Raises:
            RunDirError: the named run or file does not exist or holds no colorizer.
            ConfigError: its network does not fit this one (architecture or width).
        """
        if self.cfg.model.init is not None:
            load_network(self.net, self.cfg.model.init)

    def on_fit_start(self) -> None:
        # After Lightning restored a resumed run's own checkpoint (which then wins), before the first step.
        if self.trainer.ckpt_path is None:
            self.load_initial_weights()

    def setup(self, stage: str) -> None:
        # A resumed run's checkpoint overwrites these buffers after setup(), so this costs nothing there.
        if stage == "fit" and self.cfg.model.prior == "data" and self.trainer is not None:
            dm = self.trainer.datamodule
            if getattr(dm, "train_images", None):
                self.set_prior(data_prior(dm.train_images, self.cfg.model.prior_sigma))

    def set_prior(self, prior: Tensor) -> None:
        """Use ``prior`` (313,) for the rebalancing weights."""
        from tinct.color.quantize import rebalancing_weights

        prior = prior.to(torch.float64)
        self.prior.copy_(prior.float())
        self.class_weights.copy_(rebalancing_weights(prior, self.cfg.model.lam).float())

    def colorizer(self, temperature: float | None = None) -> Colorizer:
        d, m = self.cfg.data, self.cfg.model
        t = m.temperature if temperature is None else temperature
        return Colorizer(self.net, t, d.l_cent, d.l_norm, m.infer_size)

    def forward(self, lightness_normalised: Tensor) -> Tensor:
        return self.net(lightness_normalised)

    def loss(self, out: Tensor, ab: Tensor) -> Tensor:
        """Training loss of the network output ``out`` against the true ab at 1/4 resolution."""
        from tinct.color.quantize import nearest_bin, soft_encode

        m = self.cfg.model
        if m.head == "classification":
            weights, index = soft_encode(ab, m.k, m.sigma)
            ce = -(weights * F.log_softmax(out, dim=1).gather(1, index)).sum(1)
            if m.rebalance:
                ce = ce * self.class_weights[index[:, 0]]
            return ce.mean()
        se = (out - ab / 100.0).square().sum(1)
        if m.rebalance:
            se = se * self.class_weights[nearest_bin(ab)]
        return se.mean()

    def hint_loss(self, out: Any, ab: Tensor) -> dict[str, Tensor]:
        """SIGGRAPH17 loss terms of ``out`` (:class:`~tinct.colorization.siggraph.SIGGRAPHOutput`) against
        the true ab at full resolution: ``ce`` (529-bin head at 1/4, nearest bin of the ab at the centre of
        each 4 x 4 cell, as the release samples it), ``huber`` (full-resolution regression) and ``loss``."""
        from tinct.color.quantize import nearest_bin
        from tinct.colorization.siggraph import AB_MAX, grid_index

        m = self.cfg.model
        small = ab[..., 2::4, 2::4][..., : out.logits.shape[-2], : out.logits.shape[-1]]
        ce = F.cross_entropy(out.logits.float(), grid_index(small), reduction="none")
        if m.rebalance:
            ce = ce * self.class_weights[nearest_bin(small)]
        huber = F.smooth_l1_loss(out.ab.float() / AB_MAX, ab / AB_MAX, beta=1.0 / AB_MAX, reduction="none")
        if m.rebalance:  # rare (saturated) colours weigh as much as common ones in both terms
            huber = huber * self.class_weights[nearest_bin(ab)][:, None]
        ce, huber = ce.mean(), huber.mean()
        return {"loss": m.class_weight * ce + m.regression_weight * huber, "ce": ce, "huber": huber}

    def network_input(self, lightness: Tensor, ab: Tensor) -> Tensor:
        """The network's input for photos of lightness ``lightness`` and true ``ab``: ``(L - l_cent) /
        l_norm``, plus for SIGGRAPH17 nets simulated hints in training (``data.hints``), none otherwise."""
        d = self.cfg.data
        x = (lightness - d.l_cent) / d.l_norm
        if not getattr(self.net, "hint_channels", 0):
            return x
        from tinct.colorization.hints import sample_hints
        from tinct.colorization.siggraph import hint_input

        if self.training and d.hints.rate > 0:
            return hint_input(x, *sample_hints(ab, d.hints.rate, d.hints.p, d.hints.max_patch))
        return hint_input(x)

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Loss and network output; out of training also the inputs of the epoch metrics: per-pixel ab
        errors and rebalancing weights (b, H, W), per-photo PSNR and colourfulness (b,), and as ``errors``
        each photo's mean ab error."""
        from tinct.color.lab import rgb_to_lab

        # Colour conversions in float32 also under bf16 autocast (its matmuls would round the targets).
        with torch.autocast(batch["image"].device.type, enabled=False):
            lab = rgb_to_lab(batch["image"].float())
        lightness, ab = lab[:, :1], lab[:, 1:]
        out = self.net(self.network_input(lightness, ab))
        if getattr(self.net, "hint_channels", 0):
            result = {**self.hint_loss(out, ab), "output": out.ab}
            pred_ab = out.ab.float()
        else:
            target = F.avg_pool2d(ab, 4)
            result = {"loss": self.loss(out, target[..., : out.shape[-2], : out.shape[-1]]), "output": out}
            pred_ab = self.colorizer().decode(out.float()) if not self.training else out
        if not self.training:
            with torch.autocast(batch["image"].device.type, enabled=False):
                result.update(self._metrics(pred_ab.float(), lightness, ab, batch["image"].float()))
        return result

    def _metrics(self, pred_ab: Tensor, lightness: Tensor, ab: Tensor, rgb: Tensor) -> dict[str, Tensor]:
        from tinct.color.lab import lab_to_rgb
        from tinct.colorization.metrics import ab_errors, colorfulness, pixel_rebalancing_weights, psnr

        pred_ab = F.interpolate(pred_ab, size=ab.shape[-2:], mode="bilinear", align_corners=False)
        errors = ab_errors(pred_ab, ab)
        pred_rgb = lab_to_rgb(torch.cat([lightness, pred_ab], 1), clip=True)
        # Per pixel / per photo, never 0-d: these feed the epoch metrics, not the batch-mean terms.
        return {
            "pixel_errors": errors,
            "pixel_weights": pixel_rebalancing_weights(ab),
            "image_psnr": psnr(pred_rgb, rgb).clamp(max=100.0).reshape(-1),
            "image_colorfulness": colorfulness(pred_rgb).reshape(-1),
            "errors": errors.mean(dim=(-2, -1)),
        }

    def build_metrics(self, stage: str) -> dict[str, Metric]:
        """The base class's ab-error statistics, ``auc_raw`` / ``auc_rebalanced`` (pooled over every pixel
        of the epoch), ``psnr`` and ``colorfulness`` (means over photos; PSNR capped at 100 dB per photo,
        as ``tinct evaluate colorization`` does)."""
        from torchmetrics.aggregation import MeanMetric

        from tinct.colorization.metrics import ABAuC

        return {
            **super().build_metrics(stage),
            "auc_raw": ABAuC(),
            "auc_rebalanced": ABAuC(),
            "psnr": MeanMetric(nan_strategy="error"),
            "colorfulness": MeanMetric(nan_strategy="error"),
        }

    def update_metrics(self, stage: str, batch: Any, out: dict[str, Tensor]) -> None:
        super().update_metrics(stage, batch, out)
        metrics = self.epoch_metrics[stage]
        metrics["auc_raw"].update(out["pixel_errors"])
        metrics["auc_rebalanced"].update(out["pixel_errors"], out["pixel_weights"])
        metrics["psnr"].update(out["image_psnr"])
        metrics["colorfulness"].update(out["image_colorfulness"])

    def build_datamodule(self) -> L.LightningDataModule:
        return ColorizationDataModule(self.cfg)  # type: ignore[arg-type]

    def with_data(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        data = self.cfg.data.model_copy(
            update={"kind": "folder", "root": str(path), "val_fraction": 0.0, "test_fraction": 0.999999}
        )
        return self.cfg.model_copy(update={"data": data})

    def predict_files(
        self, paths: Sequence[Path], out_dir: Path, names: Sequence[Path] | None = None
    ) -> list[dict[str, Any]]:
        from tinct.colorization.colorize import colorize_file

        colorizer = self.colorizer().eval()
        names = [Path(Path(p).stem) for p in paths] if names is None else [Path(n) for n in names]
        return [
            colorize_file(colorizer, Path(p), out_dir / n.parent, stem=n.name)
            for p, n in zip(paths, names, strict=True)
        ]
