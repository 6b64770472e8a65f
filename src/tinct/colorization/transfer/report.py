"""What a classification run writes about its test photos, and its predictions on files.

``classification_metrics.json``: classes, colour groups, the confusion matrix (rows: true class), accuracy,
macro F1, per-class accuracy and the share of confusions that stay inside a colour group;
``classification_predictions.csv``: one row per test photo (true and predicted class, confidence, the
probability of each class); ``figures/confusion_matrix.png``: the row-normalised matrix, classes ordered by
colour group with the groups outlined.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinct.colorization.transfer.data import group_order
from tinct.colorization.transfer.metrics import (
    group_confusion_chance,
    group_confusion_share,
    scores_from_confusion,
)
from tinct.core.atomic import atomic_write_json, atomic_write_text

__all__ = ["classify_files", "confusion_summary", "plot_confusion", "write_classification_report"]


def confusion_summary(
    matrix: Any, classes: Sequence[str], groups: dict[str, list[str]] | None
) -> dict[str, Any]:
    """Scores of a confusion matrix with its colour-group view (``order``: class indices by group)."""
    m = np.asarray(matrix, dtype=np.int64)
    order, group_of = group_order(classes, groups)
    groups_by_class = [""] * len(classes)
    for i, g in zip(order, group_of, strict=True):
        groups_by_class[i] = g
    return {
        "classes": list(classes),
        "groups": groups or {},
        "order": order,
        "n": int(m.sum()),
        "matrix": m.tolist(),
        **scores_from_confusion(m, classes),
        "within_group_confusion": group_confusion_share(m, groups_by_class) if groups else None,
        # the share if confusions fell evenly on the other classes
        "within_group_confusion_chance": group_confusion_chance(groups_by_class) if groups else None,
    }


def plot_confusion(summary: dict[str, Any], out: str | Path, title: str = "") -> Path:
    """The row-normalised confusion matrix of :func:`confusion_summary`, classes ordered by colour group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from tinct.engine.plots import save_figure

    order = summary["order"]
    m = np.asarray(summary["matrix"], dtype=np.float64)[np.ix_(order, order)]
    rows = m / np.maximum(m.sum(1, keepdims=True), 1)
    classes = [summary["classes"][i] for i in order]
    group_of = {c: g for g, members in summary["groups"].items() for c in members}
    labels = [f"{c} ({group_of[c]})" if c in group_of else c for c in classes]
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * n, 1.0 + 0.7 * n))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{100 * rows[i, j]:.0f}\n({int(m[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if rows[i, j] > 0.6 else "black")  # fmt: skip
    start = 0
    for k in range(1, n + 1):  # outline each colour group (consecutive classes of one group)
        if k == n or group_of.get(classes[k]) != group_of.get(classes[start]) or classes[k] not in group_of:
            if classes[start] in group_of:
                size = k - start
                ax.add_patch(Rectangle((start - 0.5, start - 0.5), size, size, fill=False, ec="C3", lw=2))
            start = k
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    share = summary.get("within_group_confusion")
    lines = [title, f"accuracy {100 * summary['accuracy']:.1f} % (row %, counts)"]
    if share is not None and np.isfinite(share):
        lines.append(f"{100 * share:.0f} % of confusions inside a colour group")
    ax.set_title("\n".join(line for line in lines if line), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)


def write_classification_report(
    task: Any, out_dir: Path, data: str, photos: Sequence[Path]
) -> dict[str, Any]:
    """The files of the module docstring for the last test epoch of ``task`` (photos of the test split)."""
    import pandas as pd

    last = task.last_test
    if "matrix" not in last:
        return {}
    classes = task.classes
    summary = {"data": data, **confusion_summary(last["matrix"], classes, task.cfg.data.groups)}
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "classification_metrics.json", summary)
    rows = []
    for index, label, probs in last.get("rows", []):
        for i, y, p in zip(index.tolist(), label.tolist(), probs, strict=True):
            k = int(p.argmax())
            rows.append(
                {
                    "image": str(photos[i]) if i < len(photos) else i,
                    "true": classes[y],
                    "predicted": classes[k],
                    "confidence": float(p[k]),
                    "correct": bool(k == y),
                    **{f"p_{c}": float(v) for c, v in zip(classes, p.tolist(), strict=True)},
                }
            )
    if rows:
        atomic_write_text(out_dir / "classification_predictions.csv", pd.DataFrame(rows).to_csv(index=False))
    plot_confusion(summary, out_dir / "figures" / "confusion_matrix.png", f"{task.cfg.name} ({data})")
    return summary


@torch.no_grad()
def classify_files(task: Any, paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Class, confidence and class probabilities of photos (short side resized to ``data.resize``, centre
    crop ``data.eval_size``, as the test photos).

    Raises:
        DataError: a file cannot be read (named).
    """
    from tinct.colorization.photos import PhotoImages, read_photo, resize_short_side

    d = task.cfg.data
    task.eval()
    rows = []
    for path in paths:
        image = np.round(resize_short_side(read_photo(path), d.resize) * 255.0).astype(np.uint8)
        x = PhotoImages([image], d.eval_size)[0]["image"][None].to(task.device)
        p = task(x).float().softmax(1)[0].cpu()
        k = int(p.argmax())
        rows.append(
            {
                "image": str(path),
                "class": task.classes[k],
                "confidence": float(p[k]),
                **{f"p_{c}": float(v) for c, v in zip(task.classes, p.tolist(), strict=True)},
            }
        )
    return rows
