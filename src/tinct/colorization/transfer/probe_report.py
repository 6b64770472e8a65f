"""``tinct probe RUN_OR_WEIGHTS --data DIR``: the linear probes of :mod:`tinct.colorization.transfer.probe` for
a pretrained, random and (optionally) supervised encoder, written as a table, a figure and a margin.

Output (``out``)::

    probe.csv, probe.json, probe.md      the table (one row per encoder and block), the margin, the settings
    figures/probe_accuracy.png           test accuracy by block, one line per encoder
    cache/                               features and fitted probes (a rerun resumes)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tinct.colorization.transfer.data import ClassificationDataConfig
from tinct.colorization.transfer.encoders import ColorizationEncoder
from tinct.colorization.transfer.probe import (
    DEFAULT_CS,
    _load_source,
    _run_task,
    best_probe_margin,
    linear_probes,
    random_encoder,
)
from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.exceptions import ConfigError, RunDirError

__all__ = ["plot_probes", "probe"]


def plot_probes(table: pd.DataFrame, out: str | os.PathLike[str], chance: float | None = None) -> Path:
    """Test accuracy by block, one line per encoder (error bars: standard deviation over seeds), validation
    accuracy dashed, the validation-chosen block circled; ``chance``: a dotted line at that accuracy.

    Returns:
        The PNG written (:func:`~tinct.engine.plots.save_figure`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinct.engine.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, rows) in enumerate(table.groupby("encoder", sort=False)):
        color = f"C{i}"
        seeds = int(rows["seeds"].max())
        label = f"{name} ({seeds} seeds)" if seeds > 1 else str(name)
        std = rows["test_accuracy_std"] * 100 if seeds > 1 else None
        ax.errorbar(rows["block"], rows["test_accuracy"] * 100, yerr=std, color=color, marker="o", capsize=3,
                    label=label)  # fmt: skip
        ax.plot(rows["block"], rows["val_accuracy"] * 100, color=color, linestyle="--", alpha=0.5)
        best = rows[rows["best"]]
        ax.scatter(best["block"], best["test_accuracy"] * 100, s=160, facecolors="none", edgecolors=color)
    if chance is not None:
        ax.axhline(chance * 100, color="0.5", linestyle=":", label="chance")
    ax.set_xlabel("encoder block")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Linear probes (solid: test, dashed: validation, circled: chosen by validation)", fontsize=9)
    ax.set_xticks(sorted(table["block"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def _markdown(table: pd.DataFrame, margin: dict[str, Any] | None, header: list[str]) -> str:
    names = list(dict.fromkeys(table["encoder"]))
    cells = {(r.encoder, r.block): r for r in table.itertuples()}
    titles = []
    for name in names:
        seeds = int(table.loc[table["encoder"] == name, "seeds"].max())
        titles.append(f"{name} ({seeds} seeds)" if seeds > 1 else name)
    lines = [*header, "", "| block | " + " | ".join(titles) + " |", "|---:|" + "---:|" * len(names)]
    for block in sorted(table["block"].unique()):
        row = []
        for name in names:
            r = cells.get((name, block))
            if r is None:
                row.append("–")
                continue
            text = f"{100 * r.test_accuracy:.1f}"
            if r.seeds > 1:
                text += f" ± {100 * r.test_accuracy_std:.1f}"
            row.append(f"**{text}**" if r.best else text)
        lines.append(f"| {block} | " + " | ".join(row) + " |")
    lines += ["", "Test accuracy (%); bold: each encoder's block of the highest validation accuracy (the test "
              "photos choose nothing). ± : standard deviation over seeds."]  # fmt: skip
    if margin is not None:
        lo, hi = margin["ci95"]
        if lo > 0:
            verdict = (
                f"the best {margin['a']} block beats the best {margin['b']} block (the interval excludes 0)"
            )
        elif hi < 0:
            verdict = (
                f"the best {margin['b']} block beats the best {margin['a']} block (the interval excludes 0)"
            )
        else:
            verdict = (
                f"the best {margin['a']} block does not clearly beat the best {margin['b']} block (the interval "
                "includes 0)"
            )
        blocks = ", ".join(str(b) for b in margin["b_blocks"])
        lines += ["", (
            f"Best {margin['a']} block ({', '.join(str(b) for b in margin['a_blocks'])}) vs best {margin['b']} "
            f"block per seed ({blocks}), each chosen by validation accuracy: test accuracy "
            f"{100 * margin['a_accuracy']:.1f}% vs {100 * margin['b_accuracy']:.1f}%, margin "
            f"{100 * margin['margin']:+.1f} points (95% paired bootstrap interval over the {margin['n_test']} "
            f"test photos [{100 * lo:+.1f}, {100 * hi:+.1f}]; per seed "
            f"{', '.join(f'{100 * m:+.1f}' for m in margin['per_seed'])}): {verdict}."
        )]  # fmt: skip
    return "\n".join(lines) + "\n"


def probe(
    source: str | os.PathLike[str] | None,
    data: str | os.PathLike[str] | ClassificationDataConfig | None,
    out: str | os.PathLike[str],
    *,
    supervised: str | os.PathLike[str] | None = None,
    random_seeds: int = 3,
    features: int = 4096,
    Cs: Sequence[float] = DEFAULT_CS,
    progress: bool = True,
    device: str | None = None,
    **data_overrides: Any,
) -> pd.DataFrame:
    """``tinct probe RUN_OR_WEIGHTS --data DIR``: linear probes of the pretrained, random and (optionally)
    supervised encoders, block by block (see the module docstring).

    Args:
        source: the pretrained encoder's model (:func:`encoder_from_source`).
        data: a folder of one sub-folder of photos per class, a :class:`ClassificationDataConfig`, or None
            when ``source`` is a classification run (its data).
        out: the output folder: ``probe.csv``, ``probe.json`` (table, margin, configuration, sources),
            ``probe.md``, ``figures/probe_accuracy.png``, and ``cache/`` (features and probes, for resuming).
        supervised: a classification run folder whose encoder is probed as ``supervised``.
        random_seeds: random encoders of the pretrained one's architecture, width and blocks (seeds 0, 1,
            ...), BatchNorm calibrated on the training photos; 0: none (and no margin).
        features: about how many features each block gives.
        Cs: inverse regularisation strengths chosen by validation accuracy.
        progress: show progress bars.
        device: where the encoders run (None: CUDA when available).
        **data_overrides: fields of :class:`ClassificationDataConfig` (``resize``, ``eval_size``,
            ``split_file`` ...).

    Returns:
        The table of :func:`linear_probes`.

    Raises:
        RunDirError: ``source`` or ``supervised`` is missing or holds no usable model.
        ConfigError: no data is given for a model that is not a classification run, a bad override, or a
            negative ``random_seeds``.
        DataError: the data folder is missing, has fewer than two classes, or a split has no readable photo.
    """
    if random_seeds < 0:
        raise ConfigError(f"random_seeds must be >= 0, got {random_seeds}")
    encoder, description, run_data = _load_source(source)
    cfg = _data_config(data if data is not None else run_data, data_overrides)
    encoders: dict[str, ColorizationEncoder | list[ColorizationEncoder]] = {"pretrained": encoder}
    descriptions = {"pretrained": description}
    if random_seeds > 0:
        n = len(encoder.blocks)
        encoders["random"] = [
            random_encoder(encoder.arch, encoder.width, n, seed, encoder.color)
            for seed in range(random_seeds)
        ]
        descriptions["random"] = (
            f"random {encoder.arch} width {encoder.width}, {n} blocks, seeds 0-{random_seeds - 1}, BatchNorm "
            "calibrated on the training photos"
        )
    if supervised is not None:
        path = Path(supervised)
        if not (path.is_dir() and _run_task(path) == "classification"):
            raise RunDirError(f"{path}: not a classification run folder (supervised encoder)")
        encoders["supervised"], descriptions["supervised"], _ = _load_source(path)
    out_dir = Path(out)
    table, results = linear_probes(
        encoders, cfg, features=features, Cs=Cs, calibrate=("random",) if random_seeds > 0 else (),
        progress=progress, cache_dir=out_dir / "cache", device=device,
    )  # fmt: skip
    margin = best_probe_margin(results) if random_seeds > 0 else None
    atomic_write_text(out_dir / "probe.csv", table.to_csv(index=False))
    atomic_write_json(out_dir / "probe.json", {
        "source": str(source) if source is not None else None, "encoders": descriptions,
        "data": cfg.model_dump(mode="json"), "features": features, "Cs": list(Cs), "random_seeds": random_seeds,
        "classes": results["classes"], "sizes": results["sizes"], "table": table.to_dict(orient="records"),
        "margin": margin,
    })  # fmt: skip
    sizes = results["sizes"]
    header = [
        "# Linear probes per encoder block",
        "",
        f"Pretrained: {description}. Data: `{cfg.root}`, {len(results['classes'])} classes, {sizes['train']} "
        f"train / {sizes['val']} val / {sizes['test']} test photos (centre crops of {cfg.eval_size} px); "
        f"about {features} features per block; C from {', '.join(str(c) for c in Cs)} by validation accuracy.",
    ]
    atomic_write_text(out_dir / "probe.md", _markdown(table, margin, header))
    plot_probes(table, out_dir / "figures" / "probe_accuracy.png", chance=1 / len(results["classes"]))
    return table


def _data_config(
    data: str | os.PathLike[str] | ClassificationDataConfig | None, overrides: Mapping[str, Any]
) -> ClassificationDataConfig:
    from pydantic import ValidationError

    if data is None:
        raise ConfigError(
            "data: a folder of one sub-folder of photos per class is needed (only a classification run "
            "brings its own)"
        )
    base = data.model_dump() if isinstance(data, ClassificationDataConfig) else {"root": str(data)}
    unknown = sorted(set(overrides) - set(ClassificationDataConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown data setting(s) {', '.join(unknown)} "
            f"(valid: {', '.join(ClassificationDataConfig.model_fields)})"
        )
    try:
        return ClassificationDataConfig(**{**base, **overrides})
    except ValidationError as err:
        raise ConfigError(f"data: {err}") from err
