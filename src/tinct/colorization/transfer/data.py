"""Image-classification data for transfer from colorization: an ImageFolder-style tree ``<root>/<class>/*``.

Classes are the sub-folders of ``root`` (sorted, as torchvision's ``ImageFolder``: class ``i`` is the i-th
name), each holding its photos at any depth. Photos are assigned to train / val / test by a hash of their
path relative to ``root`` and the split seed (:func:`tinct.colorization.photos.split_photos`, the function
colorization runs split a folder with), so with the same fractions and seed a folder's classification test
photos are exactly its colorization test photos: a colorizer trained on the folder's training split (the
shipped SIGGRAPH17 colorizer on ``flowers`` is) never saw a classification test photo. ``split_file`` writes
the splits once and reuses them (:mod:`tinct.core.splits`).

``groups`` names colour groups of classes (``{yellow: [dandelion, sunflowers], red: [roses], ...}``): the
confusion matrix is ordered by group and the share of confusions that stay inside a group is reported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor
from torch.utils.data import Dataset

from tinct.core.config import StrictModel
from tinct.core.exceptions import DataError
from tinct.engine.task import SplitDataModule

__all__ = [
    "ClassificationDataConfig",
    "ClassificationDataModule",
    "LabelledPhotos",
    "class_folders",
    "classification_splits",
    "group_order",
]


class ClassificationDataConfig(StrictModel):
    """A folder of photos in one sub-folder per class.

    Photos are resized so their short side is ``resize``; training draws random ``crop`` x ``crop`` crops
    (with horizontal flips), validation and test use the centre ``eval_size`` x ``eval_size`` crop.
    ``input``: ``lightness`` (the L channel, what colorization encoders were trained on) or ``color``
    (L, a and b: a classifier trained from scratch on colour, the ceiling; no colorization ``model.init``).
    ``groups``: colour groups of the classes (each class in at most one group; see the module docstring).
    """

    root: str | None = None
    resize: int = Field(128, ge=8)
    crop: int = Field(112, ge=8)
    eval_size: int = Field(112, ge=8)
    flip: bool = True
    input: Literal["lightness", "color"] = "lightness"
    groups: dict[str, list[str]] | None = None
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.15, ge=0, lt=1)
    split_seed: int = 0
    split_file: str | None = None
    batch_size: int = Field(32, ge=1)
    num_workers: int = Field(0, ge=0)

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        seen: dict[str, str] = {}
        for group, members in value.items():
            if not members:
                raise ValueError(f"data.groups: group {group!r} has no classes")
            for name in members:
                if name in seen:
                    raise ValueError(f"data.groups: class {name!r} is in groups {seen[name]!r} and {group!r}")
                seen[name] = group
        return value

    @model_validator(mode="after")
    def _check(self) -> ClassificationDataConfig:
        if not self.root:
            raise ValueError("data.root: a folder with one sub-folder of photos per class is needed")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("data.val_fraction + data.test_fraction must be < 1")
        for key in ("crop", "eval_size"):
            if getattr(self, key) % 8:
                raise ValueError(
                    f"data.{key} must be a multiple of 8 (the encoders' stride), got {getattr(self, key)}"
                )
        return self


def class_folders(root: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The photos of each class folder of ``root`` (classes sorted by name, as torchvision's ``ImageFolder``).

    Raises:
        DataError: ``root`` is not a folder, has fewer than two class folders, or a class folder holds no
            photo (the folder is named).
    """
    from torchvision.datasets.folder import find_classes

    from tinct.colorization.photos import PHOTO_SUFFIXES, list_photos

    base = Path(root)
    if not base.is_dir():
        raise DataError(f"{base}: no such folder (a folder with one sub-folder of photos per class)")
    try:
        classes, _ = find_classes(str(base))
    except FileNotFoundError:
        classes = []
    if len(classes) < 2:
        loose = [p.name for p in base.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES][:1]
        hint = f" (photos directly in it, e.g. {loose[0]!r}, belong in class folders)" if loose else ""
        raise DataError(
            f"{base}: {len(classes)} class folder(s) ({', '.join(classes) or 'none'}); classification needs "
            f"at least two sub-folders of photos, one per class{hint}"
        )
    out: dict[str, list[Path]] = {}
    for name in classes:
        photos = list_photos(base / name)
        if not photos:
            raise DataError(
                f"{base / name}: class folder {name!r} holds no photo ({', '.join(PHOTO_SUFFIXES)})"
            )
        out[name] = photos
    return out


def classification_splits(
    d: ClassificationDataConfig, classes: Sequence[str] | None = None
) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """The class names and the ``(photo, class index)`` pairs of each split of ``d`` (nothing is read).

    ``classes``: the classes of a trained model; the folder's class folders must be among them (an evaluation
    folder may hold a subset) and are labelled by the model's indices. Default: the folder's own classes.
    A split that comes out empty on a tiny folder falls back (test <- val <- train) as colorization's do.

    Raises:
        DataError: a class folder is not one of ``classes`` (named).
    """
    from tinct.colorization.photos import split_photos

    assert d.root is not None
    base = Path(d.root).resolve()
    folders = class_folders(base)
    if classes is None:
        classes = list(folders)
    unknown = [c for c in folders if c not in classes]
    if unknown:
        raise DataError(
            f"{d.root}: class folder(s) {', '.join(unknown)} are not classes of this model ({', '.join(classes)})"
        )
    label = {p: list(classes).index(name) for name, photos in folders.items() for p in photos}
    photos = list(label)
    splits = split_photos(photos, d.val_fraction, d.test_fraction, d.split_seed)
    if d.split_file:
        from tinct.core.splits import fixed_splits

        name = {p: p.resolve().relative_to(base).as_posix() for p in photos}
        by_name = {v: k for k, v in name.items()}
        own = {k: [name[p] for p in v] for k, v in splits.items()}
        fixed = fixed_splits(d.split_file, own, {"kind": "classification", "root": str(base)}, list(by_name))
        splits = {k: [by_name[n] for n in v] for k, v in fixed.items()}
    splits["test"] = splits["test"] or splits["val"] or splits["train"]
    splits["val"] = splits["val"] or splits["test"]
    splits["train"] = splits["train"] or splits["val"]
    return list(classes), {k: [(p, label[p]) for p in v] for k, v in splits.items()}


def group_order(classes: Sequence[str], groups: dict[str, list[str]] | None) -> tuple[list[int], list[str]]:
    """Class indices ordered by colour group (classes in no group last, each group's in ``classes`` order)
    and the group of each class in that order (``""`` for none).

    Raises:
        ConfigError: a group names a class the data has not.

    Example:
        >>> group_order(["daisy", "dandelion", "roses", "sunflowers"], {"yellow": ["sunflowers", "dandelion"]})
        ([1, 3, 0, 2], ['yellow', 'yellow', '', ''])
    """
    from tinct.core.exceptions import ConfigError

    if not groups:
        return list(range(len(classes))), [""] * len(classes)
    group_of = {c: g for g, members in groups.items() for c in members}
    unknown = sorted(set(group_of) - set(classes))
    if unknown:
        raise ConfigError(
            f"data.groups names class(es) the data has not: {', '.join(unknown)} "
            f"(classes: {', '.join(classes)})"
        )
    order = [i for g in groups for i, c in enumerate(classes) if group_of.get(c) == g]
    order += [i for i, c in enumerate(classes) if c not in group_of]
    return order, [group_of.get(classes[i], "") for i in order]


class LabelledPhotos(Dataset[dict[str, Tensor]]):
    """In-memory uint8 photos with class labels: random crops and flips (``train``) or centre crops.

    Items: ``{"image": (3, S, S) sRGB float in [0, 1], "label": int64, "index": int64}`` (``index``: the
    photo's position in the split, so per-photo results can be traced back to files).
    """

    def __init__(
        self, images: Sequence[np.ndarray], labels: Sequence[int], size: int, train: bool, flip: bool = True
    ) -> None:
        from tinct.colorization.photos import PhotoCrops, PhotoImages

        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.photos: Dataset[dict[str, Tensor]] = (
            PhotoCrops(images, size, flip) if train else PhotoImages(images, size)
        )
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {**self.photos[index], "label": self.labels[index], "index": torch.tensor(index)}


class ClassificationDataModule(SplitDataModule):
    """Splits and loaders of :class:`ClassificationDataConfig`; ``classes`` and ``splits`` after setup.

    ``classes``: a trained model's classes, which label the folder (see :func:`classification_splits`).
    """

    def __init__(self, cfg: Any, classes: Sequence[str] | None = None) -> None:
        super().__init__(cfg)
        self.model_classes = None if classes is None else list(classes)
        self.classes: list[str] = []
        self.splits: dict[str, list[tuple[Path, int]]] = {}

    def resolve_splits(self) -> dict[str, list[tuple[Path, int]]]:
        """The ``(photo, label)`` pairs of each split, without reading the photos."""
        if not self.splits:
            self.classes, self.splits = classification_splits(self.cfg.data, self.model_classes)
        return self.splits

    def setup(self, stage: str | None = None) -> None:
        self.resolve_splits()
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(
            stage or "", ("train", "val", "test")
        )
        for name in wanted:
            if getattr(self, f"{name}_set") is None:
                setattr(self, f"{name}_set", self.load(name))

    def load(self, name: str, train: bool | None = None) -> LabelledPhotos:
        """The photos of split ``name`` read into memory (unreadable files skipped with a warning naming
        each; ``self.splits`` then lists only those read). ``train``: random crops (default: for "train").

        Raises:
            DataError: no photo of the split could be read.
        """
        from tinct.colorization.photos import load_photos

        d = self.cfg.data
        pairs = self.resolve_splits()[name]
        images, kept = load_photos([p for p, _ in pairs], d.resize)
        if not images:
            raise DataError(f"{d.root}: no readable {name} photos among {len(pairs)}")
        label = dict(pairs)
        self.splits[name] = [(p, label[p]) for p in kept]
        is_train = name == "train" if train is None else train
        size = d.crop if is_train else d.eval_size
        return LabelledPhotos(images, [label[p] for p in kept], size, is_train, d.flip)
