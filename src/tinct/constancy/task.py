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
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from tinct.core.config import ExperimentConfig, StrictModel
from tinct.core.exceptions import ConfigError, DataError, RunDirError
from tinct.engine.task import TASKS, ReportColumn, ReportTable, SplitDataModule, Task
from tinct.io.image import IMAGE_SUFFIXES
from tinct.io.raw import RAW_SUFFIXES
from tinct.nn.backbones import BackboneName, create_backbone
from tinct.nn.heads import ConfidencePoolingHead, PooledRegressionHead

__all__ = [
    "AugmentConfig",
    "FFCCConfig",
    "IlluminantConfig",
    "IlluminantDataConfig",
    "IlluminantDataModule",
    "IlluminantModelConfig",
    "IlluminantTask",
    "build_backbone",
    "ensure_synthetic",
    "load_backbone_state",
    "preprocess_input",
]


class AugmentConfig(StrictModel):
    """Training-time augmentation (see :class:`tinct.constancy.transforms.ConstancyAugment`); applied per batch."""

    enabled: bool = True
    crop: float = Field(0.7, gt=0, le=1)
    flip: bool = True
    rotate: float = Field(15.0, ge=0, le=180)
    intensity: tuple[float, float] = (0.6, 1.4)
    relight: Literal["dataset", "random", "none"] = "dataset"
    jitter: float = Field(0.05, ge=0, lt=1)
    gain_range: tuple[float, float] = (0.6, 1.4)
    p_relight: float = Field(0.8, ge=0, le=1)


class IlluminantDataConfig(StrictModel):
    """Data of the illuminant task.

    ``kind``: ``mondrian`` (procedural scenes rendered on the fly), ``synthetic`` (the physically based
    dataset of :mod:`tinct.constancy.synth`, generated into ``root`` on first use), or ``folder`` (any
    layout of :mod:`tinct.constancy.layouts`: generic ``gt.csv``, SimpleCube++, INTEL-TAU).

    Splits of a folder: with ``fold`` set, k-fold cross-validation (train on the other folds but a
    ``val_fraction`` of them kept for validation, test on the held-out fold; with ``val_fraction: 0`` the
    held-out fold is also the val set, for curves only); else the layout's official train/test split (val drawn from train); else
    random fractions. ``split_file`` (see :mod:`tinct.core.splits`): the splits are written there by the
    first run and read back by every later one (``tinct sweep --test-split auto``); for Mondrian scenes
    it records the test set's generator settings, and a run with another test set is refused.

    ``split_by: camera`` (a folder of camera folders, layout ``cameras``): fold ``k`` holds out the k-th
    camera in sorted order (:func:`tinct.constancy.layouts.camera_ids`), ``folds`` must be the number of
    cameras, and validation is drawn from the other cameras, so no camera is both trained and tested on.
    """

    kind: Literal["mondrian", "synthetic", "folder"] = "mondrian"
    root: str | None = None
    layout: Literal["auto", "generic", "simplecube", "intel_tau", "cameras"] = "auto"
    n_train: int = Field(2048, ge=1)
    n_val: int = Field(256, ge=1)
    n_test: int = Field(256, ge=1)
    size: int = Field(32, ge=8)
    cct_range: tuple[float, float] = (2500.0, 10000.0)
    black_level: float | None = None
    saturation: float | None = None
    val_fraction: float = Field(0.2, ge=0, lt=1)
    test_fraction: float = Field(0.2, ge=0, lt=1)
    fold: int | None = Field(None, ge=0)
    folds: int = Field(3, ge=2)
    split_by: Literal["fold", "camera"] = "fold"
    split_seed: int = 0
    split_file: str | None = None
    synth_n: int = Field(1200, ge=4)
    synth_camera: str = "nikon_d5100"
    synth_size: tuple[int, int] = (324, 216)
    synth_seed: int = 0
    augment: AugmentConfig = AugmentConfig()
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> IlluminantDataConfig:
        if self.kind == "folder" and not self.root:
            raise ValueError(
                "data.kind 'folder' needs data.root (a dataset folder; see tinct.constancy.layouts)"
            )
        if self.fold is not None and self.fold >= self.folds:
            raise ValueError(f"data.fold must be < data.folds ({self.folds}), got {self.fold}")
        if self.split_by == "camera" and self.kind != "folder":
            raise ValueError(
                f"data.split_by 'camera' needs data.kind 'folder' (a folder of camera folders), got {self.kind!r}"
            )
        return self

    def synthetic_root(self, output_dir: str) -> str:
        """Where the synthetic dataset lives: ``root`` or a folder named by its parameters."""
        if self.root:
            return self.root
        w, h = self.synth_size
        return str(
            Path(output_dir)
            / "data"
            / f"synth-{self.synth_camera}-n{self.synth_n}-{w}x{h}-s{self.synth_seed}"
        )


class FFCCConfig(StrictModel):
    """FFCC's settings (see :class:`tinct.constancy.ffcc.FFCC`): the torus, the regularisers and L-BFGS.

    Trained by ``tinct train`` as the paper does: full-batch L-BFGS (``data.batch_size`` at least the
    training set), ``iters`` iterations per epoch, the first ``convex_epochs`` on the convex cross-entropy,
    the rest on the von Mises likelihood. The defaults were chosen on validation splits inside Cube+'s
    training folds (``configs/constancy/ffcc.yaml`` says how).

    ``tune``: multipliers of all four regulariser weights, tried before training on the run's own
    validation split (which must come from the training data: ``data.val_fraction > 0``); the one with
    the lowest mean angular error is kept, so a small or unusual dataset gets its own regularisation (the
    paper cross-validated its weights per dataset). Empty: no tuning.

    ``shifts``: 1 is one FFCC model; n > 1 is an ensemble of n x n models on tori offset by fractions of a
    cell (:class:`~tinct.constancy.ffcc_ensemble.FFCCEnsemble`), n ** 2 times the cost of training it
    (``tune`` still fits one grid per multiplier).
    """

    bins: int = Field(64, ge=4)
    bin_size: float = Field(1.0 / 32.0, gt=0)
    channels: int = Field(2, ge=1, le=3)
    filter_tv: float = Field(1e-7, ge=0)
    filter_l2: float = Field(1e-8, gt=0)
    bias_tv: float = Field(1e-6, ge=0)
    bias_l2: float = Field(1e-8, gt=0)
    min_intensity: float = Field(1e-3, ge=0, lt=1)
    iters: int = Field(30, ge=1)
    convex_epochs: int = Field(1, ge=0)
    tune: list[float] = Field(default_factory=list)
    shifts: int = Field(1, ge=1, le=4)

    @field_validator("tune")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(not x > 0 for x in v):
            raise ValueError(f"model.ffcc.tune holds multipliers of the regularisers, all > 0; got {v}")
        return v

    def build(self) -> Any:
        """The :class:`~tinct.constancy.ffcc.FFCC` module of these settings (an
        :class:`~tinct.constancy.ffcc_ensemble.FFCCEnsemble` when ``shifts > 1``)."""
        from tinct.constancy.ffcc import FFCC
        from tinct.constancy.ffcc_ensemble import FFCCEnsemble

        settings = dict(
            bins=self.bins, bin_size=self.bin_size, channels=self.channels, filter_tv=self.filter_tv,
            filter_l2=self.filter_l2, bias_tv=self.bias_tv, bias_l2=self.bias_l2,
            min_intensity=self.min_intensity,
        )  # fmt: skip
        return FFCC(**settings) if self.shifts == 1 else FFCCEnsemble(self.shifts, **settings)


class IlluminantModelConfig(StrictModel):
    """Network of the illuminant task.

    ``estimator``: ``cnn`` (a backbone and a head, the fields below) or ``ffcc`` (Fast Fourier Color
    Constancy, settings in ``ffcc``; the backbone fields and ``input_space`` are not used).

    ``head``: ``regression`` (global pooling + MLP) or ``fc4`` (confidence-weighted pooling). ``init``: a
    run directory or checkpoint (of an ``illuminant_embedding`` or ``illuminant`` run) whose backbone
    weights initialise this one; ``freeze``: train the head only (the backbone, BatchNorm statistics
    included, stays exactly as loaded). ``weights``: a local backbone weights file; it must match the
    backbone exactly (the ImageNet classifier of a torchvision checkpoint aside) unless
    ``weights_partial: true``, which loads what matches and warns about the rest.
    """

    estimator: Literal["cnn", "ffcc"] = "cnn"
    ffcc: FFCCConfig = FFCCConfig()
    backbone: BackboneName = "small_cnn"
    width: int = Field(16, ge=1)
    depth: int = Field(4, ge=1)
    weights: str | None = None
    weights_partial: bool = False
    input_space: Literal["linear", "log"] = "linear"
    head: Literal["regression", "fc4"] = "regression"
    hidden: int = Field(64, ge=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    init: str | None = None
    freeze: bool = False

    @model_validator(mode="after")
    def _check(self) -> IlluminantModelConfig:
        if self.estimator == "ffcc" and (self.init or self.freeze or self.weights):
            raise ValueError(
                "model.estimator 'ffcc' has no backbone: model.init / freeze / weights do not apply"
            )
        if self.freeze and not (self.init or self.weights):
            raise ValueError(
                "model.freeze needs model.init (or model.weights): a frozen random backbone is useless"
            )
        return self


class IlluminantConfig(ExperimentConfig):
    task: Literal["illuminant"] = "illuminant"
    data: IlluminantDataConfig = IlluminantDataConfig()
    model: IlluminantModelConfig = IlluminantModelConfig()


class IlluminantDataModule(SplitDataModule):
    """Splits and loaders of :class:`IlluminantDataConfig` (used by the illuminant and embedding tasks).

    After :meth:`setup`, ``train_illuminants`` holds the training labels (for relighting augmentation)
    and ``split_indices`` the source-table rows of each split (folders only).
    """

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.split_indices: dict[str, list[int]] = {}
        self.train_illuminants: Tensor | None = None
        self._augment: Any = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:  # idempotent: train() validates the data before Lightning runs
            return
        d, seed = self.cfg.data, self.cfg.seed
        if d.kind == "mondrian":
            from tinct.constancy.mondrian import MondrianDataset

            self.train_set = MondrianDataset(d.n_train, d.size, seed=3 * seed, cct_range=d.cct_range)
            self.val_set = MondrianDataset(d.n_val, d.size, seed=3 * seed + 1, cct_range=d.cct_range)
            self.test_set = MondrianDataset(d.n_test, d.size, seed=3 * seed + 2, cct_range=d.cct_range)
            if d.split_file:
                from tinct.core.splits import fixed_splits

                test_set = {"n_test": d.n_test, "size": d.size, "seed": 3 * seed + 2, "cct": d.cct_range}
                fixed_splits(d.split_file, {}, {"kind": "mondrian", "test_set": test_set})
            self.train_illuminants = torch.stack(
                [self.train_set[i]["illuminant"] for i in range(min(512, d.n_train))]
            )
            return
        from tinct.constancy.layouts import ConstancyThumbnails, fold_ids, open_constancy

        root = d.root
        if d.kind == "synthetic":
            root = ensure_synthetic(d, self.cfg.output_dir)
        assert root is not None  # guaranteed by IlluminantDataConfig
        source = open_constancy(root, d.layout, d.black_level, d.saturation)
        n = len(source)
        rng = torch.Generator().manual_seed(d.split_seed)
        if d.fold is not None:
            from tinct.constancy.layouts import camera_ids, check_camera_split

            by_camera = d.split_by == "camera"
            ids = camera_ids(source, d.folds) if by_camera else fold_ids(source, d.folds, d.split_seed)
            pool = [i for i in range(n) if ids[i] != d.fold]
            test = [i for i in range(n) if ids[i] == d.fold]
            # Validation comes from the training folds (val_fraction of them), so a recipe or an epoch can
            # be chosen without ever looking at the held-out fold. val_fraction 0: the held-out fold is
            # also the val set, for curves only (cross-validation then scores the last checkpoint).
            pool = [pool[i] for i in torch.randperm(len(pool), generator=rng).tolist()]
            n_val = round(len(pool) * d.val_fraction) if len(pool) > 2 else 0
            val, train = (pool[:n_val], pool[n_val:]) if n_val > 0 else (test, pool)
            if by_camera:  # val is the held-out camera only when val_fraction is 0 (curves, never selection)
                check_camera_split(source, test, train=train, **({"val": val} if n_val > 0 else {}))
        else:
            if source.has_split:
                pool = [i for i in range(n) if source.table["split"].iloc[i] == "train"]
                test = [i for i in range(n) if source.table["split"].iloc[i] == "test"]
            else:
                pool = torch.randperm(n, generator=rng).tolist()
                n_test = round(n * d.test_fraction)
                test, pool = pool[:n_test], pool[n_test:]
            pool = [pool[i] for i in torch.randperm(len(pool), generator=rng).tolist()]
            n_val = max(1, round(len(pool) * d.val_fraction)) if d.val_fraction > 0 and len(pool) > 2 else 0
            val, train = pool[:n_val], pool[n_val:]
        if d.split_file:
            from tinct.core.splits import fixed_splits

            names = source.table["image"].astype(str).tolist()
            where = {"kind": d.kind, "root": str(Path(root).resolve()), "fold": d.fold}
            own = {
                "train": [names[i] for i in train],
                "val": [names[i] for i in val],
                "test": [names[i] for i in test],
            }
            row = {name: i for i, name in enumerate(names)}
            fixed = fixed_splits(d.split_file, own, where, names)
            train, val, test = ([row[x] for x in fixed[k]] for k in ("train", "val", "test"))
        if not train and stage in (None, "fit"):
            raise DataError(f"{root}: no training images left after the split ({n} images)")
        self.split_indices = {
            "train": train or test,
            "val": val or test or train,
            "test": test or val or train,
        }
        self.train_set, self.val_set, self.test_set = (
            ConstancyThumbnails(source, self.split_indices[k], d.size) for k in ("train", "val", "test")
        )
        self.train_illuminants = source.illuminants()[train] if train else None
        self._augment = None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Augmentation runs on whole batches on the training device (vectorised, ~0.05 ms per sample).
        if self.trainer is not None and self.trainer.training:
            if self._augment is None:
                self._augment = self.augmentation() or False
            if self._augment:
                batch = self._augment(batch)
        return batch

    def augmentation(self) -> Any:
        """The batch augmentation of the config, or None when disabled."""
        from tinct.constancy.transforms import ConstancyAugment

        a = self.cfg.data.augment
        if not a.enabled:
            return None
        return ConstancyAugment(
            self.cfg.data.size, crop=a.crop, flip=a.flip, rotate=a.rotate, intensity=a.intensity,
            relight=a.relight, illuminants=self.train_illuminants, jitter=a.jitter,
            gain_range=a.gain_range, p_relight=a.p_relight,
        )  # fmt: skip


def ensure_synthetic(d: IlluminantDataConfig, output_dir: str) -> str:
    """Generate the physically based synthetic dataset of ``d`` unless it is already complete."""
    from tinct.constancy.synth import synthesize_constancy

    root = Path(d.synthetic_root(output_dir))
    if not ((root / "train" / "gt.csv").is_file() and (root / "synth.json").is_file()):
        synthesize_constancy(root, n=d.synth_n, camera=d.synth_camera, size=d.synth_size, seed=d.synth_seed)
    return str(root)


def raw_levels(cfg: Any) -> tuple[float, float | None]:
    """Black and saturation levels of an illuminant config for new linear files: the config's, else those of
    its data layout (found from its data folder where that exists)."""
    from tinct.constancy.layouts import detect_layout, layout_levels

    d = cfg.data
    layout = d.layout
    if d.kind == "synthetic":
        layout = "simplecube"
    elif layout == "auto" and d.kind == "folder" and d.root and Path(d.root).is_dir():
        try:
            layout = detect_layout(d.root)
        except DataError:
            layout = "generic"
    black, saturation = layout_levels(layout, d.black_level, d.saturation)
    return black or 0.0, saturation


def preprocess_input(image: Tensor, mask: Tensor | None, input_space: str) -> Tensor:
    """The network input of a linear image: unusable pixels zeroed, divided by the image's maximum
    (exposure invariance, and no per-channel normalisation that would change the label), then
    ``linear_to_log`` for ``input_space == "log"`` (linearise first, then log).

    Shape:
        ``(B, 3, H, W)`` -> ``(B, 3, H, W)``.
    """
    from tinct.color.log import linear_to_log

    if mask is not None:
        image = image.masked_fill(mask, 0.0)
    scale = image.amax(dim=(-3, -2, -1), keepdim=True).clamp_min(1e-6)
    x = image / scale
    return linear_to_log(x) if input_space == "log" else x


def load_backbone_state(path: str | os.PathLike[str], model: IlluminantModelConfig) -> dict[str, Tensor]:
    """The ``backbone.*`` weights of a run directory (its best checkpoint) or a checkpoint file.

    Raises:
        ConfigError: the source's backbone differs from ``model``'s (name, width, depth or input space).
        RunDirError: no checkpoint, or it cannot be loaded safely.
    """
    from tinct.engine.run_dir import RunDir, read_checkpoint

    p = Path(path)
    ckpt_path = RunDir(p).checkpoint("best") if p.is_dir() else p
    ckpt = read_checkpoint(ckpt_path)
    src = (ckpt.get("tinct_config") or {}).get("model", {})
    for key in ("backbone", "width", "depth", "input_space"):
        if key in src and src[key] != getattr(model, key):
            raise ConfigError(
                f"model.init {path}: its model.{key} is {src[key]!r} but this config has {getattr(model, key)!r}"
            )
    state = {
        k.removeprefix("backbone."): v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")
    }
    if not state:
        raise RunDirError(f"{ckpt_path}: no backbone.* weights in the checkpoint")
    return state


@TASKS.register("illuminant")
class IlluminantTask(Task):
    """Regress the scene illuminant (unit-norm camera RGB) from a linear image.

    Inputs are normalised per image by their maximum (exposure invariance); with ``input_space: log`` the
    network sees ``linear_to_log`` of that (linearise first, then log).
    """

    Config = IlluminantConfig
    monitor = "val/angular_mean"
    input_suffixes = (*IMAGE_SUFFIXES, *RAW_SUFFIXES)  # camera raw files too (rawpy)
    monitor_mode = "min"
    error_name = "angular"
    report_table = ReportTable(
        "Constancy table",
        tuple(
            ReportColumn(s.capitalize(), f"angular_{s}")
            for s in ("mean", "median", "trimean", "worst25", "best25")
        ),
        first="Type",
        note="angular error in degrees",
    )

    def __init__(self, cfg: IlluminantConfig) -> None:
        super().__init__(cfg)
        m = cfg.model
        if m.estimator == "ffcc":
            self.ffcc = m.ffcc.build()
            return
        self.backbone = build_backbone(m)
        n = self.backbone.num_features
        self.head: nn.Module = (
            ConfidencePoolingHead(n, hidden=m.hidden, dropout=m.dropout)
            if m.head == "fc4"
            else PooledRegressionHead(n, 3, hidden=m.hidden, dropout=m.dropout)
        )
        if m.freeze:
            self.backbone.requires_grad_(False)

    @property
    def is_ffcc(self) -> bool:
        """True for an FFCC estimator (``model.estimator: ffcc``), False for a CNN."""
        return self.cfg.model.estimator == "ffcc"

    def setup(self, stage: str) -> None:
        # Loaded here, not in __init__: Lightning restores a resumed run's own weights after setup().
        if stage == "fit" and self.is_ffcc:
            dm = self.trainer.datamodule if self._trainer is not None else None  # type: ignore[union-attr]
            illuminants = getattr(dm, "train_illuminants", None)
            if illuminants is not None:  # a resumed run's own torus is restored after this
                self.ffcc.center_on(illuminants)
            return
        if stage == "fit" and self.cfg.model.init:
            self.backbone.load_state_dict(load_backbone_state(self.cfg.model.init, self.cfg.model))

    def configure_optimizers(self) -> Any:
        if not self.is_ffcc:
            return super().configure_optimizers()
        from tinct.constancy.ffcc_ensemble import FFCCEnsemble, MemberwiseLBFGS

        lbfgs = dict(
            lr=1.0, max_iter=self.cfg.model.ffcc.iters, history_size=20, line_search_fn="strong_wolfe",
            tolerance_grad=1e-9, tolerance_change=1e-12,
        )  # fmt: skip
        if isinstance(self.ffcc, FFCCEnsemble):  # each member trained on its own, as FFCCEnsemble.fit
            return MemberwiseLBFGS([list(m.parameters()) for m in self.ffcc.members], **lbfgs)
        return torch.optim.LBFGS(self.ffcc.parameters(), **lbfgs)

    def on_train_epoch_end(self) -> None:
        self._ffcc_cache = None  # do not keep a batch alive between epochs

    def on_fit_start(self) -> None:
        if self.is_ffcc and self.cfg.model.ffcc.tune and not self.trainer.ckpt_path:
            self.tune_ffcc()

    def tune_ffcc(self) -> float:
        """Choose the regularisers' multiplier of ``model.ffcc.tune`` on the validation split (see
        :class:`FFCCConfig`) and set it on this model; returns the multiplier.

        Raises:
            ConfigError: the validation split is the test split (no validation data of its own).
        """
        from tinct.color.illuminant import angular_error

        dm: Any = self.trainer.datamodule
        split = getattr(dm, "split_indices", {})
        if not split or not split.get("val") or split.get("val") == split.get("test"):
            raise ConfigError(
                "model.ffcc.tune chooses on a validation split of the training data, and this run has none "
                "(its val set is its test set); set data.val_fraction > 0 or model.ffcc.tune: []"
            )

        def stack(ds: Any) -> tuple[Tensor, Tensor, Tensor]:
            items = [ds[i] for i in range(len(ds))]
            return tuple(torch.stack([b[k] for b in items]) for k in ("image", "mask", "illuminant"))  # type: ignore[return-value]

        train, val = stack(dm.train_set), stack(dm.val_set)
        f = self.cfg.model.ffcc
        epochs = self.cfg.trainer.max_epochs
        convex = f.iters * min(f.convex_epochs, epochs)
        scores = {}
        for scale in f.tune:
            # Tuned on one grid (shifts 1) for an ensemble too: the multiplier it picks is what the nested
            # check of configs/constancy/thumbnails.yaml validated, at a quarter of the cost.
            weights = {k: getattr(f, k) * scale for k in ("filter_tv", "filter_l2", "bias_tv", "bias_l2")}
            model = f.model_copy(update={**weights, "shifts": 1}).build()
            model.fit(*train, iters=f.iters * epochs - convex, convex_iters=convex)
            with torch.no_grad():
                scores[scale] = float(angular_error(model(val[0], val[1]), val[2], dim=-1).mean())
        best = min(scores, key=lambda k: scores[k])
        self.ffcc.scale_regularisers(best)
        print(
            "FFCC regularisers x "
            + ", ".join(f"{k:g}: {v:.3f}" for k, v in scores.items())
            + f" degrees (validation mean); kept x {best:g}",
            flush=True,
        )
        return best

    def on_train_epoch_start(self) -> None:
        if self.is_ffcc and self.current_epoch == self.cfg.model.ffcc.convex_epochs:
            for opt in self.trainer.optimizers:  # the loss changes: the curvature history no longer holds
                opt.reset() if hasattr(opt, "reset") else opt.state.clear()
        if self.cfg.model.freeze:
            self.backbone.eval()  # keep BatchNorm running statistics frozen too

    def raw_levels(self) -> tuple[float, float | None]:
        """Black and saturation levels for new raw files: the config's, else those of its data layout."""
        return raw_levels(self.cfg)

    def preprocess(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        return preprocess_input(image, mask, self.cfg.model.input_space)

    def forward_features(self, x: Tensor) -> Tensor:
        if self.is_ffcc:
            raise ConfigError("an FFCC model has no backbone features")
        return self.backbone.forward_features(x)

    def forward_head(self, features: Tensor) -> Tensor:
        out = self.head(features)
        rgb = out if self.cfg.model.head == "fc4" else F.softplus(out)
        # No constant added before normalising (a +1e-4 used to pull small outputs towards grey). eps only
        # keeps an all-underflowed output at zero, whose angular error is then NaN instead of a fake grey.
        return F.normalize(rgb, dim=-1, eps=1e-12)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.is_ffcc:
            return self.ffcc(image, mask)
        return self.forward_head(self.forward_features(self.preprocess(image, mask)))

    def step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        from tinct.color.illuminant import angular_error

        if self.is_ffcc and self.training:
            # FFCC trains on its own objective (convex, then von Mises; plus its regularisers); the angular
            # errors are logged beside it. L-BFGS evaluates the same batch many times: its histograms are
            # computed once (the cache holds the batch's tensor, so its identity cannot be reused).
            image, mask = batch["image"], batch.get("mask")
            cache = getattr(self, "_ffcc_cache", None)
            if cache is None or cache[0] is not image:
                with torch.no_grad():
                    hist = self.ffcc.histograms(image, mask)
                    cache = (image, hist, torch.fft.rfft2(hist), self.ffcc.gray_world_uv(image, mask))
                self._ffcc_cache = cache
            _, hist, spectrum, gw = cache
            kind = "convex" if self.current_epoch < self.cfg.model.ffcc.convex_epochs else "von_mises"
            loss = self.ffcc.loss_from_histograms(hist, batch["illuminant"], kind, spectrum)
            loss = loss + self.ffcc.regulariser()
            with torch.no_grad():
                pred = self.ffcc.estimate_from(hist, gw, spectrum).rgb
                errors = angular_error(pred, batch["illuminant"], dim=-1)
            return {"loss": loss, "output": pred, "errors": errors}
        pred = self(batch["image"], batch.get("mask"))
        errors = angular_error(pred, batch["illuminant"], dim=-1)
        return {"loss": errors.mean(), "output": pred, "errors": errors}

    def build_datamodule(self) -> L.LightningDataModule:
        return IlluminantDataModule(self.cfg)  # type: ignore[arg-type]

    def with_data(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        data = self.cfg.data.model_copy(
            update={"kind": "folder", "root": str(path), "layout": "auto", "fold": None,
                    "test_fraction": 0.999999, "val_fraction": 0.0}
        )  # fmt: skip
        return self.cfg.model_copy(update={"data": data})

    @torch.no_grad()
    def predict_files(
        self, paths: Sequence[Path], out_dir: Path, names: Sequence[Path] | None = None
    ) -> list[dict[str, Any]]:
        """The illuminant of each file and a white-balanced sRGB preview, ``out_dir / <name>_balanced.png``.

        Camera raw files (DNG, CR2, NEF, ARW ...: :data:`tinct.io.raw.RAW_SUFFIXES`) are read by
        :func:`tinct.io.raw.read_camera_raw` with their own black and white levels; their preview is
        rendered to linear sRGB with the file's camera matrix
        (:func:`tinct.color.camera.camera_to_linear_srgb`), as a camera's own rendering without its tone
        curve. Other linear files (16-bit PNG/TIFF, ``.npy``) use the run's black / saturation levels
        (:meth:`raw_levels`) and carry no camera matrix: their preview is the white-balanced camera RGB
        shown as if it were sRGB (less saturated than the camera's rendering).

        Args:
            paths: image files (camera raw, linear, or display-encoded sRGB with a warning).
            out_dir: the output folder.
            names: each file's output name relative to ``out_dir``, without suffix
                (:func:`tinct.core.naming.unique_output_names`); default: the files' unique names.

        Returns:
            One row per file: ``image``, ``r``, ``g``, ``b`` (unit-norm illuminant) and ``preview`` (the
            written preview's path).

        Raises:
            DataError: a file cannot be read (named).
        """
        from tinct.constancy.folder import thumbnail
        from tinct.constancy.predict import balanced_preview, read_linear
        from tinct.core.naming import unique_output_names
        from tinct.io.image import write_image

        self.eval()
        d = self.cfg.data
        rows: list[dict[str, Any]] = []
        names = unique_output_names(paths) if names is None else names
        for path, name in zip(paths, names, strict=True):
            photo = read_linear(path, self.raw_levels())
            for note in photo.warnings:
                warnings.warn(note, stacklevel=2)
            thumb = thumbnail(photo.image, photo.mask, d.size).to(self.device)
            illum = self(thumb.unsqueeze(0))[0].cpu()
            target = Path(out_dir) / Path(name).parent / f"{Path(name).name}_balanced.png"
            preview = write_image(target, balanced_preview(photo, illum))  # makes the folder
            r, g, b = illum.tolist()
            rows.append({"image": str(path), "r": r, "g": g, "b": b, "preview": str(preview)})
        return rows


def build_backbone(m: Any) -> nn.Module:
    """The backbone of a model section with ``backbone, width, depth, weights, weights_partial`` (illuminant and embedding
    tasks share it, so a pretrained embedding's ``backbone.*`` weights load into the illuminant task)."""
    kwargs = {"width": m.width, "depth": m.depth} if m.backbone == "small_cnn" else {}
    return create_backbone(m.backbone, in_channels=3, weights=m.weights, partial=m.weights_partial, **kwargs)
