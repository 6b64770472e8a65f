"""Linear probes of a frozen colorization encoder, block by block (Zhang et al. 2016, section 3.2).

Each block's output is average-pooled to ``s x s`` with ``s`` chosen so that every block gives about the same
number of features (:func:`pooled_size`: ``C * s * s ~ features``, 4096 by default), and a multinomial
logistic regression on the standardised features is fitted on the training photos of a classification folder
(:mod:`tinct.colorization.transfer.data`; centre crops of every split). ``C`` (the inverse regularisation
strength) is chosen by validation accuracy; the test photos choose nothing and are scored once.

``tinct probe RUN_OR_WEIGHTS --data DIR`` (:func:`tinct.colorization.transfer.probe_report.probe`) compares
three encoders on the same photos:

- ``pretrained``: the encoder of a colorization run, checkpoint or exported colorizer (all 7 blocks), or of a
  classification run (its blocks);
- ``random``: the same architecture at random initialisation, several seeds, its BatchNorm statistics
  recomputed on the training photos (:func:`calibrate_batchnorm`): the baseline the colorization features
  must beat;
- ``supervised`` (optional): the encoder of a classification run trained on labels, the ceiling.

The margin of the best pretrained block over the best random block (each chosen by validation accuracy, per
seed) comes with a paired bootstrap confidence interval over the test photos (:func:`best_probe_margin`).
Features and fitted probes are cached under ``out/cache``, so an interrupted run resumes where it stopped.

References:
    Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV, section 3.2 and figure 8 (linear
    classifiers on each layer of the frozen network, features resized to about 9000 per layer).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tinct.colorization.transfer.data import ClassificationDataConfig, ClassificationDataModule
from tinct.colorization.transfer.encoders import ColorizationEncoder
from tinct.core.atomic import atomic_write_bytes, atomic_write_json
from tinct.core.exceptions import ConfigError, DataError, RunDirError
from tinct.core.progress import track

__all__ = [
    "best_probe_margin",
    "calibrate_batchnorm",
    "encoder_from_source",
    "extract_features",
    "fit_probe",
    "linear_probes",
    "pooled_size",
    "random_encoder",
]

_log = logging.getLogger(__name__)

#: Inverse regularisation strengths tried by default (chosen by validation accuracy).
DEFAULT_CS = (0.0001, 0.001, 0.01, 0.1, 1.0)
#: Bumped whenever cached features or probes would no longer match what this module computes.
_CACHE_VERSION = 1
Split = tuple[np.ndarray, np.ndarray]


def pooled_size(channels: int, features: int) -> int:
    """The side ``s`` to which a block of ``channels`` channels is pooled so that ``channels * s * s`` is
    about ``features``: ``max(1, round(sqrt(features / channels)))``.

    Raises:
        ValueError: ``channels`` or ``features`` is not positive.

    Example:
        >>> [pooled_size(c, 4096) for c in (16, 64, 128, 512, 8192)]
        [16, 8, 6, 3, 1]
    """
    if channels < 1 or features < 1:
        raise ValueError(f"channels and features must be positive, got {channels} and {features}")
    return max(1, round(math.sqrt(features / channels)))


def _freeze(encoder: ColorizationEncoder) -> ColorizationEncoder:
    encoder.requires_grad_(False)
    return encoder.eval()


def _load_source(source: str | os.PathLike[str] | None) -> tuple[ColorizationEncoder, str, Any]:
    """The frozen encoder of ``source``, its description and (for a classification run) its data config."""
    from tinct.colorization.colorize import load_colorizer

    path = None if source is None else Path(source)
    if path is not None and path.is_dir() and _run_task(path) == "classification":
        from tinct.engine.evaluate import load_task

        task = load_task(path)
        encoder: ColorizationEncoder = task.net.encoder
        encoder.freeze(0)
        description = (
            f"classification run {path} ({encoder.arch} width {encoder.width}, {len(encoder.blocks)} blocks)"
        )
        return _freeze(encoder), description, task.cfg.data
    try:
        colorizer, info = load_colorizer(path)
    except RunDirError as err:
        raise RunDirError(
            f"{err} (a probe reads a colorization run folder, checkpoint or exported .pt, or a classification "
            "run folder)"
        ) from err
    net = getattr(colorizer.net, "full", colorizer.net)  # instance-aware: its full-image SIGGRAPH17 network
    try:
        encoder = ColorizationEncoder.of_network(net)
    except TypeError as err:
        raise RunDirError(f"{info['source']}: {err}") from err
    except RuntimeError as err:
        raise RunDirError(f"{info['source']}: its encoder blocks do not load ({err})") from err
    return _freeze(encoder), f"colorizer {info['source']} ({encoder.arch} width {encoder.width})", None


def _run_task(path: Path) -> str | None:
    """The ``task`` of a run folder's ``config.yaml`` (None: no readable one)."""
    from tinct.core.config import read_yaml_file

    try:
        return read_yaml_file(path / "config.yaml", "run config").get("task")
    except ConfigError:
        return None


def encoder_from_source(source: str | os.PathLike[str] | None) -> tuple[ColorizationEncoder, str]:
    """The frozen encoder (eval mode, no gradients) of a trained model, and a description of it.

    Args:
        source: a classification run folder (its encoder, with the blocks it was trained with), or anything
            :func:`~tinct.colorization.colorize.load_colorizer` reads: a colorization run folder, checkpoint
            or exported ``.pt`` (all 7 encoder blocks; an instance-aware network's full-image network), or
            None for the shipped colorizer.

    Returns:
        ``(encoder, description)``.

    Raises:
        RunDirError: ``source`` does not exist or holds no usable model (named).

    Example:
        >>> from tinct.colorization.pretrained import DEFAULT_COLORIZER
        >>> encoder, text = encoder_from_source(DEFAULT_COLORIZER.path())
        >>> encoder.arch, len(encoder.blocks), encoder.training
        ('siggraph17', 7, False)
    """
    encoder, description, _ = _load_source(source)
    return encoder, description


def random_encoder(
    arch: str, width: float, blocks: int = 7, seed: int = 0, color: bool = False
) -> ColorizationEncoder:
    """A randomly initialised encoder (PyTorch's default initialisation under ``torch.manual_seed(seed)``),
    frozen and in eval mode. Its BatchNorm statistics are the identity: see :func:`calibrate_batchnorm`.

    Example:
        >>> a, b = random_encoder("eccv16", 0.125, 2, seed=1), random_encoder("eccv16", 0.125, 2, seed=1)
        >>> all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = ColorizationEncoder(arch, width, blocks, color=color)  # type: ignore[arg-type]
    return _freeze(encoder)


def _loader(dataset: Dataset[dict[str, torch.Tensor]], batch_size: int) -> DataLoader[Any]:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)


def calibrate_batchnorm(
    encoder: ColorizationEncoder,
    dataset: Dataset[dict[str, torch.Tensor]],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> ColorizationEncoder:
    """Recompute the BatchNorm running statistics of ``encoder`` on ``dataset`` (in place), then eval mode.

    A pretrained encoder's BatchNorm layers normalise with statistics gathered on photos; a random encoder's
    are the identity (mean 0, variance 1), so its features would sit at arbitrary scales that grow or vanish
    from block to block, which is not a fair baseline. Each layer's statistics are reset and re-estimated as
    the cumulative average over all batches (``momentum=None``), with no gradient; nothing else changes.

    Args:
        encoder: the encoder (its weights are untouched).
        dataset: items with ``"image"``, ``(3, S, S)`` sRGB in [0, 1] (e.g. the training photos).
        batch_size: photos per forward pass.
        device: where the forward passes run.
        progress: show a progress bar.

    Returns:
        ``encoder``, in eval mode.
    """
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    encoder.to(device).eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        with torch.no_grad():
            for batch in track(_loader(dataset, batch_size), "calibrating BatchNorm", enabled=progress):
                encoder(encoder.prepare(batch["image"].to(device)))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        encoder.eval()
    return encoder


def extract_features(
    encoder: ColorizationEncoder,
    dataset: Dataset[dict[str, torch.Tensor]],
    features: int = 4096,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[np.ndarray]:
    """The pooled features of every block of ``encoder`` for every photo of ``dataset``, in dataset order.

    Block ``b`` (``C_b`` channels) is adaptive-average-pooled to ``s_b x s_b`` with
    ``s_b = pooled_size(C_b, features)`` and flattened (channel-major). A block whose map is smaller than
    ``s_b`` (small photos) has its values repeated, so the feature count stays ``C_b * s_b**2``.

    Args:
        encoder: the encoder (run in eval mode, without gradients).
        dataset: items with ``"image"``, ``(3, S, S)`` sRGB in [0, 1], S a multiple of 8.
        features: the feature count each block should give about.
        batch_size: photos per forward pass.
        device: where the forward passes run.
        progress: show a progress bar.

    Returns:
        One float32 array per block, ``(N, C_b * s_b**2)``.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> class Photos(TensorDataset):
        ...     def __getitem__(self, i):
        ...         return {"image": self.tensors[0][i]}
        >>> enc = random_encoder("siggraph17", 0.125, blocks=3)
        >>> [f.shape for f in extract_features(enc, Photos(torch.rand(5, 3, 32, 32)), features=128)]
        [(5, 128), (5, 144), (5, 128)]
    """
    sides = [pooled_size(c, features) for c in encoder.channels]
    n = len(dataset)  # type: ignore[arg-type]
    out = [np.empty((n, c * s * s), np.float32) for c, s in zip(encoder.channels, sides, strict=True)]
    encoder.to(device).eval()
    start = 0
    with torch.inference_mode():
        for batch in track(_loader(dataset, batch_size), "extracting features", enabled=progress):
            maps = encoder.forward_blocks(encoder.prepare(batch["image"].to(device)))
            stop = start + len(batch["image"])
            for array, fmap, s in zip(out, maps, sides, strict=True):
                array[start:stop] = F.adaptive_avg_pool2d(fmap.float(), s).flatten(1).cpu().numpy()
            start = stop
    if start != n:
        raise DataError(f"the dataset gave {start} photos but has length {n}")
    return out


def fit_probe(
    train: Split,
    val: Split,
    test: Split,
    Cs: Sequence[float] = DEFAULT_CS,
    seed: int = 0,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> dict[str, Any]:
    """A linear probe: standardised features, multinomial logistic regression (L-BFGS), ``C`` chosen by
    validation accuracy (ties: the lower validation log-loss, then the smaller ``C``: on a small validation
    split a vanishing ``C``, which predicts the training split's majority class, can tie with the rest),
    fitted on the training split only; the test split is
    scored once with the chosen ``C`` and chooses nothing.

    Args:
        train: ``(X, y)``, ``X`` of shape ``(N, D)``, ``y`` class indices ``(N,)``; likewise ``val``, ``test``.
        Cs: inverse regularisation strengths to try (positive).
        seed: the solver's random state.
        max_iter: L-BFGS iterations at most (a fit that stops there is reported as ``converged: False``).
        tol: the solver's stopping tolerance.

    Returns:
        ``{"C", "val_accuracy", "test_accuracy", "test_predictions" (N_test,) int64, "converged"}``.

    Raises:
        ValueError: mismatching shapes or a non-positive ``C``.
        DataError: the training split holds fewer than two classes.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = np.arange(60) % 3
        >>> X = rng.normal(size=(60, 5)) + 4 * np.eye(3, 5)[y]
        >>> r = fit_probe((X[:30], y[:30]), (X[30:45], y[30:45]), (X[45:], y[45:]))
        >>> r["test_accuracy"], r["C"] in DEFAULT_CS
        (1.0, True)
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    parts = {"train": train, "val": val, "test": test}
    for name, (X, y) in parts.items():
        if np.ndim(X) != 2 or np.ndim(y) != 1 or len(X) != len(y) or len(y) == 0:
            raise ValueError(
                f"{name}: expected X (N, D) and y (N,) with N > 0, got {np.shape(X)} and {np.shape(y)}"
            )
    dims = {np.shape(X)[1] for X, _ in parts.values()}
    if len(dims) > 1:
        raise ValueError(f"train, val and test have different feature counts: {sorted(dims)}")
    if not Cs or min(Cs) <= 0:
        raise ValueError(f"Cs must be positive values, got {list(Cs)}")
    if len(np.unique(train[1])) < 2:
        raise DataError(f"a probe needs training photos of at least two classes, got {np.unique(train[1])}")
    from sklearn.metrics import log_loss

    best: tuple[float, float, Any, bool] | None = None
    best_key: tuple[float, float] | None = None
    for C in sorted(Cs):
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, tol=tol, random_state=seed)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(train[0], train[1])
        accuracy = float(np.mean(model.predict(val[0]) == val[1]))
        loss = float(log_loss(val[1], model.predict_proba(val[0]), labels=model.classes_))
        key = (-accuracy, loss)
        if best_key is None or key < best_key:
            converged = bool(np.all(model[-1].n_iter_ < max_iter))
            best, best_key = (float(C), accuracy, model, converged), key
    assert best is not None
    predictions = np.asarray(best[2].predict(test[0]), dtype=np.int64)
    return {
        "C": best[0],
        "val_accuracy": best[1],
        "test_accuracy": float(np.mean(predictions == test[1])),
        "test_predictions": predictions,
        "converged": best[3],
    }


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "encoder"


def _state_hash(encoder: nn.Module) -> str:
    digest = hashlib.sha1()
    for key, value in encoder.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(
        f"{type(encoder).__name__}:{getattr(encoder, 'arch', '')}:{getattr(encoder, 'color', '')}".encode()
    )
    return digest.hexdigest()


def _save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def _read_key(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class _Photos:
    """The splits of a classification folder, each read (centre crops) only when first needed."""

    def __init__(self, data: ClassificationDataConfig) -> None:
        self.data = data
        self.module = ClassificationDataModule(SimpleNamespace(data=data))
        splits = self.module.resolve_splits()
        self.classes = list(self.module.classes)
        listing = {k: [(str(p), int(y)) for p, y in v] for k, v in splits.items()}
        self.splits_hash = hashlib.sha1(json.dumps(listing, sort_keys=True).encode()).hexdigest()
        self.sets: dict[str, Any] = {}

    def get(self, split: str) -> Any:
        if split not in self.sets:
            self.sets[split] = self.module.load(split, train=False)
        return self.sets[split]

    def labels(self, split: str) -> np.ndarray:
        return self.get(split).labels.numpy().astype(np.int64)

    def key(self) -> dict[str, Any]:
        d = self.data
        return {
            "root": str(Path(d.root or "").resolve()), "resize": d.resize, "eval_size": d.eval_size,
            "splits": self.splits_hash,
        }  # fmt: skip


_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Settings:
    features: int
    Cs: Sequence[float]
    batch_size: int
    device: str
    progress: bool


def _member_features(
    encoder: ColorizationEncoder,
    photos: _Photos,
    key: dict[str, Any],
    folder: Path | None,
    calibrate: bool,
    opt: _Settings,
) -> dict[str, Split]:
    """Per split, the features of every block and the labels, from the cache when its key matches."""
    blocks = len(encoder.blocks)
    if folder is not None and _read_key(folder / "features.json") == key:
        try:
            return {
                s: (
                    [np.load(folder / f"{s}_block{b + 1}.npy") for b in range(blocks)],
                    np.load(folder / f"{s}_labels.npy"),
                )
                for s in _SPLITS
            }
        except (OSError, ValueError):
            _log.warning("%s: unreadable cached features, extracting them again", folder)
    if calibrate:
        calibrate_batchnorm(encoder, photos.get("train"), opt.batch_size, opt.device, opt.progress)
    out: dict[str, Any] = {}
    for s in _SPLITS:
        arrays = extract_features(
            encoder, photos.get(s), opt.features, opt.batch_size, opt.device, opt.progress
        )
        out[s] = (arrays, photos.labels(s))
    if folder is not None:
        (folder / "features.json").unlink(missing_ok=True)  # the files below no longer match it
        for s, (arrays, labels) in out.items():
            for b, array in enumerate(arrays):
                _save_npy(folder / f"{s}_block{b + 1}.npy", array)
            _save_npy(folder / f"{s}_labels.npy", labels)
        atomic_write_json(folder / "features.json", key)
    return out


def _member_probes(
    encoder: ColorizationEncoder,
    photos: _Photos,
    folder: Path | None,
    calibrate: bool,
    opt: _Settings,
    label: str,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The probe of every block of one encoder and the test labels, from the cache when its key matches."""
    key = {
        "version": _CACHE_VERSION, "features": opt.features, "data": photos.key(), "encoder": _state_hash(encoder),
        "calibrated": calibrate,
    }  # fmt: skip
    probe_key = {**key, "Cs": sorted(float(c) for c in opt.Cs)}
    if folder is not None:
        cached = _read_key(folder / "probes.json")
        if isinstance(cached, dict) and cached.get("key") == probe_key:
            blocks = [
                {**b, "test_predictions": np.asarray(b["test_predictions"], np.int64)}
                for b in cached["blocks"]
            ]
            return blocks, np.asarray(cached["test_labels"], np.int64)
    splits = _member_features(encoder, photos, key, folder, calibrate, opt)
    blocks = []
    for b in range(len(encoder.blocks)):
        _log.info("%s: fitting the probe of block %d", label, b + 1)
        parts = [(splits[s][0][b], splits[s][1]) for s in _SPLITS]
        blocks.append({"block": b + 1, **fit_probe(*parts, Cs=opt.Cs)})
    test_labels = splits["test"][1]
    if folder is not None:
        atomic_write_json(
            folder / "probes.json",
            {
                "key": probe_key,
                "test_labels": test_labels.tolist(),
                "blocks": [{**b, "test_predictions": b["test_predictions"].tolist()} for b in blocks],
            },
        )
    return blocks, test_labels


def linear_probes(
    encoders: Mapping[str, ColorizationEncoder | Sequence[ColorizationEncoder]],
    data: ClassificationDataConfig,
    *,
    features: int = 4096,
    Cs: Sequence[float] = DEFAULT_CS,
    calibrate: Collection[str] = (),
    progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Linear probes of every block of every encoder on the photos of ``data`` (centre crops of every split).

    Args:
        encoders: name -> a frozen encoder, or a list of encoders of one kind (seeds of a random
            initialisation), each probed and reported as mean and standard deviation.
        data: the classification folder and its splits; photos are centre crops of side ``data.eval_size``
            (each encoder computes its own input from sRGB, so ``data.input`` plays no part).
        features: about how many features each block gives (:func:`pooled_size`).
        Cs: inverse regularisation strengths, chosen per block by validation accuracy (:func:`fit_probe`).
        calibrate: names of ``encoders`` whose BatchNorm statistics are recomputed on the training photos
            before extraction (random encoders: :func:`calibrate_batchnorm`).
        progress: show progress bars.
        cache_dir: a folder for each encoder's features (``.npy``) and fitted probes; a rerun reuses
            whatever matches (the encoder's weights, the photos, ``features``, ``Cs``) and redoes the rest.
        device: where the encoders run (None: CUDA when available, else the CPU); probes fit on the CPU.

    Returns:
        ``(table, results)``. ``table``: one row per encoder and block with ``encoder``, ``block``
        (1-based), ``channels``, ``pooled`` (s), ``features``, ``seeds``, ``C`` (the median over seeds),
        ``val_accuracy`` and ``test_accuracy`` (means over seeds), ``test_accuracy_std`` (over seeds, ddof 1;
        0 for one), ``converged`` (every seed's solver converged) and ``best`` (the block of the highest mean
        validation accuracy of its encoder). ``results``: ``classes``, ``sizes`` (photos per split),
        ``test_labels`` and ``encoders``: name -> per seed -> per block the :func:`fit_probe` result with its
        ``block`` (the input of :func:`best_probe_margin`).

    Raises:
        DataError: the folder is missing, has fewer than two classes, or a split has no readable photo.
        ValueError: an empty list of encoders, or ``calibrate`` names no encoder.
    """
    unknown = sorted(set(calibrate) - set(encoders))
    if unknown:
        raise ValueError(
            f"calibrate names no encoder: {', '.join(unknown)} (encoders: {', '.join(encoders)})"
        )
    photos = _Photos(data)
    cache = None if cache_dir is None else Path(cache_dir)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    opt = _Settings(features, tuple(Cs), data.batch_size, device, progress)
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {"classes": photos.classes, "encoders": {}}
    test_labels: np.ndarray | None = None
    for name, value in encoders.items():
        members = [value] if isinstance(value, ColorizationEncoder) else list(value)
        if not members:
            raise ValueError(f"encoder {name!r}: an empty list")
        runs = []
        for i, encoder in enumerate(members):
            label = name if isinstance(value, ColorizationEncoder) else f"{name}-seed{i}"
            folder = None if cache is None else cache / _slug(label)
            blocks, labels = _member_probes(encoder, photos, folder, name in calibrate, opt, label)
            if test_labels is None:
                test_labels = labels
            elif not np.array_equal(test_labels, labels):
                raise DataError(f"{label}: its test photos differ from the other encoders' (stale cache?)")
            runs.append(blocks)
        results["encoders"][name] = runs
        rows += _table_rows(name, members, runs, features)
    table = pd.DataFrame(rows)
    results["test_labels"] = test_labels
    results["sizes"] = {s: len(photos.module.splits[s]) for s in _SPLITS}
    return table, results


def _table_rows(
    name: str, members: list[ColorizationEncoder], runs: list[list[dict[str, Any]]], features: int
) -> list[dict[str, Any]]:
    channels = members[0].channels
    rows = []
    for b in range(min(len(r) for r in runs)):
        per_seed = [r[b] for r in runs]
        test = np.array([p["test_accuracy"] for p in per_seed])
        s = pooled_size(channels[b], features)
        rows.append({
            "encoder": name, "block": b + 1, "channels": channels[b], "pooled": s,
            "features": channels[b] * s * s, "seeds": len(runs),
            "C": float(np.median([p["C"] for p in per_seed])),
            "val_accuracy": float(np.mean([p["val_accuracy"] for p in per_seed])),
            "test_accuracy": float(test.mean()),
            "test_accuracy_std": float(test.std(ddof=1)) if len(test) > 1 else 0.0,
            "converged": all(p.get("converged", True) for p in per_seed),
        })  # fmt: skip
    best = int(np.argmax([r["val_accuracy"] for r in rows]))
    for i, row in enumerate(rows):
        row["best"] = i == best
    return rows


def best_probe_margin(
    results: Mapping[str, Any], a: str = "pretrained", b: str = "random", seed: int = 0, n_boot: int = 2000
) -> dict[str, Any]:
    """How much the best block of encoder ``a`` beats the best block of encoder ``b`` on the test photos.

    Each seed's best block is the one of the highest VALIDATION accuracy (ties: the earlier block); the test
    photos choose nothing, they only score the chosen probes. The margin is the mean test accuracy of ``a``
    over its seeds minus that of ``b`` over its seeds; its 95% interval comes from a paired bootstrap over
    the test photos (the same resampled photos score every probe), which covers the sampling of test photos
    but not that of training photos or of seeds (the per-seed margins show the latter).

    Args:
        results: the second value of :func:`linear_probes`.
        a, b: encoder names in ``results``.
        seed: the bootstrap's random seed.
        n_boot: bootstrap resamples.

    Returns:
        ``{"a", "b", "a_blocks", "b_blocks"`` (the chosen block of each seed), ``"a_accuracy", "b_accuracy"``
        (mean test accuracies), ``"margin"``, ``"per_seed"`` (``a``'s mean minus each seed of ``b``),
        ``"mean"`` (of the bootstrap margins), ``"ci95"`` (their 2.5 and 97.5 percentiles), ``"n_test",
        "n_boot"}`` (accuracies as fractions).

    Raises:
        KeyError: ``a`` or ``b`` is not in ``results`` (the names given are listed).

    Example:
        >>> y = np.array([0, 1, 0, 1])
        >>> run = lambda val, pred: [{"block": 1, "val_accuracy": val, "test_predictions": np.array(pred)}]
        >>> results = {"test_labels": y, "encoders": {
        ...     "pretrained": [run(0.9, [0, 1, 0, 1])], "random": [run(0.5, [0, 1, 1, 0])]}}
        >>> best_probe_margin(results, n_boot=100)["margin"]
        0.5
    """
    encoders = results["encoders"]
    for name in (a, b):
        if name not in encoders:
            raise KeyError(f"no encoder {name!r} in the results (encoders: {', '.join(encoders)})")
    y = np.asarray(results["test_labels"])

    def chosen(name: str) -> tuple[list[int], np.ndarray]:
        picks = [max(run, key=lambda p: p["val_accuracy"]) for run in encoders[name]]
        correct = np.stack([np.asarray(p["test_predictions"]) == y for p in picks])
        return [int(p["block"]) for p in picks], correct

    a_blocks, a_correct = chosen(a)
    b_blocks, b_correct = chosen(b)
    a_acc, b_acc = float(a_correct.mean()), float(b_correct.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    boot = a_correct[:, idx].mean(axis=(0, 2)) - b_correct[:, idx].mean(axis=(0, 2))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "a": a, "b": b, "a_blocks": a_blocks, "b_blocks": b_blocks, "a_accuracy": a_acc, "b_accuracy": b_acc,
        "margin": a_acc - b_acc, "per_seed": [a_acc - float(c.mean()) for c in b_correct],
        "mean": float(boot.mean()), "ci95": [float(lo), float(hi)], "n_test": len(y), "n_boot": n_boot,
    }  # fmt: skip
