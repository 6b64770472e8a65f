"""The cheap colour baseline of classification: logistic regression on CIELAB colour histograms.

How far does colour alone go? Each photo (the centre crop a classifier is tested on) becomes its joint
L* a* b* histogram (:func:`lab_histogram`), and a multinomial logistic regression on the standardised
histograms (scikit-learn's ``StandardScaler`` + ``LogisticRegression``) is fitted on the training photos,
its inverse regularisation ``C`` chosen by validation accuracy, and scored on the test photos
(:func:`histogram_baseline`). A classifier of colour photos that does not beat it has learnt little beyond
the colour distribution; one of lightness (a colorization encoder) may lose to it on classes told apart by
hue (flowers: yellow dandelions and sunflowers against red roses).

The photos, splits and crops are those of :class:`~tinct.colorization.transfer.data.ClassificationDataModule`
on the same data config, so the baseline's test photos are exactly the classification runs' test photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinct.colorization.transfer.data import ClassificationDataConfig, ClassificationDataModule, group_order
from tinct.core.exceptions import ConfigError, DataError, ShapeError

__all__ = ["A_RANGE", "B_RANGE", "L_RANGE", "histogram_baseline", "lab_histogram"]

#: Range of each CIELAB axis of :func:`lab_histogram` (values outside are clipped into the edge bins).
#: L* spans [0, 100]; a* and b* of sRGB colours lie within about [-87, 99] and [-108, 95], so +-110 holds the
#: whole sRGB gamut with equal bins on either side of grey.
L_RANGE = (0.0, 100.0)
A_RANGE = (-110.0, 110.0)
B_RANGE = (-110.0, 110.0)


def lab_histogram(rgb: Tensor | np.ndarray, bins: Sequence[int] = (4, 9, 9)) -> np.ndarray:
    """The normalised joint CIELAB histogram of a photo, flattened (L* slowest, b* fastest).

    Bins are equal in width over :data:`L_RANGE`, :data:`A_RANGE` and :data:`B_RANGE`; values outside are
    clipped into the edge bins. The a* and b* bin counts are best odd: grey (a* = b* = 0, the commonest
    colour of photos) then lies at the centre of the middle bin, where an even count would put it on a bin
    edge and float rounding would scatter neutral pixels over four bins. Only the joint histogram is
    returned: its marginals are linear in it, so they would add nothing to a linear classifier.

    Args:
        rgb: an sRGB photo in [0, 1], channels first.
        bins: the number of bins of L*, a* and b*.

    Returns:
        float64 frequencies summing to 1, of length ``prod(bins)``.

    Raises:
        ShapeError: ``rgb`` is not :math:`(3, H, W)` with at least one pixel.
        ConfigError: ``bins`` is not three positive integers.

    Shape:
        - rgb: :math:`(3, H, W)`.
        - Output: :math:`(\\prod \\text{bins},)`.

    Example:
        >>> red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 4, 4)
        >>> h = lab_histogram(red)
        >>> h.shape, float(h.sum()), int(h.argmax())  # L* 53 -> bin 2, a* 80 -> bin 7, b* 67 -> bin 7
        ((324,), 1.0, 232)
    """
    if len(bins) != 3 or any(
        isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 1 for b in bins
    ):
        raise ConfigError(f"bins: three positive integers (L*, a*, b*) expected, got {tuple(bins)!r}")
    from tinct.color.lab import rgb_to_lab
    from tinct.core.checks import check_shape

    x = torch.as_tensor(rgb)
    check_shape(x, ["3", "H", "W"], "rgb")
    if x.shape[-1] * x.shape[-2] == 0:
        raise ShapeError(f"rgb: a photo with at least one pixel expected, got shape {tuple(x.shape)}")
    lab = rgb_to_lab(x.to(torch.float32)).reshape(3, -1).T.numpy().astype(np.float64)
    ranges = (L_RANGE, A_RANGE, B_RANGE)
    for k, (low, high) in enumerate(ranges):
        np.clip(lab[:, k], low, high, out=lab[:, k])
    hist, _ = np.histogramdd(lab, bins=[int(b) for b in bins], range=ranges)
    return (hist / hist.sum()).ravel()


def _features(photos: Any, bins: Sequence[int], what: str, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from tinct.core.progress import track

    rows, labels = [], []
    for i in track(range(len(photos)), f"histograms of the {what} photos", enabled=progress):
        item = photos[i]
        rows.append(lab_histogram(item["image"], bins))
        labels.append(int(item["label"]))
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


def histogram_baseline(
    data: ClassificationDataConfig | dict[str, Any],
    *,
    Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    bins: Sequence[int] = (4, 9, 9),
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Logistic regression on the CIELAB histograms of a classification folder (see the module docstring).

    Features of the train, val and test centre crops (``data.eval_size`` of photos resized to ``data.resize``;
    no random crops or flips: a histogram barely changes with them) are standardised and fed to a
    multinomial logistic regression for each ``C``; the one with the best validation accuracy is scored
    on the test photos (:func:`~tinct.colorization.transfer.probe.fit_probe`, the linear probes' fit and
    choice). It is fitted on the training photos only, as the classification runs are.

    Args:
        data: the data config of the classification runs to compare with (or its mapping).
        Cs: inverse regularisation strengths to try.
        bins: histogram bins of L*, a* and b* (:func:`lab_histogram`).
        seed: seed of the solver.
        out: a folder for ``histogram_baseline.json`` and ``figures/confusion_histogram.png``; None: none.
        progress: show progress bars.

    Returns:
        :func:`~tinct.colorization.transfer.report.confusion_summary` of the test photos (``accuracy``,
        ``macro_f1``, ``accuracy_<class>``, ``matrix``, ``within_group_confusion`` ...) plus ``C``,
        ``val_accuracy`` (of that ``C``), ``features``, ``bins`` and ``n_train``,
        ``n_val``, ``n_test``.

    Raises:
        ConfigError: ``Cs`` is empty or holds a value that is not positive and finite; ``data.groups``
            names a class the folder has not.
        DataError: the folder is not one of class folders, or a split has no readable photo.

    Example:
        >>> from tinct.colorization.transfer.data import ClassificationDataConfig
        >>> cfg = ClassificationDataConfig(root="flowers", resize=40, crop=32, eval_size=32)
        >>> histogram_baseline(cfg)["accuracy"]  # doctest: +SKIP
        0.61
    """
    from sklearn.metrics import confusion_matrix

    from tinct.colorization.transfer.report import confusion_summary

    d = data if isinstance(data, ClassificationDataConfig) else ClassificationDataConfig.model_validate(data)
    candidates = sorted(float(c) for c in Cs)
    if not candidates or not all(np.isfinite(c) and c > 0 for c in candidates):
        raise ConfigError(f"Cs: positive, finite inverse regularisation strengths expected, got {list(Cs)!r}")
    dm = ClassificationDataModule(SimpleNamespace(data=d))
    dm.resolve_splits()
    group_order(dm.classes, d.groups)  # a bad group name fails before any photo is read
    features = {
        split: _features(dm.load(split, train=False), bins, split, progress)
        for split in ("train", "val", "test")
    }
    (_, y_train), (_, y_val), (_, y_test) = features["train"], features["val"], features["test"]
    if len(np.unique(y_train)) < 2:
        raise DataError(
            f"{d.root}: the training photos hold {len(np.unique(y_train))} class; at least 2 needed"
        )
    from tinct.colorization.transfer.probe import fit_probe

    fit = fit_probe(
        features["train"], features["val"], features["test"], Cs=candidates, seed=seed, max_iter=5000
    )
    c, best_acc = fit["C"], fit["val_accuracy"]
    matrix = confusion_matrix(y_test, fit["test_predictions"], labels=list(range(len(dm.classes))))
    summary = {
        "data": str(d.root),
        **confusion_summary(matrix, dm.classes, d.groups),
        "C": c,
        "val_accuracy": best_acc,
        "features": f"joint CIELAB histogram, {'x'.join(map(str, bins))} bins over L* {list(L_RANGE)}, "
        f"a* {list(A_RANGE)}, b* {list(B_RANGE)} (clipped), standardised",
        "bins": [int(b) for b in bins],
        "n_train": len(y_train),
        "n_val": len(y_val),
        "n_test": len(y_test),
    }
    if out is not None:
        from tinct.colorization.transfer.report import plot_confusion
        from tinct.core.atomic import atomic_write_json

        folder = Path(out)
        atomic_write_json(folder / "histogram_baseline.json", summary)
        plot_confusion(
            summary, folder / "figures" / "confusion_histogram.png", f"CIELAB histogram baseline (C = {c:g})"
        )
    return summary
