"""Data of instance-aware colorization's training stages: photos with object boxes, cropped three ways.

- :class:`InstanceCrops`: the instance stage's samples, each box of each photo cropped and resized to a
  square (the ROI alignment the fusion network itself uses,
  :func:`~tinct.colorization.instance.crop_instances`);
- :class:`PhotoBoxCrops`: the fusion stage's samples, square crops of whole photos with their boxes cut to the
  crop (:func:`crop_boxes`) and selected as the paper (score above 0.7, at most 8), batched by
  :func:`collate_boxes` with a list of per-image box tensors;
- :class:`InstanceDataModule`: the colorization task's splits
  (:class:`~tinct.colorization.task.ColorizationDataModule`) with each photo's boxes from its box source (:mod:`tinct.colorization.boxes`) and the loaders of a stage.

The task and its config are :mod:`tinct.colorization.instance_task`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from tinct.colorization.boxes import MIN_SCORE, TOP_K, Boxes, BoxSource
from tinct.colorization.task import ColorizationDataModule
from tinct.core.exceptions import DataError

if TYPE_CHECKING:
    from tinct.colorization.instance_task import InstanceColorizationConfig

__all__ = [
    "MIN_INSIDE",
    "MIN_SIDE",
    "FolderBoxes",
    "InstanceCrops",
    "InstanceDataModule",
    "PhotoBoxCrops",
    "box_mask",
    "collate_boxes",
    "crop_boxes",
]

#: Boxes narrower or lower than this (pixels of the photo the network sees) are dropped.
MIN_SIDE = 4.0
#: A box cut by a crop is kept when at least this share of its area lies inside the crop.
MIN_INSIDE = 0.5


def crop_boxes(
    boxes: Boxes,
    window: tuple[float, float, float, float],
    min_side: float = MIN_SIDE,
    min_inside: float = MIN_INSIDE,
) -> Boxes:
    """The boxes seen through a crop ``window`` ``[x0, y0, x1, y1]``, in the crop's pixels.

    Each box is clipped to the window; a box with less than ``min_inside`` of its area inside, or narrower
    or lower than ``min_side`` pixels after clipping, is dropped. Scores and labels follow their boxes
    (not yet selected: see :meth:`~tinct.colorization.boxes.Boxes.select`).

    Example:
        >>> xyxy = np.array([[10.0, 10.0, 30.0, 20.0], [0.0, 0.0, 12.0, 40.0]])
        >>> b = Boxes(xyxy, np.ones(2), np.array([1, 2]))
        >>> crop_boxes(b, (8.0, 0.0, 40.0, 32.0)).xyxy.tolist()  # the second box: 1/3 of it inside
        [[2.0, 10.0, 22.0, 20.0]]
    """
    if len(boxes) == 0:
        return boxes
    wx0, wy0, wx1, wy1 = window
    xyxy = boxes.xyxy - np.array([wx0, wy0, wx0, wy0])
    clipped = np.clip(xyxy, 0.0, [wx1 - wx0, wy1 - wy0, wx1 - wx0, wy1 - wy0])
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep = (w >= min_side) & (h >= min_side) & (w * h >= min_inside * area)
    return Boxes(clipped[keep], boxes.scores[keep], boxes.labels[keep])


def _flip_boxes(boxes: Boxes, width: float) -> Boxes:
    if len(boxes) == 0:
        return boxes
    x = boxes.xyxy
    xyxy = np.stack([width - x[:, 2], x[:, 1], width - x[:, 0], x[:, 3]], axis=1).clip(0.0, None)
    return Boxes(xyxy, boxes.scores, boxes.labels)


def _box_tensor(boxes: Boxes) -> Tensor:
    return torch.tensor(np.array(boxes.xyxy), dtype=torch.float32).reshape(-1, 4)


def box_mask(boxes: Sequence[Tensor], height: int, width: int) -> Tensor:
    """Where each image's boxes are: (B, H, W) bool, True at the pixels whose centre is inside a box
    (``x0 <= c + 0.5 <= x1``, as :meth:`~tinct.colorization.boxes.Boxes.mask`).

    Example:
        >>> box_mask([torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.zeros(0, 4)], 2, 3).int().tolist()
        [[[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]]
    """
    masks = []
    for b in boxes:
        device = b.device
        cols = torch.arange(width, device=device, dtype=torch.float64) + 0.5
        rows = torch.arange(height, device=device, dtype=torch.float64) + 0.5
        b = b.to(torch.float64).reshape(-1, 1, 4)
        inside_x = (cols >= b[..., 0]) & (cols <= b[..., 2])  # (N, W)
        inside_y = (rows >= b[..., 1]) & (rows <= b[..., 3])  # (N, H)
        masks.append((inside_y[:, :, None] & inside_x[:, None, :]).any(0))
    if not masks:
        return torch.zeros(0, height, width, dtype=torch.bool)
    return torch.stack(masks)


def _to_tensor(image: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def _at_least(image: np.ndarray, boxes: Boxes, size: int) -> tuple[np.ndarray, Boxes]:
    """The photo upscaled so its short side is at least ``size``, with its boxes scaled alike."""
    from tinct.colorization.photos import resize_short_side

    if min(image.shape[:2]) >= size:
        return image, boxes
    h, w = image.shape[:2]
    out = resize_short_side(image, size)
    return out, boxes.scaled(out.shape[1] / w, out.shape[0] / h)


class InstanceCrops(Dataset[dict[str, Tensor]]):
    """The instance stage's samples: each box of each photo cropped and resized to ``crop_size`` (the ROI
    alignment of :func:`~tinct.colorization.instance.crop_instances`), sRGB (3, S, S) in [0, 1].

    ``flip``: random horizontal flips; ``samples_per_epoch``: crops per epoch (default: one per box; the
    boxes are cycled).

    Raises:
        DataError: no photo has a box.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Boxes],
        crop_size: int,
        flip: bool = False,
        samples_per_epoch: int | None = None,
    ) -> None:
        self.images = list(images)
        self.index = [(i, box) for i, b in enumerate(boxes) for box in np.array(b.xyxy, dtype=np.float32)]
        if not self.index:
            raise DataError(
                f"no object boxes among {len(self.images)} photo(s): nothing for an instance network"
            )
        self.crop_size = crop_size
        self.flip = flip
        self.n = samples_per_epoch or len(self.index)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        from tinct.colorization.instance import crop_instances

        i, box = self.index[index % len(self.index)]
        image = _to_tensor(self.images[i])[None]
        crop = crop_instances(image, torch.from_numpy(box)[None], self.crop_size)[0]
        if self.flip and bool(torch.rand(()) < 0.5):
            crop = crop.flip(-1)
        return {"image": crop.clamp(0.0, 1.0)}


class PhotoBoxCrops(Dataset[dict[str, Tensor]]):
    """The fusion stage's samples: square crops of photos with their boxes cut to them (:func:`crop_boxes`)
    and selected (score above ``min_score``, best ``top_k``).

    Training (``train=True``): random ``size`` crops and horizontal flips, ``samples_per_epoch`` of them
    (default: one per photo); evaluation: the centre ``size`` square of each photo. Photos smaller than
    ``size`` are upscaled first. Items: ``image`` (3, S, S) sRGB in [0, 1], ``boxes`` (N, 4) float32 in its
    pixels (N may be 0); batch them with :func:`collate_boxes`.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Boxes],
        size: int,
        *,
        train: bool,
        flip: bool = True,
        samples_per_epoch: int | None = None,
        min_score: float = MIN_SCORE,
        top_k: int = TOP_K,
    ) -> None:
        if not images:
            raise DataError("no photos")
        pairs = [_at_least(im, b, size) for im, b in zip(images, boxes, strict=True)]
        self.images = [p[0] for p in pairs]
        self.boxes = [p[1] for p in pairs]
        self.size = size
        self.train = train
        self.flip = flip and train
        self.n = (samples_per_epoch or len(self.images)) if train else len(self.images)
        self.min_score = min_score
        self.top_k = top_k

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        i = index % len(self.images)
        image, s = self.images[i], self.size
        h, w = image.shape[:2]
        if self.train:
            top, left = int(torch.randint(0, h - s + 1, ())), int(torch.randint(0, w - s + 1, ()))
        else:
            top, left = (h - s) // 2, (w - s) // 2
        patch = image[top : top + s, left : left + s]
        boxes = crop_boxes(self.boxes[i], (left, top, left + s, top + s))
        if self.flip and bool(torch.rand(()) < 0.5):
            patch, boxes = patch[:, ::-1], _flip_boxes(boxes, s)
        boxes = boxes.select(self.min_score, self.top_k)
        return {"image": _to_tensor(patch), "boxes": _box_tensor(boxes)}


def collate_boxes(items: Sequence[dict[str, Tensor]]) -> dict[str, Any]:
    """A batch of :class:`PhotoBoxCrops` items: ``image`` stacked (B, 3, S, S), ``boxes`` a list of B
    (N_b, 4) tensors.

    Example:
        >>> items = [{"image": torch.zeros(3, 8, 8), "boxes": torch.zeros(n, 4)} for n in (0, 2)]
        >>> batch = collate_boxes(items)
        >>> batch["image"].shape, [len(b) for b in batch["boxes"]]
        (torch.Size([2, 3, 8, 8]), [0, 2])
    """
    return {"image": torch.stack([it["image"] for it in items]), "boxes": [it["boxes"] for it in items]}


class FolderBoxes:
    """A :class:`~tinct.colorization.boxes.BoxSource` over several photo folders, each with its own source:
    a photo's boxes come from the source of the folder it lies in (none outside them).

    Args:
        sources: ``(folder, source)`` pairs; the first folder holding a photo answers for it.
    """

    def __init__(self, sources: Sequence[tuple[Path, BoxSource]]) -> None:
        self.sources = list(sources)
        self.description = "; ".join(dict.fromkeys(s.description for _, s in self.sources)) or "no boxes"

    def boxes_for(self, image: Path, size: tuple[int, int], rgb: np.ndarray | None = None) -> Boxes:
        path = Path(image)
        for root, source in self.sources:
            if path == root or path.is_relative_to(root):
                return source.boxes_for(path, size, rgb)
        return Boxes.empty()


class InstanceDataModule(ColorizationDataModule):
    """Splits (as :class:`~tinct.colorization.task.ColorizationDataModule`), boxes and the loaders of a stage.

    ``boxes``: the boxes of each split's photos (at the photos' loaded resolution), filled by ``setup`` for
    the instance and fusion stages.
    """

    def __init__(self, cfg: InstanceColorizationConfig) -> None:
        super().__init__(cfg)  # type: ignore[arg-type]
        self.boxes: dict[str, list[Boxes]] = {}
        self._sources: list[tuple[Path, BoxSource]] | None = None

    def box_sources(self) -> list[tuple[Path, BoxSource]]:
        """``(folder, source)`` of each folder of ``data.root`` that has boxes: ``data.boxes`` (one for all,
        or one per folder), else the folder's ``labels/`` where it exists.

        Raises:
            DataError: a named source cannot be read, or no folder has boxes.
        """
        from tinct.colorization.boxes import open_box_source

        if self._sources is None:
            d = self.cfg.data
            roots = [Path(r) for r in d.roots]
            specs: list[str | Path | None]
            if d.boxes is None:
                specs = [r / "labels" if (r / "labels").is_dir() else None for r in roots]
            elif isinstance(d.boxes, str):
                specs = [d.boxes] * len(roots)
            else:
                specs = list(d.boxes)
            opened: dict[str, BoxSource] = {}
            sources = []
            for root, spec in zip(roots, specs, strict=True):
                if spec is not None:
                    key = str(spec)
                    if key not in opened:
                        opened[key] = open_box_source(spec)
                    sources.append((root, opened[key]))
            if not sources:
                raise DataError(
                    f"{', '.join(map(str, roots))}: no object boxes: no labels/ folder; name a box source with "
                    "data.boxes (YOLO labels, COCO or per-image JSON)"
                )
            self._sources = sources
        return self._sources

    def box_source(self) -> FolderBoxes:
        """One box source for every photo of ``data.root`` (:class:`FolderBoxes` over :meth:`box_sources`),
        e.g. for :func:`tinct.colorization.evaluation.evaluate_colorization`'s ``boxes``."""
        return FolderBoxes(self.box_sources())

    def _load(self, paths: Sequence[Path]) -> tuple[list[np.ndarray], list[Path], list[Boxes]]:
        """Read photos (resized to ``data.resize``) and their boxes; corrupt photos are skipped with a
        warning naming each (as :func:`~tinct.colorization.photos.load_photos`)."""
        from tinct.colorization.photos import read_photo, resize_short_side

        short = self.cfg.data.resize or None
        source = self.box_source()
        images, kept, boxes, bad = [], [], [], []
        for path in paths:
            try:
                rgb = read_photo(path)
            except DataError as err:
                bad.append(str(err))
                continue
            h0, w0 = rgb.shape[:2]
            found = source.boxes_for(path, (h0, w0), rgb)
            if short:
                rgb = resize_short_side(rgb, short)
            h, w = rgb.shape[:2]
            found = found.scaled(w / w0, h / h0) if (h, w) != (h0, w0) else found
            images.append(np.round(rgb * 255.0).astype(np.uint8))
            kept.append(path)
            boxes.append(found)
        if bad:
            warnings.warn(f"skipped {len(bad)} unreadable photo(s): " + "; ".join(bad), stacklevel=2)
        return images, kept, boxes

    def setup(self, stage: str | None = None) -> None:
        d, m = self.cfg.data, self.cfg.model
        if m.stage == "full":
            super().setup(stage)
            return
        self.resolve_splits()
        self.box_sources()
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(
            stage or "", ("train", "val", "test")
        )
        for name in wanted:
            if getattr(self, f"{name}_set") is not None:
                continue  # idempotent: train() sets the data up before Lightning does
            images, kept, boxes = self._load(self.splits[name])
            if not images:
                raise DataError(
                    f"{', '.join(d.roots)}: no readable {name} photos among {len(self.splits[name])}"
                )
            self.splits[name], self.boxes[name] = kept, boxes
            train = name == "train"
            if train:
                self.train_images = images
            if m.stage == "instance":
                usable = [_usable(b, d.min_score) for b in boxes]
                try:
                    dataset: Dataset[Any] = InstanceCrops(
                        images, usable, m.crop_size, d.flip and train, d.samples_per_epoch if train else None
                    )
                except DataError:
                    raise DataError(
                        f"{', '.join(d.roots)}: none of the {len(images)} {name} photos has a box scoring above "
                        f"{d.min_score} with sides of at least {MIN_SIDE:g} px (boxes from "
                        f"{'; '.join(s.description for _, s in self.box_sources())})"
                    ) from None
            else:
                dataset = PhotoBoxCrops(
                    images, boxes, d.crop if train else d.eval_size, train=train, flip=d.flip,
                    samples_per_epoch=d.samples_per_epoch, min_score=d.min_score, top_k=d.top_k,
                )  # fmt: skip
            setattr(self, f"{name}_set", dataset)

    def _loader(self, ds: Any, shuffle: bool) -> Any:
        if self.cfg.model.stage != "fusion":
            return super()._loader(ds, shuffle)
        from torch.utils.data import DataLoader

        d = self.cfg.data
        return DataLoader(
            ds, batch_size=d.batch_size, shuffle=shuffle, num_workers=d.num_workers,
            persistent_workers=d.num_workers > 0, sampler=None if shuffle else self._eval_sampler(ds),
            drop_last=self.drop_last_train and shuffle and len(ds) > d.batch_size, collate_fn=collate_boxes,
        )  # fmt: skip


def _usable(boxes: Boxes, min_score: float) -> Boxes:
    """The boxes an instance network trains on: every one scoring above ``min_score``, not too small."""
    keep = boxes.select(min_score, len(boxes))
    if len(keep) == 0:
        return keep
    x = keep.xyxy
    ok = (x[:, 2] - x[:, 0] >= MIN_SIDE) & (x[:, 3] - x[:, 1] >= MIN_SIDE)
    return Boxes(x[ok], keep.scores[ok], keep.labels[ok])
