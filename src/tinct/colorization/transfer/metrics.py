"""Classification metrics of an epoch from one confusion matrix (torchmetrics' ``MulticlassConfusionMatrix``:
accumulated over the epoch and synchronised across processes by the library)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

__all__ = ["ConfusionMetrics", "group_confusion_chance", "group_confusion_share", "scores_from_confusion"]


def scores_from_confusion(matrix: np.ndarray | Tensor, classes: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro F1 and per-class accuracy (recall) of a confusion matrix (rows: true, columns: predicted).

    A class with no sample has a NaN accuracy and is left out of the macro F1 (scikit-learn's
    ``f1_score(average="macro")`` over the classes present).

    Example:
        >>> s = scores_from_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"])
        >>> round(s["accuracy"], 3), round(s["macro_f1"], 3), s["accuracy_a"], s["accuracy_b"]
        (0.875, 0.873, 0.75, 1.0)
    """
    m = np.asarray(matrix, dtype=np.float64)
    true, pred, hit = m.sum(1), m.sum(0), np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = hit / true
        precision = np.where(pred > 0, hit / np.where(pred > 0, pred, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = true > 0
    out = {
        "accuracy": float(hit.sum() / m.sum()) if m.sum() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
    }
    out.update({f"accuracy_{c}": float(r) for c, r in zip(classes, recall, strict=True)})
    return out


def group_confusion_share(matrix: np.ndarray | Tensor, groups: Sequence[str]) -> float:
    """The share of confusions (off-diagonal counts) whose predicted class is in the true class's group.

    ``groups[i]``: the group of class ``i`` (``""``: none; such a class shares a group with no other).
    NaN when nothing was confused.

    Example:
        >>> group_confusion_share(np.array([[5, 2, 1], [3, 5, 0], [0, 4, 5]]), ["y", "y", "r"])
        0.5
    """
    m = np.asarray(matrix, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    same = (g[:, None] == g[None, :]) & (g[:, None] != "")
    off = ~np.eye(len(m), dtype=bool)
    total = m[off].sum()
    return float(m[off & same].sum() / total) if total else float("nan")


def group_confusion_chance(groups: Sequence[str]) -> float:
    """The share :func:`group_confusion_share` would have if every class's confusions were spread evenly over
    the other classes: the mean over classes of (other classes in its group) / (other classes).

    Example:
        >>> group_confusion_chance(["yellow", "yellow", "red", "white", "mixed"])  # 2 of 5 x 4 ordered pairs
        0.1
    """
    g = np.asarray(groups, dtype=object)
    n = len(g)
    if n < 2:
        return float("nan")
    same = [(np.sum(g == x) - 1) if x != "" else 0 for x in g]
    return float(np.mean(same) / (n - 1))


class ConfusionMetrics(MulticlassConfusionMatrix):
    """The confusion matrix of an epoch; ``compute()`` gives :func:`scores_from_confusion` (``accuracy``,
    ``macro_f1``, ``accuracy_<class>``) and keeps the matrix as :attr:`matrix` (for the test report)."""

    def __init__(self, classes: Sequence[str], **kwargs: object) -> None:
        super().__init__(num_classes=len(classes), **kwargs)  # type: ignore[arg-type]
        self.classes = list(classes)
        self.matrix: Tensor | None = None

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        self.matrix = super().compute().detach().cpu().to(torch.int64)
        return scores_from_confusion(self.matrix, self.classes)
