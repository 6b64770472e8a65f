"""The constancy study: linear vs log input, supervised vs contrastive pretraining (``tinct study constancy``).

Six variants of one illuminant-estimation recipe, scored on the same folds (or the same train / test split)
next to the classical methods:

=================================  ===========================================================
Type                               what trains
=================================  ===========================================================
``linear, supervised``             the regression network from scratch, on linear RGB input
``linear, contrastive + frozen``   contrastive pretraining (``illuminant_embedding``), then the
                                   regression head only on the frozen backbone
``linear, contrastive + full``     the same pretraining, then the whole network fine-tuned
``log, ...``                       the same three on ``linear_to_log`` input
=================================  ===========================================================

The variants, the base recipe (``configs/constancy/thumbnails_cnn.yaml``, the CPU-sized CNN), the epoch
budget and the pretraining recipe are those of the shipped sweep file ``configs/constancy/study.sweep.yaml``
(``sweep=`` picks another); ``overrides`` (``--set``) change the base before the variants are made, so
``--set model.backbone=googlenet`` runs the same study with another backbone. The contrastive pretraining
of each (input space, fold) runs once and serves both the frozen and the full variant; it trains on the
training folds only. Every variant is scored with its last checkpoint (see :mod:`tinct.constancy.crossval`).
The table also carries the seed study's published figures (:data:`SEED_REFERENCE`) for reference, and the
baselines of :func:`tinct.constancy.baselines.run_baselines` on the same folds: the classical methods and
FFCC (trained per fold on the training folds).

```
OUT/
  <variant slug>/          a cross-validation (or hold-out) folder per variant, see tinct.constancy.crossval
  pretrain/<space>/fold{k}  contrastive pretraining runs shared by the frozen and full variants
  baselines/               the classical methods and FFCC on the same folds
  study.csv, study.md      the table: Type | Epochs | Mean | Median | Trimean | Worst25 | Best25 |
                           Seed mean | Seed median
  study.json               everything behind the table (per-fold statistics, timings, configs)
  figures/error_cdf.png    error CDFs of all variants, FFCC and the best classical method (chosen by its
                           error on the training folds, where it was tuned, never by the held-out errors it
                           shows)
  figures/curves.png       training and validation curves of every variant and fold
```

Running the same command again resumes: finished variants are read back, finished folds skipped (whatever
the budget asked for now; the Epochs column always shows what was trained). Use a new OUT for a new budget.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tinct.constancy.crossval import crossval, holdout, read_errors
from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.config import ExperimentConfig, parse_overrides
from tinct.core.exceptions import ConfigError
from tinct.engine.config import config_from_dict, load_config
from tinct.engine.experiments import find_shipped, load_base_config, with_updates

if TYPE_CHECKING:
    from tinct.engine.sweep_spec import SweepSpec

__all__ = [
    "best_classical",
    "DEFAULT_BASE_CONFIG",
    "DEFAULT_SWEEP",
    "SEED_REFERENCE",
    "STUDY_COLUMNS",
    "VARIANTS",
    "Variant",
    "markdown_table",
    "pretrain_config",
    "study_constancy",
    "sweep_variants",
]

DEFAULT_BASE_CONFIG = "configs/constancy/thumbnails_cnn.yaml"
DEFAULT_SWEEP = "configs/constancy/study.sweep.yaml"
STUDY_COLUMNS = (
    "Type", "Epochs", "Mean", "Median", "Trimean", "Worst25", "Best25", "Seed mean", "Seed median"
)  # fmt: skip
_STATS = ("mean", "median", "trimean", "worst25", "best25")

# The seed study's own figures, as its issue quotes them ("The seed study on real data"): SimpleCube++
# (Canon 550D) at full resolution, mean / median angular error in degrees of its best models. Its best
# GoogLeNet on log input is the "log, supervised" row; the issue gives 1.99 / 1.59 for its best contrastive
# model without saying whether the backbone was frozen or fine-tuned, so both log contrastive rows carry
# it. tinct's rows are 64 x 64 Cube+ thumbnails (same sensor): a reference, not a like-for-like comparison.
SEED_REFERENCE: dict[str, tuple[float, float]] = {
    "log, supervised": (1.42, 0.87),
    "log, contrastive + frozen": (1.99, 1.59),
    "log, contrastive + full": (1.99, 1.59),
}
"""Variant name -> the seed study's (mean, median) in degrees; variants it gives no figure for are absent."""


@dataclass(frozen=True)
class Variant:
    """One row of the study: an input space and a training regime.

    Attributes:
        input_space: ``"linear"`` or ``"log"`` (``model.input_space``).
        training: ``"supervised"`` (from scratch), ``"frozen"`` (contrastive pretraining, then the head
            only) or ``"full"`` (contrastive pretraining, then everything fine-tuned).
    """

    input_space: str
    training: str

    def __post_init__(self) -> None:
        from tinct.core.checks import check_choice

        check_choice(self.input_space, ("linear", "log"), "input space")
        check_choice(self.training, ("supervised", "frozen", "full"), "training regime")

    @property
    def pretrained(self) -> bool:
        return self.training != "supervised"

    @property
    def name(self) -> str:
        """The table's ``Type``: ``"linear, supervised"``, ``"log, contrastive + frozen"`` ..."""
        regime = "supervised" if not self.pretrained else f"contrastive + {self.training}"
        return f"{self.input_space}, {regime}"

    @property
    def slug(self) -> str:
        """Folder name: ``linear-supervised``, ``log-contrastive-frozen`` ..."""
        return self.name.replace(" + ", "-").replace(", ", "-").replace(" ", "-")


VARIANTS = tuple(Variant(s, t) for s in ("linear", "log") for t in ("supervised", "frozen", "full"))


def sweep_variants(spec: SweepSpec) -> list[Variant]:
    """The study's variants from its sweep file: each point's ``model.input_space`` and regime
    (no ``pretrain``: supervised; ``pretrain`` with ``model.freeze``: frozen; else full)."""
    out = []
    for point in spec.points():
        ov = point.overrides
        if "model.input_space" not in ov:
            raise ConfigError(f"{spec.source}: point {point.params} does not set model.input_space")
        training = "supervised" if not point.pretrain else "frozen" if ov.get("model.freeze") else "full"
        out.append(Variant(str(ov["model.input_space"]), training))
    return out


def _variants(chosen: Sequence[Variant | str] | None, default: Sequence[Variant]) -> list[Variant]:
    if chosen is None:
        return list(default)
    by_name = {v.name: v for v in VARIANTS} | {v.slug: v for v in VARIANTS}
    out = []
    for v in chosen:
        if isinstance(v, Variant):
            out.append(v)
        elif v in by_name:
            out.append(by_name[v])
        else:
            raise ConfigError(f"unknown study variant {v!r}; valid: {', '.join(x.slug for x in VARIANTS)}")
    return out


def pretrain_config(base: ExperimentConfig, epochs: int | None = None) -> ExperimentConfig:
    """The contrastive ``illuminant_embedding`` config that matches an illuminant config's backbone.

    Same data, seed, optimiser and trainer; the backbone (name, width, depth, weights) and input space are
    copied, so the pretrained weights load into ``base``'s network (``model.init``). The embedding's own
    settings (projector, loss, negatives) keep their defaults.
    """
    m = base.model
    raw = base.model_dump(mode="json")
    raw.update(
        task="illuminant_embedding",
        name=f"{base.name}-pretrain",
        model={
            "backbone": m.backbone,
            "width": m.width,
            "depth": m.depth,
            "weights": m.weights,
            "input_space": m.input_space,
        },
    )
    if epochs is not None:
        raw["trainer"]["max_epochs"] = epochs
    return config_from_dict(raw, source=f"pretraining of {base.name}")


def _epochs_label(metrics: Mapping[str, Any], pretrained: bool) -> str:
    if pretrained:
        return f"{metrics.get('pretrain_epochs', 0)} + {metrics.get('epochs', 0)}"
    return str(metrics.get("epochs", 0))


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-markdown pipe table of a study table (numbers with 2 decimals, ``-`` for a missing one, text
    left-aligned)."""
    cols = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in cols]
    lines = [
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    for _, row in df.iterrows():
        cells = [
            ("-" if pd.isna(row[c]) else f"{row[c]:.2f}") if n else str(row[c])
            for c, n in zip(cols, numeric, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _classical_name(method: str) -> str:
    """The table label of a baseline: a classical method's, or FFCC's (``LEARNED_METHODS``)."""
    from tinct.constancy.baselines import LEARNED_METHODS
    from tinct.constancy.classical import CLASSICAL_METHODS

    if method in CLASSICAL_METHODS:
        return CLASSICAL_METHODS[method].label
    return LEARNED_METHODS.get(method, method)


def _run_baselines(
    root: str, folds: int | None, d: Any, out: Path, progress: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Statistics and per-image errors of the baselines (classical methods and FFCC) on the study's folds
    (or split).

    ``folds`` and ``d.split_seed`` give :func:`tinct.constancy.layouts.fold_ids` the same arguments as the
    cross-validation, so both score the same held-out images; ``folds=None`` on the synthetic data is its
    official train / test split, as in the hold-out runs. Finished results in ``out`` are reused.
    """
    from tinct.constancy.baselines import run_baselines

    stats_file, details_file = out / "baselines.json", out / "baselines_details.json"
    if not (stats_file.is_file() and details_file.is_file()):
        run_baselines(
            root,
            folds=folds,
            out=out,
            layout=d.layout,
            black_level=d.black_level,
            saturation=d.saturation,
            seed=d.split_seed,
            progress=progress,
        )
    stats = json.loads(stats_file.read_text())
    details = json.loads(details_file.read_text()).get("methods", {})
    errors = {
        m: np.asarray(details[m]["per_image"]["error"], dtype=np.float64)
        for m in stats
        if "per_image" in details.get(m, {})
    }
    return stats, errors


def study_constancy(
    out: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    folds: int | None = None,
    base_config: str | os.PathLike[str] | ExperimentConfig | None = None,
    epochs: int | None = None,
    pretrain_epochs: int | None = None,
    overrides: Sequence[str] = (),
    variants: Sequence[Variant | str] | None = None,
    progress: bool = True,
    *,
    pretrain: str | os.PathLike[str] | ExperimentConfig | None = None,
    baselines: bool = True,
    sweep: str | os.PathLike[str] = DEFAULT_SWEEP,
) -> pd.DataFrame:
    """Run the linear-vs-log x supervised-vs-contrastive study and write its table and figures.

    Args:
        out: output folder (see the module docstring); an existing one is resumed.
        data: a colour-constancy folder (any layout of :func:`tinct.constancy.layouts.open_constancy`), scored
            by k-fold cross-validation; ``None`` uses the synthetic dataset (``data.kind: synthetic``,
            generated on first use) and its train / test split.
        folds: K for a folder: ``None`` takes ``folds.csv`` when present, else 3.
        base_config: the illuminant config every variant starts from: a YAML path or a config object
            (default: the sweep file's base, ``configs/constancy/thumbnails_cnn.yaml``, with its ``set``,
            which holds the study's epoch budget).
        epochs: ``trainer.max_epochs`` of the illuminant runs, supervised and fine-tuning alike (default:
            the base config's).
        pretrain_epochs: epochs of the contrastive pretraining (default: the pretraining config's own
            ``trainer.max_epochs``: the sweep file's stage, ``pretrain``, or the base's when neither has
            one).
        overrides: ``key.path=value`` changes to the base config (as ``--set``), applied after the sweep
            file's ``set`` and before the variants are made (``model.backbone=googlenet``: the GPU recipe;
            the pretraining stage shares the backbone and trainer settings).
        variants: a subset of :data:`VARIANTS` (objects, names or slugs); default: the sweep file's.
        progress: print one line per fold and per variant.
        pretrain: the ``illuminant_embedding`` config (path or object) of the contrastive variants; default:
            the sweep file's pretraining stage (else :func:`pretrain_config` of the base). Its
            ``model.input_space`` is set per variant.
        baselines: also score the baselines (:func:`tinct.constancy.baselines.run_baselines`: the classical
            methods, each tuned on the training folds, and FFCC, trained on them) on the same folds or
            split.
        sweep: the sweep file of the study's grid (default ``configs/constancy/study.sweep.yaml``: input
            space x supervised / contrastive + frozen / contrastive + full, and the pretraining stage).

    Returns:
        The table, columns :data:`STUDY_COLUMNS` (also ``OUT/study.csv`` and ``OUT/study.md``): the
        variants in order, then the classical methods and FFCC; errors in degrees, 2 decimals; ``Seed
        mean`` / ``Seed median`` are :data:`SEED_REFERENCE` (NaN where the seed gives no figure).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # The base recipe is a folder template (data.root unset): name the data before it is validated.
    where = [f"data.root={Path(data).resolve()}"] if data is not None else ["data.kind=synthetic"]
    from tinct.engine.sweep_spec import load_sweep

    # --set joins the sweep file's set after its own keys, so the user's value wins (the budget included),
    # and every variant of the grid is validated with it before anything trains.
    spec = load_sweep(find_shipped(sweep), parse_overrides([*where, *overrides]))
    if base_config is None:
        base = config_from_dict(spec.base_raw(), source=f"{spec.resolve(spec.base)} (base of {spec.source})")
    else:
        base = load_base_config(base_config, [*where, *overrides], DEFAULT_BASE_CONFIG)
    if base.task != "illuminant":
        raise ConfigError(f"the constancy study needs an illuminant config, got task {base.task!r}")
    if epochs is not None:
        base = with_updates(base, {"trainer.max_epochs": epochs})
    if data is None:
        base = with_updates(base, {"data.kind": "synthetic", "data.root": None, "data.fold": None})
    if isinstance(pretrain, ExperimentConfig):
        pre_base = pretrain
    elif pretrain is not None:
        pre_base = load_config(pretrain, where)
    elif spec.pretrain is not None:
        pre_base = spec.pretrain_config(base)
    else:
        pre_base = pretrain_config(base)
    pre_epochs = pretrain_epochs if pretrain_epochs is not None else pre_base.trainer.max_epochs
    pre_base = with_updates(
        pre_base, {"trainer.max_epochs": pre_epochs, "data": base.data.model_dump(mode="json")}
    )
    if pre_base.task != "illuminant_embedding":
        raise ConfigError(
            f"the pretraining config must be an illuminant_embedding config, got {pre_base.task!r}"
        )
    # Checked here, not when the first contrastive variant loads its backbone after hours of training.
    for key in ("backbone", "width", "depth", "weights"):
        if getattr(pre_base.model, key) != getattr(base.model, key):
            raise ConfigError(
                f"pretraining model.{key} is {getattr(pre_base.model, key)!r} but the illuminant config has "
                f"{getattr(base.model, key)!r}: the pretrained backbone would not load"
            )

    k_folds = None
    if data is not None:
        from tinct.constancy.layouts import fold_ids, open_constancy

        d = base.data
        source = open_constancy(data, d.layout, d.black_level, d.saturation)
        k_folds = int(fold_ids(source, folds, d.split_seed).max()) + 1

    results: dict[str, dict[str, Any]] = {}
    chosen = _variants(variants, sweep_variants(spec))
    for v in chosen:
        vdir = out / v.slug
        done = vdir / "cv_metrics.json"
        if done.is_file():
            results[v.name] = json.loads(done.read_text())
            if progress:
                print(f"{v.name}: done before (mean {results[v.name]['mean']:.2f} degrees)", flush=True)
            continue
        cfg = with_updates(
            base,
            {
                "name": f"{base.name}-{v.slug}",
                "model.input_space": v.input_space,
                "model.init": None,
                "model.freeze": False,
            },
        )
        pre = None
        if v.pretrained:
            pre = with_updates(
                pre_base, {"name": f"{pre_base.name}-{v.input_space}", "model.input_space": v.input_space}
            )
        updates = {"model.freeze": v.training == "frozen"}
        pre_root = out / "pretrain" / v.input_space
        if data is None:
            results[v.name] = holdout(
                cfg, vdir, pre, progress, pretrain_dir=pre_root / "holdout", updates=updates, figures=False
            )
        else:
            results[v.name] = crossval(
                cfg, data, k_folds, vdir, pre, progress, pretrain_out=pre_root, updates=updates, figures=False
            )
        if progress:
            r = results[v.name]
            print(f"{v.name}: mean {r['mean']:.2f}, median {r['median']:.2f} degrees -> {vdir}", flush=True)

    classical: dict[str, Any] = {}
    classical_errors: dict[str, np.ndarray] = {}
    if baselines:
        if data is None:
            from tinct.constancy.task import ensure_synthetic

            root = ensure_synthetic(base.data, base.output_dir)
        else:
            root = str(data)
        classical, classical_errors = _run_baselines(root, k_folds, base.data, out / "baselines", progress)

    nan = (float("nan"), float("nan"))
    rows = [
        {
            "Type": v.name,
            "Epochs": _epochs_label(results[v.name], v.pretrained),
            **{c.capitalize(): results[v.name][c] for c in _STATS},
            **dict(zip(("Seed mean", "Seed median"), SEED_REFERENCE.get(v.name, nan), strict=True)),
        }
        for v in chosen
    ]
    rows += [
        {"Type": _classical_name(m), "Epochs": "-", **{c.capitalize(): s[c] for c in _STATS}}
        for m, s in classical.items()
    ]
    table = pd.DataFrame(rows, columns=list(STUDY_COLUMNS)).astype({"Seed mean": float, "Seed median": float})
    table = table.round(2)
    atomic_write_text(out / "study.csv", table.to_csv(index=False, float_format="%.2f"))
    if data is not None:
        protocol = f"{k_folds}-fold cross-validation on {data} (last checkpoint of each fold, errors pooled over folds)"
    else:
        protocol = "synthetic data, scored on its test split (last checkpoint)"
    atomic_write_text(out / "study.md", _study_markdown(table, protocol, base.data.size))
    atomic_write_json(
        out / "study.json",
        {
            "protocol": protocol,
            "data": str(data) if data is not None else None,
            "folds": k_folds,
            "variants": results,
            "classical": classical,
            "base_config": base.model_dump(mode="json"),
            "pretrain_config": pre_base.model_dump(mode="json"),
        },
    )
    curves = "validation split" if base.data.val_fraction > 0 or not k_folds else "held-out fold"
    _figures(out, chosen, classical, classical_errors, k_folds, curves)
    return table


def _study_markdown(table: pd.DataFrame, protocol: str, size: int) -> str:
    note = (
        "Seed mean / Seed median: the seed study's own figures (SimpleCube++, Canon 550D, full-resolution "
        f"images, its best models), for reference only: tinct's rows are {size} x {size} thumbnails (the "
        "recipe's data: Cube+, the same sensor), so the two are not a like-for-like comparison. The seed gives "
        "1.99 / 1.59 for its best contrastive model without saying whether it was frozen or fine-tuned, so "
        "both log contrastive rows carry it; `-`: no figure. FFCC (Barron & Tsai 2017) is trained on the "
        "same training folds; the classical methods are tuned on them."
    )
    return (
        "# Constancy study: linear vs log input, supervised vs contrastive (seed's figures for reference)\n\n"
        f"{protocol}; angular error in degrees. Epochs: contrastive pretraining + illuminant training.\n\n"
        f"{markdown_table(table)}\n{note}\n"
    )


def best_classical(details_file: Path, classical: Mapping[str, Any]) -> str | None:
    """The classical method of ``classical`` with the lowest training error: the mean angular error of its
    tuned grid point on the training images of each fold (or split), pooled over folds; None when
    ``baselines_details.json`` records no training error. The held-out errors choose nothing, and learned
    baselines (FFCC) are not candidates: they have no tuned grid point, and the figure draws them anyway."""
    from tinct.constancy.classical import CLASSICAL_METHODS

    if not details_file.is_file():
        return None
    methods = json.loads(details_file.read_text()).get("methods", {})
    train: dict[str, float] = {}
    for m in classical:
        if m not in CLASSICAL_METHODS:
            continue
        folds = methods.get(m, {}).get("folds") or []
        n = sum(f.get("n_train", 0) for f in folds)
        if n > 0 and all("train_mean" in f for f in folds):
            train[m] = sum(f["train_mean"] * f["n_train"] for f in folds) / n
    return min(train, key=lambda m: train[m]) if train else None


def _figures(
    out: Path,
    chosen: Sequence[Variant],
    classical: Mapping[str, Any],
    classical_errors: Mapping[str, np.ndarray],
    k_folds: int | None,
    val_label: str = "held-out fold",
) -> None:
    from tinct.constancy.baselines import LEARNED_METHODS
    from tinct.constancy.plots import plot_error_cdf, plot_fold_curves

    errors = {v.name: read_errors(out / v.slug / "cv_errors.csv")["error"].to_numpy() for v in chosen}
    colours = {"supervised": "C0", "frozen": "C1", "full": "C2"}
    styles = {
        v.name: {"color": colours[v.training], "ls": "-" if v.input_space == "linear" else "--"}
        for v in chosen
    }
    for m in LEARNED_METHODS:
        if m in classical and m in classical_errors:
            errors[_classical_name(m)] = classical_errors[m]
            styles[_classical_name(m)] = {"color": "C3", "ls": "-."}
    best = best_classical(out / "baselines" / "baselines_details.json", classical) if classical else None
    if best is not None and best in classical_errors:
        errors[f"{_classical_name(best)} (best classical on training data)"] = classical_errors[best]
    styles.update({name: {"color": "k", "ls": ":"} for name in errors if name not in styles})
    plot_error_cdf(
        errors, out / "figures" / "error_cdf.png", title="angular error of all variants", styles=styles
    )
    keys = [f"fold{k}" for k in range(k_folds)] if k_folds else ["holdout"]
    plot_fold_curves(
        {v.name: [out / v.slug / key / "metrics.csv" for key in keys] for v in chosen},
        out / "figures" / "curves.png",
        title="mean angular error by epoch",
        val_label=val_label,
    )
