"""``tinct study colorization``: the ablation of Zhang, Isola & Efros (2016) at small scale.

Three networks with the same architecture, data and budget (the base config's epochs and crops), the
points of the shipped sweep file ``configs/colorization/study.sweep.yaml``:

- classification over the 313 ab bins with class rebalancing (the paper's full method),
- classification without rebalancing,
- L2 regression of ab (the paper's regression baseline),

each scored on the held-out test photos at full resolution with :func:`tinct.colorization.colorize.
evaluate_colorization` (raw and rebalanced AuC, PSNR, colourfulness), beside the grayscale baseline and the
colourfulness of the original photos. Output::

    OUT/<variant>/            run directory of each variant (skipped when finished, resumed when stopped)
    OUT/<variant>/colorization_metrics.json
    OUT/study.csv, study.md, study.json
    OUT/figures/metrics.png   the four metrics per variant
    OUT/figures/examples.png  grayscale / each variant / original on test photos
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.config import ExperimentConfig
from tinct.core.exceptions import ConfigError
from tinct.engine.experiments import ensure_trained, load_base_config, load_study_sweep, with_updates
from tinct.engine.run_dir import RunDir
from tinct.engine.sweep_spec import SweepSpec

__all__ = [
    "DEFAULT_SWEEP",
    "STUDY_COLUMNS",
    "StudyVariant",
    "study_base",
    "study_colorization",
    "study_variants",
]

STUDY_COLUMNS = ("Model", "Epochs", "AuC raw", "AuC rebalanced", "PSNR", "Colourfulness")


DEFAULT_SWEEP = "configs/colorization/study.sweep.yaml"
# Table names of the sweep file's labels (other labels are shown as they are).
_NAMES = {
    "classification_rebalanced": "classification + rebalancing",
    "classification": "classification, no rebalancing",
    "regression_l2": "L2 regression",
}


@dataclass(frozen=True)
class StudyVariant:
    """One row of the study: the sweep point's label (its folder), table name and config overrides."""

    slug: str
    name: str
    overrides: dict[str, Any]


def study_variants(
    sweep: str | os.PathLike[str] | SweepSpec = DEFAULT_SWEEP, names: Mapping[str, str] | None = None
) -> list[StudyVariant]:
    """The variants of a study's sweep file (a path or a loaded one), in its order (one per grid point);
    ``names``: table names of the points' labels (default: this study's)."""
    names = _NAMES if names is None else names
    spec = sweep if isinstance(sweep, SweepSpec) else load_study_sweep(sweep)
    out = []
    for point in spec.points():
        slug = "-".join(str(v) for v in point.params.values())
        out.append(StudyVariant(slug, names.get(slug, slug), dict(point.overrides)))
    return out


def study_base(
    sweep: str | os.PathLike[str],
    base_config: str | os.PathLike[str] | ExperimentConfig | None,
    overrides: Sequence[str],
    task: str,
    epochs: int | None = None,
) -> tuple[SweepSpec, ExperimentConfig]:
    """A study's sweep file and base config: ``base_config`` (default: the sweep's base) with ``overrides``,
    the sweep's ``set`` section and ``epochs`` (``trainer.max_epochs``) applied.

    Raises:
        ConfigError: the base config is not of ``task``.
    """
    spec = load_study_sweep(sweep)
    base = load_base_config(base_config if base_config is not None else spec.resolve(spec.base), overrides)
    if spec.set:
        base = with_updates(base, spec.set)
    if base.task != task:
        raise ConfigError(f"the {task} study needs a {task} config, got task {base.task!r}")
    if epochs is not None:
        base = with_updates(base, {"trainer.max_epochs": epochs})
    return spec, base


def study_colorization(
    out: str | os.PathLike[str],
    base_config: str | os.PathLike[str] | ExperimentConfig | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    epochs: int | None = None,
    overrides: Sequence[str] = (),
    variants: Sequence[str] | None = None,
    progress: bool = True,
    examples: int = 4,
    sweep: str | os.PathLike[str] = DEFAULT_SWEEP,
) -> pd.DataFrame:
    """Train (or resume) the three variants, score them on the test photos, write the table and figures.

    Args:
        out: output folder; an existing one is resumed (finished variants are not retrained).
        base_config: colorization YAML or config (default: the sweep file's base,
            ``configs/colorization/eccv16_photos.yaml``, with its ``set`` section).
        data: a photo folder replacing the base config's ``data.root``.
        epochs: ``trainer.max_epochs`` of every variant (default: the base config's).
        overrides: ``key.path=value`` changes to the base config (as ``--set``).
        variants: labels of the sweep's variants to run (default: all of them).
        progress: print progress lines and bars.
        examples: number of test photos in ``figures/examples.png``.
        sweep: the sweep file whose points are the study's variants (default
            ``configs/colorization/study.sweep.yaml``: rebalanced classification, classification, L2).

    Returns:
        The table (columns :data:`STUDY_COLUMNS`): the variants, then ``grayscale (ab = 0)`` and
        ``original photos`` (colourfulness only).
    """
    from tinct.colorization.colorize import METRIC_KEYS, evaluate_colorization
    from tinct.colorization.task import ColorizationDataModule

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = [f"data.root={Path(data).resolve()}", "data.kind=folder"] if data is not None else []
    spec, base = study_base(sweep, base_config, [*extra, *overrides], "colorization", epochs)
    every = study_variants(spec)
    by_slug = {v.slug: v for v in every}
    unknown = [v for v in variants or () if v not in by_slug]
    if unknown:
        raise ConfigError(f"unknown colorization variant(s) {unknown}; valid: {', '.join(by_slug)}")
    chosen = [by_slug[v] for v in variants] if variants else every
    test_photos = ColorizationDataModule(base).resolve_splits()["test"]  # type: ignore[arg-type]

    rows, results = [], {}
    for v in chosen:
        cfg = with_updates(base, {"name": f"{base.name}-{v.slug}", **v.overrides})
        run_dir = out / v.slug
        if ensure_trained(cfg, run_dir, quiet=not progress) == "done" and progress:
            print(f"{v.slug}: trained before", flush=True)
        trained = RunDir(run_dir).metrics()
        metrics_file = run_dir / "colorization_metrics.json"
        if metrics_file.is_file():
            metrics = json.loads(metrics_file.read_text())
        else:
            metrics = evaluate_colorization(run_dir, test_photos, out=metrics_file, progress=progress)
        results[v.slug] = {"variant": v.name, "training": trained, "test": metrics}
        rows.append([v.name, int(trained.get("epochs", 0)), *(metrics[k] for k in METRIC_KEYS)])
    gray = results[chosen[0].slug]["test"]["gray"]
    original = results[chosen[0].slug]["test"]["original"]
    rows.append(["grayscale (ab = 0)", 0, *(gray[k] for k in METRIC_KEYS)])
    rows.append(["original photos", 0, float("nan"), float("nan"), float("nan"), original["colorfulness"]])
    table = pd.DataFrame(rows, columns=list(STUDY_COLUMNS))
    for col in ("AuC raw", "AuC rebalanced"):
        table[col] = table[col] * 100.0  # percent, as in the paper's table 1

    atomic_write_text(out / "study.csv", table.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(out / "study.md", _markdown(table, len(test_photos), results))
    atomic_write_json(
        out / "study.json",
        {
            "base_config": base.model_dump(mode="json"),
            "test_photos": [str(p) for p in test_photos],
            "variants": results,
        },
    )
    _figures(out, chosen, table, test_photos[:examples])
    return table


def _markdown(table: pd.DataFrame, n_test: int, results: dict[str, Any] | None = None) -> str:
    lines = [
        f"Colorization ablation on {n_test} held-out photos (full resolution). AuC in %, PSNR in dB.",
        "",
        "| " + " | ".join(table.columns) + " |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for _, row in table.iterrows():
        cells = [str(row["Model"]), str(int(row["Epochs"])) if row["Epochs"] else "-"]
        cells += ["-" if pd.isna(row[c]) else f"{row[c]:.2f}" for c in STUDY_COLUMNS[2:]]
        lines.append("| " + " | ".join(cells) + " |")
    chosen = []
    for r in (results or {}).values():
        trained = r.get("training", {})
        val = trained.get("val/auc_rebalanced")
        if val is not None:
            best = trained.get("best_epoch")  # 0-based in metrics.json; shown 1-based, as training logs it
            epoch = int(best) + 1 if best is not None else "?"
            chosen.append(f"{r['variant']}: epoch {epoch}, {100.0 * float(val):.2f}")
    if chosen:
        lines += [
            "",
            "Each run's checkpoint is its epoch with the best validation rebalanced AuC (pooled over every "
            "pixel of the validation photos' centre crops; the test photos choose nothing): "
            + "; ".join(chosen)
            + ".",
        ]
    return "\n".join(lines) + "\n"


_SHORT = {
    "classification + rebalancing": "class.\n+ rebal.",
    "classification, no rebalancing": "class.",
    "L2 regression": "L2",
    "grayscale (ab = 0)": "gray",
}


def _figures(out: Path, chosen: Sequence[StudyVariant], table: pd.DataFrame, photos: Sequence[Path]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.color.lab import rgb_to_lab
    from tinct.colorization.colorize import _read, load_colorizer
    from tinct.colorization.metrics import grayscale_from_lab

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    shown = table[table["Model"] != "original photos"]
    colours = [f"C{i}" for i in range(len(shown) - 1)] + ["0.6"]
    for ax, col in zip(axes, STUDY_COLUMNS[2:], strict=True):
        ax.bar(range(len(shown)), shown[col], color=colours)
        ax.set_xticks(
            range(len(shown)),
            [_SHORT.get(m, m) for m in shown["Model"]],
            fontsize=8,
        )
        ax.set_title(col)
        if col == "Colourfulness":
            ax.axhline(table["Colourfulness"].iloc[-1], color="k", ls=":", label="original photos")
            ax.legend(fontsize=7)
        low = shown[col].min()
        ax.set_ylim(low * 0.9 if col != "Colourfulness" else 0, None)
    fig.suptitle("colorization ablation (held-out photos)")
    fig.tight_layout()
    fig.savefig(figures / "metrics.png", dpi=110)
    plt.close(fig)

    if not photos:
        return
    colorizers = [load_colorizer(out / v.slug)[0] for v in chosen]
    cols = 2 + len(chosen)
    fig, axes = plt.subplots(len(photos), cols, figsize=(2.6 * cols, 2.0 * len(photos)), squeeze=False)
    for r, path in enumerate(photos):
        rgb, _ = _read(path)
        gray = grayscale_from_lab(rgb_to_lab(rgb[None]))
        images = [gray[0]] + [c(rgb[None])[0][0] for c in colorizers] + [rgb]
        titles = ["grayscale"] + [v.name for v in chosen] + ["original"]
        for c, (image, title) in enumerate(zip(images, titles, strict=True)):
            axes[r, c].imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(figures / "examples.png", dpi=100)
    plt.close(fig)
