"""Semantic interpretability of colorizations: does a classifier of colour photos recognise recolorized ones?

Zhang, Isola & Efros (2016, section 3.1, table 1) ran a VGG-16 classifier trained on colour ImageNet photos
on the validation photos as they are (68.3 % top-1), on their grayscale versions (52.7 %) and on their
recolorizations (56.0 %): a colorizer whose colours carry meaning gives back part of the accuracy that
grayscale took away (here about 21 % of the drop). :func:`semantic_interpretability` runs that test with a
classification run trained on colour (``data.input: color``) and any colorizers, on the run's own test
photos or on every photo of a folder, at the centre crop the run is evaluated on:

- ``original``: the crop; ``grayscale``: its CIELAB L* kept and a* = b* = 0
  (:func:`~tinct.colorization.metrics.grayscale_from_lab`); ``recolorized: <name>``: each colorizer applied
  to the grayscale crop (it keeps the crop's L*, :class:`~tinct.colorization.networks.Colorizer`);
- per version: accuracy and macro F1 of its confusion matrix, the drop from the original, the difference
  from grayscale with a paired bootstrap 95 % interval over photos, the share of confusions that stay in a
  colour group (``data.groups``), and for each colorizer the share of the original -> grayscale drop it
  recovers (:func:`recovered_share`).

:func:`tinct.colorization.metrics.semantic_interpretability` computes the same three accuracies for
in-memory images and any classifier callable; this module is the command-level test on a trained run's
photos, with per-photo predictions, intervals and resuming.

Output (``out``)::

    interpretability.csv              the table (one row per version)
    interpretability.json             the table, each version's confusion summary, per-photo predictions
    interpretability_predictions.csv  one row per photo: true class and each version's prediction
    interpretability.md               markdown table and the comparison with the paper
    figures/interpretability.png      accuracy per version with the intervals
    figures/interpretability_examples.png   a few photos in every version with the predicted class

Resuming: the per-photo predictions in ``interpretability.json`` are reused for every version whose inputs
are unchanged (the classifier's checkpoint by content, the photos and labels, the crop settings, each
colorizer's weights by content), and saved every minute while a long job runs, so a rerun, or a run with
one more colorizer, classifies only what is new.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from tinct.core.exceptions import ConfigError, DataError, RunDirError
from tinct.engine.statistics import paired_bootstrap_ci

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GRAYSCALE",
    "ORIGINAL",
    "PAPER_ACCURACY",
    "interpretability_versions",
    "paired_bootstrap_ci",
    "recolorized_name",
    "recovered_share",
    "semantic_interpretability",
]

ORIGINAL = "original"
GRAYSCALE = "grayscale"
#: Top-1 accuracy (%) of VGG-16 on ImageNet validation photos: Zhang, Isola & Efros (2016), table 1.
PAPER_ACCURACY = {"original": 68.3, "grayscale": 52.7, "recolorized": 56.0}
#: Seconds between saves of the per-photo predictions while a job runs.
SAVE_EVERY_S = 60.0


def recolorized_name(name: str) -> str:
    """The version name of a colorizer's recolorizations.

    Example:
        >>> recolorized_name("siggraph17")
        'recolorized: siggraph17'
    """
    return f"recolorized: {name}"


def recovered_share(recolorized: float, grayscale: float, original: float) -> float:
    """The share of the original -> grayscale accuracy drop that recolorizing gives back.

    ``(recolorized - grayscale) / (original - grayscale)``: 0 when recolorized photos are classified as well
    as grayscale ones, 1 when as well as the originals (it may fall outside [0, 1]). NaN when grayscale did
    not lower the accuracy (``original <= grayscale``): there is no drop to recover.

    Example:
        >>> round(recovered_share(56.0, 52.7, 68.3), 3)  # Zhang et al. (2016), table 1
        0.212
        >>> recovered_share(0.5, 0.6, 0.6)
        nan
    """
    drop = original - grayscale
    return float((recolorized - grayscale) / drop) if drop > 0 else float("nan")


def _versions(rgb: Tensor, colorizers: Mapping[str, Any], names: Any = None) -> dict[str, Tensor]:
    """:func:`interpretability_versions` of a batch :math:`(B, 3, H, W)` (only ``names`` when given)."""
    from tinct.color.lab import rgb_to_lab
    from tinct.colorization.metrics import grayscale_from_lab

    gray = grayscale_from_lab(rgb_to_lab(rgb))
    out = {ORIGINAL: rgb, GRAYSCALE: gray}
    with torch.no_grad():
        for name, colorizer in colorizers.items():
            version = recolorized_name(name)
            if names is None or version in names:
                out[version] = colorizer(gray)[0].to(rgb.device)
    return out if names is None else {k: v for k, v in out.items() if k in names}


def interpretability_versions(rgb: Tensor, colorizers: Mapping[str, Any]) -> dict[str, Tensor]:
    """The versions of a photo that the semantic interpretability test classifies.

    Args:
        rgb: an sRGB photo in [0, 1] (the crop to classify).
        colorizers: name -> a colorizer (``colorizer(rgb_batch)`` -> ``(rgb, lab)``, as
            :func:`~tinct.colorization.colorize.load_colorizer` gives).

    Returns:
        ``{"original": rgb, "grayscale": ..., "recolorized: <name>": ...}``, each sRGB in [0, 1] of the
        photo's size: grayscale keeps the photo's CIELAB L* with a* = b* = 0; each recolorization is its
        colorizer's output for the grayscale photo (its L* is the photo's, up to clipping to sRGB).

    Raises:
        ShapeError: ``rgb`` is not :math:`(3, H, W)`.

    Shape:
        - rgb: :math:`(3, H, W)`.
        - Output: each :math:`(3, H, W)`.

    Example:
        >>> v = interpretability_versions(torch.rand(3, 8, 8), {})
        >>> list(v), bool((v["grayscale"] - v["grayscale"][:1]).abs().max() < 1e-3)
        (['original', 'grayscale'], True)
    """
    from tinct.core.checks import check_floating, check_shape

    check_floating(rgb, "rgb")
    check_shape(rgb, ["3", "H", "W"], "rgb")
    return {k: v[0] for k, v in _versions(rgb[None], colorizers).items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _colorizer_id(source: str | os.PathLike[str]) -> dict[str, str]:
    """What identifies a colorizer's predictions: its source and the content of its weights."""
    from tinct.engine.run_dir import RunDir

    p = Path(source)
    if p.is_dir():
        weights = RunDir(p).checkpoint("best")
    elif p.is_file():
        weights = p
    else:
        raise RunDirError(f"{p}: no such colorizer (a colorization run directory, checkpoint or .pt file)")
    return {"source": str(p.resolve()), "sha256": _sha256(weights)}


def _load_classifier(classifier: str | os.PathLike[str], device: torch.device) -> tuple[Any, Path]:
    """The classification run's task in eval mode, refused before its weights are read when it is no
    classifier of colour photos."""
    from tinct.engine.evaluate import load_task
    from tinct.engine.run_dir import RunDir

    run = RunDir(classifier)
    cfg = run.config()
    if cfg.task != "classification":
        raise RunDirError(f"{run.path}: a {cfg.task!r} run, not a classification run")
    if cfg.data.input != "color":
        raise ConfigError(
            f"{run.path}: a classifier of lightness (data.input: {cfg.data.input}) sees the same L* in the "
            "original, grayscale and recolorized photos, so its accuracy cannot tell them apart; semantic "
            "interpretability needs a classifier trained on colour photos (data.input: color)"
        )
    task = load_task(run.path).to(device)
    return task, run.checkpoint("best")


@torch.no_grad()
def _predict(task: Any, images: Tensor) -> list[int]:
    return task(images.to(task.device)).argmax(1).cpu().tolist()


def _previous(path: Path | None, inputs: dict[str, Any]) -> dict[str, Any]:
    """A previous ``interpretability.json`` of the same inputs (else an empty dict)."""
    if path is None or not path.is_file():
        return {}
    import json

    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        warnings.warn(f"{path}: unreadable; the predictions are made afresh", stacklevel=3)
        return {}
    return old if isinstance(old, dict) and old.get("inputs") == inputs else {}


def _table(
    labels: np.ndarray,
    predictions: dict[str, list[int]],
    classes: list[str],
    groups: dict[str, list[str]] | None,
    seed: int,
    n_boot: int,
) -> tuple[Any, dict[str, Any]]:
    import pandas as pd

    from tinct.colorization.transfer.report import confusion_summary

    k = len(classes)
    correct = {v: np.asarray(p) == labels for v, p in predictions.items()}
    summaries, rows = {}, []
    for version, pred in predictions.items():
        matrix = np.zeros((k, k), dtype=np.int64)
        np.add.at(matrix, (labels, np.asarray(pred, dtype=np.int64)), 1)
        summaries[version] = confusion_summary(matrix, classes, groups)
    acc = {v: s["accuracy"] for v, s in summaries.items()}
    for version, s in summaries.items():
        low, high = paired_bootstrap_ci(correct[version], correct[GRAYSCALE], n_boot, seed)
        share = s["within_group_confusion"]
        rows.append(
            {
                "version": version,
                "accuracy": s["accuracy"],
                "macro_f1": s["macro_f1"],
                "drop_vs_original": acc[ORIGINAL] - s["accuracy"],
                "vs_grayscale": s["accuracy"] - acc[GRAYSCALE],
                "ci95_vs_gray_low": low,
                "ci95_vs_gray_high": high,
                "recovered": recovered_share(s["accuracy"], acc[GRAYSCALE], acc[ORIGINAL])
                if version not in (ORIGINAL, GRAYSCALE)
                else float("nan"),
                "within_group_confusion": float("nan") if share is None else share,
                "n": s["n"],
            }
        )
    return pd.DataFrame(rows), summaries


def _percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}" if np.isfinite(value) else "-"


def _markdown(table: Any, classifier: str, photos: str) -> str:
    paper = PAPER_ACCURACY
    paper_share = recovered_share(paper["recolorized"], paper["grayscale"], paper["original"])
    lines = [
        f"Semantic interpretability: the colour classifier {classifier} on {photos} "
        f"({int(table['n'].iloc[0])} photos). Accuracy, macro F1 and differences in %; the interval is a "
        "paired bootstrap 95 % interval over photos of the difference from grayscale.",
        "",
        "| Version | Accuracy | Macro F1 | Drop vs original | vs grayscale [95 % CI] | Recovered | "
        "Within-group confusions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.itertuples(index=False):
        ci = f"{_percent(r.vs_grayscale)} [{_percent(r.ci95_vs_gray_low)}, {_percent(r.ci95_vs_gray_high)}]"
        lines.append(
            f"| {r.version} | {_percent(r.accuracy)} | {_percent(r.macro_f1)} | {_percent(r.drop_vs_original)} "
            f"| {ci} | {_percent(r.recovered, 0)} | {_percent(r.within_group_confusion, 0)} |"
        )
    acc = dict(zip(table["version"], table["accuracy"], strict=True))
    here = f"{_percent(acc[ORIGINAL])} -> {_percent(acc[GRAYSCALE])} %"
    recolored = table[~table["version"].isin([ORIGINAL, GRAYSCALE])]
    if len(recolored):
        best = recolored.loc[recolored["accuracy"].idxmax()]
        here = f"{_percent(acc[ORIGINAL])} -> {_percent(acc[GRAYSCALE])} -> {_percent(best['accuracy'])} %"
        name = str(best["version"]).removeprefix(recolorized_name(""))
        if np.isfinite(best["recovered"]):
            here += f" ({name}, recovering {_percent(best['recovered'], 0)} % of the drop)"
        else:
            here += f" ({name}; grayscale did not lower the accuracy, so there is no drop to recover)"
    lines += [
        "",
        f"Zhang et al. (2016, table 1) report {paper['original']} -> {paper['grayscale']} -> "
        f"{paper['recolorized']} % top-1 for VGG-16 on ImageNet (original -> grayscale -> their "
        f"recolorizations), recovering {100 * paper_share:.0f} % of the drop; here: {here}.",
        "",
    ]
    return "\n".join(lines)


def _plot_accuracy(table: Any, out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.engine.plots import save_figure

    acc = 100 * table["accuracy"].to_numpy(dtype=float)
    gray = 100 * float(table.loc[table["version"] == GRAYSCALE, "accuracy"].iloc[0])
    low = gray + 100 * table["ci95_vs_gray_low"].to_numpy(dtype=float)
    high = gray + 100 * table["ci95_vs_gray_high"].to_numpy(dtype=float)
    yerr = np.nan_to_num(np.stack([acc - low, high - acc]).clip(min=0))
    colours = ["C0" if v == ORIGINAL else "0.6" if v == GRAYSCALE else "C2" for v in table["version"]]
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(1.8 + 1.3 * len(table), 3.6))
    ax.bar(x, acc, color=colours, yerr=yerr, capsize=4)
    ax.axhline(gray, color="0.4", lw=0.8, ls="--")
    for i, a in enumerate(acc):
        ax.text(i, a / 2, f"{a:.1f}", ha="center", va="center", fontsize=8, color="white")
    ax.set_xticks(x, list(table["version"]), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(
        f"{title}\nerror bars: paired bootstrap 95 % interval of the difference from grayscale", fontsize=9
    )
    fig.tight_layout()
    return save_figure(fig, out)


def _example_photos(labels: np.ndarray, predictions: dict[str, list[int]], count: int) -> list[int]:
    """Photos worth showing: first those whose class the grayscale version loses, then those the versions
    disagree on, then the rest (each in test order)."""
    pred = {v: np.asarray(p) for v, p in predictions.items()}
    lost = (pred[ORIGINAL] == labels) & (pred[GRAYSCALE] != labels)
    disagree = np.any(np.stack([p != pred[ORIGINAL] for p in pred.values()]), axis=0)
    order = sorted(range(len(labels)), key=lambda i: (not lost[i], not disagree[i], i))
    return order[:count]


def _plot_examples(
    photos: Any,
    chosen: list[int],
    colorizers: Mapping[str, Any],
    versions: list[str],
    predictions: dict[str, list[int]],
    classes: list[str],
    out: Path,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.engine.plots import save_figure

    fig, axes = plt.subplots(
        len(chosen), len(versions), figsize=(1.9 * len(versions), 2.1 * len(chosen)), squeeze=False
    )
    for row, i in enumerate(chosen):
        item = photos[i]
        images = interpretability_versions(item["image"], colorizers)
        truth = int(item["label"])
        for col, version in enumerate(versions):
            ax = axes[row, col]
            ax.imshow(images[version].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            k = predictions[version][i]
            mark = "ok" if k == truth else "wrong"
            ax.set_title(f"{version}\n{classes[k]} ({mark})", fontsize=7, color="k" if k == truth else "C3")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"true: {classes[truth]}", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def semantic_interpretability(
    classifier: str | os.PathLike[str],
    colorizers: Mapping[str, str | os.PathLike[str]],
    *,
    data: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
    seed: int = 0,
    n_boot: int = 2000,
    examples: int = 4,
    device: str | None = None,
) -> pd.DataFrame:
    """Accuracy of a colour classifier on original, grayscale and recolorized photos (module docstring).

    Each test photo's centre crop (``data.eval_size`` of the photo resized to ``data.resize``, exactly
    what the run's test scored) is classified as it is, in grayscale and recolorized by each colorizer
    (each colorizer runs once on each crop, a batch at a time).

    Args:
        classifier: a classification run folder trained on colour (``data.input: color``); its best
            checkpoint is used.
        colorizers: name -> colorizer source (a colorization run folder, checkpoint or exported ``.pt``,
            e.g. :data:`tinct.colorization.pretrained.SIGGRAPH17_COLORIZER` ``.path()``); may be empty.
        data: a folder of class folders (classes among the run's) whose every photo is tested; None: the
            run's own test split.
        out: a folder for the files of the module docstring (and the saved predictions a rerun resumes
            from); None: nothing is written.
        progress: show a progress bar.
        seed: seed of the bootstrap.
        n_boot: bootstrap resamples.
        examples: photos in ``figures/interpretability_examples.png``.
        device: where the classifier and colorizers run (default: CUDA when available, else the CPU).

    Returns:
        A ``pandas.DataFrame``, one row per version (``original``, ``grayscale``, ``recolorized: <name>``):
        ``accuracy``, ``macro_f1``, ``drop_vs_original``, ``vs_grayscale`` (accuracy differences, in
        [-1, 1]), ``ci95_vs_gray_low`` / ``ci95_vs_gray_high`` (paired bootstrap interval of
        ``vs_grayscale``), ``recovered`` (:func:`recovered_share`, NaN but for recolorizations),
        ``within_group_confusion`` (NaN without ``data.groups``) and ``n`` (photos).

    Raises:
        RunDirError: ``classifier`` is not a classification run, or a colorizer source does not exist or
            holds no colorization model.
        ConfigError: the classifier was trained on lightness (``data.input: lightness``): every version has
            the same L*, so it could not tell them apart; or a colorizer name is empty.
        DataError: ``data`` is not a folder, holds a class the model does not know, or no readable photo.

    Example:
        >>> from tinct.colorization.pretrained import ECCV16_COLORIZER
        >>> table = semantic_interpretability(  # doctest: +SKIP
        ...     "runs/flowers-color", {"eccv16": ECCV16_COLORIZER.path()}, out="runs/flowers-color/semantic"
        ... )
        >>> table[["version", "accuracy", "recovered"]]  # doctest: +SKIP
    """
    from tinct.colorization.colorize import load_colorizer
    from tinct.core.atomic import atomic_write_json, atomic_write_text
    from tinct.core.progress import track

    names = [str(n) for n in colorizers]
    if any(not n.strip() for n in names):
        raise ConfigError(f"colorizers: every colorizer needs a non-empty name, got {names!r}")
    run_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    task, checkpoint = _load_classifier(classifier, run_device)
    if data is not None:
        if not Path(data).is_dir():
            raise DataError(f"{data}: no such folder (a folder of class folders to test on)")
        task.cfg = task.with_data(data)
    colorizer_ids = {str(n): _colorizer_id(src) for n, src in colorizers.items()}
    dm = task.build_datamodule()
    photos = dm.load("test", train=False)
    pairs = dm.splits["test"]
    classes = list(task.classes)
    labels = np.asarray([label for _, label in pairs], dtype=np.int64)
    d = task.cfg.data
    inputs = {
        "classifier": str(Path(classifier).resolve()),
        "checkpoint_sha256": _sha256(checkpoint),
        "data": str(data) if data is not None else "test split",
        "resize": d.resize,
        "eval_size": d.eval_size,
        "classes": classes,
        "photos": [str(p) for p, _ in pairs],
        "labels": labels.tolist(),
    }
    folder = Path(out) if out is not None else None
    json_path = folder / "interpretability.json" if folder is not None else None
    old = _previous(json_path, inputs)
    old_predictions = old.get("predictions", {})
    versions = [ORIGINAL, GRAYSCALE, *(recolorized_name(n) for n in colorizer_ids)]
    predictions = {version: list(old_predictions.get(version, [])) for version in (ORIGINAL, GRAYSCALE)}
    for name, ident in colorizer_ids.items():
        same = old.get("colorizers", {}).get(name) == ident
        predictions[recolorized_name(name)] = (
            list(old_predictions.get(recolorized_name(name), [])) if same else []
        )

    n = len(labels)
    loaded: dict[str, Any] = {}

    def colorizer_models() -> dict[str, Any]:
        for name in colorizer_ids:
            if name not in loaded:
                loaded[name] = load_colorizer(colorizers[name])[0].to(run_device).eval()
        return loaded

    def record(complete: bool) -> dict[str, Any]:
        return {
            "inputs": inputs,
            "colorizers": colorizer_ids,
            "complete": complete,
            "predictions": predictions,
        }

    start = min(len(p) for p in predictions.values())
    if start < n:
        models = colorizer_models()
        batch = d.batch_size
        last_save = time.monotonic()
        steps = range(start, n, batch)
        try:
            for s in track(steps, "semantic interpretability", total=len(steps), enabled=progress):
                e = min(n, s + batch)
                needed = [v for v in versions if len(predictions[v]) < e]
                rgb = torch.stack([photos[i]["image"] for i in range(s, e)])
                for version, images in _versions(rgb, models, needed).items():
                    predictions[version] += _predict(task, images)[len(predictions[version]) - s :]
                if json_path is not None and time.monotonic() - last_save > SAVE_EVERY_S:
                    atomic_write_json(json_path, record(complete=False))
                    last_save = time.monotonic()
        finally:  # an interrupted job keeps the predictions it made
            if json_path is not None and min(len(p) for p in predictions.values()) < n:
                atomic_write_json(json_path, record(complete=False))

    table, summaries = _table(labels, predictions, classes, d.groups, seed, n_boot)
    if folder is None:
        return table
    run_name = Path(inputs["classifier"]).name
    title = f"{run_name} on {inputs['data']}"
    atomic_write_json(
        folder / "interpretability.json",
        {
            **record(complete=True),
            "paper_accuracy": PAPER_ACCURACY,
            "table": table.to_dict(orient="records"),
            "versions": summaries,
        },
    )
    atomic_write_text(folder / "interpretability.csv", table.to_csv(index=False))
    import pandas as pd

    per_photo = pd.DataFrame(
        {
            "image": inputs["photos"],
            "true": [classes[k] for k in labels],
            **{v: [classes[k] for k in predictions[v]] for v in versions},
        }
    )
    atomic_write_text(folder / "interpretability_predictions.csv", per_photo.to_csv(index=False))
    atomic_write_text(folder / "interpretability.md", _markdown(table, run_name, inputs["data"]))
    _plot_accuracy(table, folder / "figures" / "interpretability.png", title)
    figure = folder / "figures" / "interpretability_examples.png"
    fresh = start < n or old.get("colorizers") != colorizer_ids
    if examples > 0 and (fresh or not figure.is_file()):
        chosen = _example_photos(labels, predictions, min(examples, n))
        _plot_examples(photos, chosen, colorizer_models(), versions, predictions, classes, figure)
    return table
