"""``tinct study transfer``: is what a colorization network learns useful for recognising things?

The studies of Zhang, Isola & Efros (2016, section 3.2) and of the follow-up that classified fruit grouped by
colour with InstColorization's SIGGRAPH17 network, at CPU scale, on a folder of photos in class folders (by
default ``../shared/data/flowers``, 5 classes in 4 colour groups). Every figure is on the held-out test
photos; every choice (checkpoint epoch, probe regularisation, best probe block) is made on validation.

1. **Transfer** (the points of ``configs/transfer/study.sweep.yaml``, same data, epochs and optimiser):
   the colorization encoder fine-tuned (``finetuned``), frozen with only the head trained (``frozen``), the
   same network trained from scratch on lightness (``scratch``) and on colour (``scratch_color``, the
   ceiling). Test accuracy with a bootstrap 95 % interval over photos, macro F1, the share of confusions that
   stay inside a colour group, training throughput; the margin fine-tuned - scratch (paired bootstrap).
2. **Linear probes** (:func:`tinct.colorization.transfer.probe_report.probe`): one logistic regression per encoder
   block on pooled frozen features, for the colorization encoder, random encoders (several seeds) and the
   supervised ``scratch`` network's encoder; the best block of each (chosen on validation) and the margin
   colorization - random with its bootstrap interval.
3. **Colour-histogram baseline** (:func:`tinct.colorization.transfer.histogram.histogram_baseline`): logistic
   regression on CIELAB histograms, for where the errors fall.
4. **Semantic interpretability** (:func:`tinct.colorization.transfer.semantic.semantic_interpretability`):
   the colour classifier (``scratch_color``) on the original, grayscale and recolorized test photos (the
   shipped ECCV16 colorizer and the encoder's own colorizer, ``model.init``).

Output (rerun with the same folder to resume: finished runs, probe features and scores are kept)::

    OUT/<variant>/                       run folder of each transfer variant
    OUT/probe.csv, probe.md, probe.json  linear probes; OUT/cache/ their features
    OUT/histogram_baseline.json
    OUT/interpretability.csv, .md, .json
    OUT/study.csv, study.md, study.json  the tables; OUT/timings.json the time each step took when it
                                         was first done (a resumed step is not timed again)
    OUT/figures/                         probe accuracy by block, learning curves, confusion matrices,
                                         interpretability (embedded by ``tinct report``)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tinct.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from tinct.core.config import ExperimentConfig
from tinct.core.exceptions import ConfigError
from tinct.engine.experiments import ensure_trained, with_updates
from tinct.engine.run_dir import RunDir
from tinct.engine.statistics import paired_bootstrap_ci

__all__ = ["DEFAULT_SWEEP", "STUDY_COLUMNS", "study_transfer"]

DEFAULT_SWEEP = "configs/transfer/study.sweep.yaml"
_NAMES = {
    "finetuned": "colorization encoder, fine-tuned",
    "frozen": "colorization encoder, frozen (head only)",
    "scratch": "same network from scratch (lightness)",
    "scratch_color": "same network from scratch (colour, ceiling)",
}
STUDY_COLUMNS = (
    "Model",
    "Input",
    "Epochs",
    "Val accuracy",
    "Test accuracy",
    "CI low",
    "CI high",
    "Macro F1",
    "Within-group confusions",
    "Photos/s",
)


def study_transfer(
    out: str | os.PathLike[str],
    base_config: str | os.PathLike[str] | ExperimentConfig | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    init: str | os.PathLike[str] | None = None,
    epochs: int | None = None,
    overrides: Sequence[str] = (),
    variants: Sequence[str] | None = None,
    random_seeds: int = 3,
    seeds: int = 3,
    features: int = 4096,
    progress: bool = True,
    sweep: str | os.PathLike[str] = DEFAULT_SWEEP,
    seed_bootstrap: int = 0,
) -> pd.DataFrame:
    """Train (or resume) the transfer variants, run the probes, the baseline and the interpretability test.

    Args:
        out: output folder; an existing one is resumed.
        base_config: classification YAML or config (default: the sweep file's base,
            ``configs/transfer/flowers.yaml``).
        data: a folder of class folders replacing ``data.root``.
        init: the colorization run or exported colorizer whose encoder is studied (``model.init``).
        epochs: ``trainer.max_epochs`` of every variant (default: the base config's).
        overrides: ``key.path=value`` changes to the base config (as ``--set``).
        variants: labels of the sweep's variants to train (default: all).
        random_seeds: random encoders probed (the spread of the random baseline).
        seeds: training seeds of ``finetuned`` and ``scratch``, the pair the transfer claim compares (seed
            0 is the variants' run; the others are ``OUT/<variant>-seed<k>``): the margin over seeds.
        features: features per block of the linear probes (each block's map is average-pooled to about as
            many values).
        progress: print progress lines and bars.
        sweep: the sweep file of the variants.
        seed_bootstrap: seed of the bootstrap intervals.

    Returns:
        The transfer table (columns :data:`STUDY_COLUMNS`, accuracies in %), one row per variant and one for
        the colour-histogram baseline.

    Raises:
        ConfigError: the base config is not a classification config, has no ``model.init``, or an unknown
            variant is asked for.
    """
    from tinct.colorization.study import study_base, study_variants
    from tinct.colorization.transfer.data import ClassificationDataModule

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = [f"data.root={Path(data).resolve()}"] if data is not None else []
    if init is not None:
        extra.append(f"model.init={Path(init).resolve()}")
    spec, base = study_base(sweep, base_config, [*extra, *overrides], "classification", epochs)
    source = base.model.init  # type: ignore[attr-defined]
    if not source:
        raise ConfigError(
            "the transfer study needs the colorization encoder to study: set model.init or --init"
        )
    every = study_variants(spec, _NAMES)
    by_slug = {v.slug: v for v in every}
    unknown = [v for v in variants or () if v not in by_slug]
    if unknown:
        raise ConfigError(f"unknown transfer variant(s) {unknown}; valid: {', '.join(by_slug)}")
    chosen = [by_slug[v] for v in variants] if variants else every
    data_module = ClassificationDataModule(base)
    n_train = len(data_module.resolve_splits()["train"])
    chance = None
    if base.data.groups:  # type: ignore[attr-defined]
        from tinct.colorization.transfer.data import group_order
        from tinct.colorization.transfer.metrics import group_confusion_chance

        chance = group_confusion_chance(group_order(data_module.classes, base.data.groups)[1])  # type: ignore[attr-defined]
    timings = _Timings(out / "timings.json")

    results: dict[str, Any] = {}
    for v in chosen:
        cfg = with_updates(base, {"name": f"{base.name}-{v.slug}", **v.overrides})
        run_dir = out / v.slug
        with timings.step(f"train {v.slug}"):
            state = ensure_trained(cfg, run_dir, quiet=not progress)
        if state == "done" and progress:
            print(f"{v.slug}: trained before", flush=True)
        results[v.slug] = _variant_result(v.name, cfg, run_dir, n_train)

    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    seed_runs: dict[str, list[dict[str, Any]]] = {k: [r] for k, r in results.items() if k in _SEEDED}
    for k in range(1, seeds):
        for slug in seed_runs:
            v = by_slug[slug]
            cfg = with_updates(
                base, {"name": f"{base.name}-{slug}-seed{k}", "seed": base.seed + k, **v.overrides}
            )
            run_dir = out / f"{slug}-seed{k}"
            with timings.step(f"train {slug} seed {k}"):
                if ensure_trained(cfg, run_dir, quiet=not progress) == "done" and progress:
                    print(f"{slug}, seed {k}: trained before", flush=True)
            seed_runs[slug].append(_variant_result(v.name, cfg, run_dir, n_train))

    if progress:
        print("linear probes of every block", flush=True)
    from tinct.colorization.transfer.probe_report import probe

    supervised = out / "scratch" if "scratch" in results else None
    with timings.step("probes"):
        probe_table = probe(
            source, base.data, out, supervised=supervised, random_seeds=random_seeds, features=features,
            progress=progress,
        )  # fmt: skip
    probe_info = json.loads((out / "probe.json").read_text())

    from tinct.colorization.transfer.histogram import histogram_baseline

    with timings.step("histogram baseline"):
        histogram = histogram_baseline(base.data, out=out, progress=progress)  # type: ignore[arg-type]

    interpretability = None
    if "scratch_color" in results:
        from tinct.colorization.pretrained import ECCV16_COLORIZER
        from tinct.colorization.transfer.semantic import semantic_interpretability

        if progress:
            print("semantic interpretability: the colour classifier on recolorized photos", flush=True)
        colorizers = {"ECCV16 (shipped)": str(ECCV16_COLORIZER.path()), "studied colorizer": str(source)}
        with timings.step("interpretability"):
            interpretability = semantic_interpretability(
                out / "scratch_color", colorizers, out=out, progress=progress, seed=seed_bootstrap
            )

    margins = _margins(results, seed_bootstrap)
    over_seeds = _seed_margin(seed_runs, seed_bootstrap) if seeds > 1 else None
    table = _table(results, histogram)
    atomic_write_text(out / "study.csv", table.to_csv(index=False, float_format="%.4f"))
    record = {
        "base_config": base.model_dump(mode="json"),
        "encoder": str(source),
        "variants": {k: {kk: vv for kk, vv in r.items() if kk != "frame"} for k, r in results.items()},
        "margins": margins,
        "within_group_confusion_chance": chance,
        "seeds": over_seeds,
        "probe": {"table": probe_table.to_dict(orient="records"), "margin": probe_info.get("margin")},
        "histogram_baseline": histogram,
        "interpretability": None if interpretability is None else interpretability.to_dict(orient="records"),
        "timings_s": timings.data,
    }
    atomic_write_json(out / "study.json", record)
    _figures(out, results)
    atomic_write_text(
        out / "study.md",
        _markdown(out, table, results, margins, probe_info, timings.data, chance, over_seeds),
    )
    return table


class _Timings:
    """Seconds of each step, kept in a JSON file so a resumed study still reports what the first run took."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}

    def step(self, name: str) -> Any:
        """Time the ``with`` block as step ``name`` unless an earlier run recorded it (a resumed step would
        time only what was left, or a cache read)."""
        import contextlib

        @contextlib.contextmanager
        def timed() -> Any:
            t0 = time.perf_counter()
            yield
            if name not in self.data:
                self.data[name] = round(time.perf_counter() - t0, 1)
                atomic_write_json(self.path, self.data)

        return timed()


def _variant_result(name: str, cfg: ExperimentConfig, run_dir: Path, n_train: int) -> dict[str, Any]:
    trained = RunDir(run_dir).metrics()
    report = json.loads((run_dir / "classification_metrics.json").read_text())
    frame = pd.read_csv(run_dir / "classification_predictions.csv")
    epochs = int(trained.get("epochs", 0))
    seconds = float(trained.get("train_time_s", float("nan")))
    return {
        "name": name,
        "input": cfg.data.input,  # type: ignore[attr-defined]
        "init": cfg.model.init,  # type: ignore[attr-defined]
        "frozen_blocks": cfg.model.freeze_until,  # type: ignore[attr-defined]
        "epochs": epochs,
        "best_epoch": trained.get("best_epoch"),
        "val_accuracy": trained.get("val/accuracy"),
        "test": report,
        "train_time_s": seconds,
        # photos per second over the whole fit, validation epochs and checkpointing included
        "throughput": n_train * epochs / seconds if seconds > 0 else float("nan"),
        "frame": frame,
    }


def _margins(results: dict[str, Any], seed: int) -> dict[str, Any]:
    """Test accuracy intervals of each variant and the paired margins over ``scratch`` (points of %)."""
    margins: dict[str, Any] = {}
    for r in results.values():
        correct = r["frame"]["correct"].to_numpy(dtype=float)
        r["ci95"] = [100.0 * x for x in paired_bootstrap_ci(correct, seed=seed)]
    if "scratch" not in results:
        return margins
    base = results["scratch"]["frame"].set_index("image")["correct"]
    for slug in ("finetuned", "frozen"):
        if slug not in results:
            continue
        mine = results[slug]["frame"].set_index("image")["correct"]
        common = base.index.intersection(mine.index)
        a, b = mine[common].to_numpy(dtype=float), base[common].to_numpy(dtype=float)
        margins[f"{slug}_minus_scratch"] = {
            "points": 100.0 * float(a.mean() - b.mean()),
            "ci95": [100.0 * x for x in paired_bootstrap_ci(a, b, seed=seed)],
            "n_photos": len(common),
        }
    return margins


#: The variants trained with several seeds (``seeds``): the pair the transfer claim compares.
_SEEDED = ("finetuned", "scratch")


def _seed_margin(seed_runs: dict[str, list[dict[str, Any]]], seed: int) -> dict[str, Any]:
    """Test accuracy of each seed of ``finetuned`` and ``scratch`` and their margin (points of %): the mean
    over seeds, per seed, and a paired bootstrap over photos of each photo's correctness averaged over seeds."""
    out: dict[str, Any] = {}
    correct: dict[str, np.ndarray] = {}
    for slug, runs in seed_runs.items():
        frames = [r["frame"].set_index("image")["correct"] for r in runs]
        index = frames[0].index
        correct[slug] = np.stack([f[index].to_numpy(dtype=float) for f in frames], 1)
        accs = [100.0 * float(c.mean()) for c in correct[slug].T]
        out[slug] = {"accuracies": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs, ddof=1))}
    if set(_SEEDED) <= set(correct) and correct["finetuned"].shape == correct["scratch"].shape:
        a, b = correct["finetuned"].mean(1), correct["scratch"].mean(1)
        out["margin"] = {
            "points": 100.0 * float(a.mean() - b.mean()),
            "ci95": [100.0 * x for x in paired_bootstrap_ci(a, b, seed=seed)],
            "per_seed": [
                x - y
                for x, y in zip(out["finetuned"]["accuracies"], out["scratch"]["accuracies"], strict=True)
            ],
            "seeds": correct["finetuned"].shape[1],
        }
    return out


def _table(results: dict[str, Any], histogram: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for r in results.values():
        t = r["test"]
        rows.append(
            [
                r["name"], "colour" if r["input"] == "color" else "lightness", r["epochs"],
                100.0 * float(r["val_accuracy"] or np.nan), 100.0 * t["accuracy"], *r["ci95"],
                100.0 * t["macro_f1"], _pct(t.get("within_group_confusion")), r["throughput"],
            ]
        )  # fmt: skip
    rows.append(
        [
            "CIELAB histogram + logistic regression", "colour", 0, 100.0 * histogram["val_accuracy"],
            100.0 * histogram["accuracy"], np.nan, np.nan, 100.0 * histogram["macro_f1"],
            _pct(histogram.get("within_group_confusion")), np.nan,
        ]
    )  # fmt: skip
    return pd.DataFrame(rows, columns=list(STUDY_COLUMNS))


def _pct(value: Any) -> float:
    return 100.0 * float(value) if value is not None else float("nan")


def _cell(value: Any, digits: int = 1) -> str:
    return "-" if value is None or not np.isfinite(float(value)) else f"{float(value):.{digits}f}"


def _markdown(
    out: Path,
    table: pd.DataFrame,
    results: dict[str, Any],
    margins: dict[str, Any],
    probe_info: dict[str, Any],
    timings: dict[str, float],
    chance: float | None = None,
    over_seeds: dict[str, Any] | None = None,
) -> str:
    n_test = next(iter(results.values()))["test"]["n"] if results else 0
    lines = [
        f"Transfer from colorization to classification, {n_test} held-out test photos. Accuracies in %; "
        "the interval is a bootstrap 95 % interval over photos; checkpoints chosen by validation accuracy.",
        "",
        "| " + " | ".join(table.columns) + " |",
        "|---|---|" + "---:|" * (len(table.columns) - 2),
    ]
    for _, row in table.iterrows():
        cells = [str(row["Model"]), str(row["Input"]), str(int(row["Epochs"])) if row["Epochs"] else "-"]
        cells += [_cell(row[c]) for c in STUDY_COLUMNS[3:-1]] + [_cell(row["Photos/s"], 0)]
        lines.append("| " + " | ".join(cells) + " |")
    for key, label in (("finetuned_minus_scratch", "Fine-tuned"), ("frozen_minus_scratch", "Frozen")):
        m = margins.get(key)
        if m:
            verdict = (
                "beats"
                if m["ci95"][0] > 0
                else "is worse than"
                if m["ci95"][1] < 0
                else "is not clearly better than"
            )
            lines += [
                "",
                f"{label} minus scratch (same network, data and budget): {m['points']:+.1f} points of test "
                f"accuracy, paired bootstrap 95 % [{m['ci95'][0]:+.1f}, {m['ci95'][1]:+.1f}] over "
                f"{m['n_photos']} photos: the colorization encoder, {label.lower()}, {verdict} training from scratch.",
            ]
    if over_seeds and "margin" in over_seeds:
        m = over_seeds["margin"]
        accs = {k: ", ".join(f"{a:.1f}" for a in over_seeds[k]["accuracies"]) for k in _SEEDED}
        lines += [
            "",
            f"Over {m['seeds']} training seeds: fine-tuned {over_seeds['finetuned']['mean']:.1f} % "
            f"({accs['finetuned']}), scratch {over_seeds['scratch']['mean']:.1f} % ({accs['scratch']}); "
            f"margin {m['points']:+.1f} points, paired bootstrap 95 % [{m['ci95'][0]:+.1f}, {m['ci95'][1]:+.1f}] "
            f"over photos of the correctness averaged over seeds; per seed "
            + ", ".join(f"{d:+.1f}" for d in m["per_seed"])
            + ".",
        ]
    if chance is not None:
        lines += [
            "",
            f"Within-group confusions: the share of a model's confusions between classes of one colour group; "
            f"{100 * chance:.0f} % if its confusions fell evenly on the other classes.",
        ]
    probe_md = out / "probe.md"
    if probe_md.is_file():
        lines += ["", "Linear probes (frozen encoder, one logistic regression per block):", ""]
        lines += [_without_headings(probe_md.read_text())]
    interp_md = out / "interpretability.md"
    if interp_md.is_file():
        lines += ["", "Semantic interpretability (the colour classifier on recolorized test photos):", ""]
        lines += [_without_headings(interp_md.read_text())]
    if timings:
        total = sum(timings.values())
        parts = ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items())
        lines += ["", f"Time on this machine: {total / 60:.1f} min in all ({parts})."]
    return "\n".join(lines) + "\n"


def _without_headings(text: str) -> str:
    """Markdown of a part of the study without its own headings (the study's page has them)."""
    return "\n".join(line for line in text.strip().splitlines() if not line.startswith("#")).strip()


def _figures(out: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.engine.plots import save_figure

    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (slug, r) in enumerate(results.items()):
        csv = out / slug / "metrics.csv"
        if not csv.is_file():
            continue
        m = pd.read_csv(csv)
        for ax, key, style in ((axes[0], "val/accuracy", "-"), (axes[1], "train/loss", "-")):
            if key in m:
                part = m.dropna(subset=[key])
                ax.plot(part["epoch"] + 1, part[key] * (100 if "accuracy" in key else 1), style, color=f"C{i}",
                        label=r["name"])  # fmt: skip
        if "val/loss" in m:
            part = m.dropna(subset=["val/loss"])
            axes[1].plot(part["epoch"] + 1, part["val/loss"], "--", color=f"C{i}")
    axes[0].set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy by epoch")
    axes[1].set(xlabel="epoch", ylabel="cross entropy", title="training (solid) and validation (dashed) loss")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, figures / "transfer_curves.png")
    for slug in results:
        src = out / slug / "figures" / "confusion_matrix.png"
        if src.is_file():
            atomic_write_bytes(figures / f"confusion_{slug}.png", src.read_bytes())
