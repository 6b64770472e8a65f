"""Speed of ``tinct report``'s engine on 100 run directories. Prints a table, writes JSON.

The runs are written by hand into a temporary folder (no training), shaped like real ones: a resolved
``config.yaml``, ``env.json``, a 30-epoch ``metrics.csv`` (train loss, learning rate, validation metrics every
epoch), ``metrics.json``, an empty ``checkpoints/`` and ``figures/``. Of the 100 runs (default):

- 50 illuminant runs, trials of a sweep (``trial.json``; the sweep folder has ``sweep.yaml``,
  ``results.csv`` and ``winners.csv``) over backbone x learning rate,
- 10 illuminant cross-validation folds (two variants x 5 folds, each fold with a 100-image ``errors.csv``),
- 30 colorization runs over head x rebalancing, a study folder (``study.csv``, ``study.md``, a figure),
- 10 unfinished runs (no ``metrics.json``, 12 epochs written).

Timed (median of ``--repeats``, in one process after a warm-up run that pays the imports):
:func:`tinct.engine.summary.summarize_runs` and :func:`tinct.engine.report.write_report` (HTML, figures
embedded). The whole command in a fresh interpreter (imports included) is timed once. Target: report of
100 runs < 10 s on a 2-core CPU.

Example::

    python benchmarks/report.py
    python benchmarks/report.py --runs 1000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from _common import print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
STATS = ("mean", "median", "trimean", "best25", "worst25", "max")
_STAT_FACTORS = (1.0, 0.75, 0.85, 0.3, 2.1, 5.0)


def _config(task: str, name: str, model: dict[str, Any], lr: float, out: Path) -> dict[str, Any]:
    data = {
        "kind": "folder",
        "root": "../shared/data/constancy",
        "size": 64,
        "batch_size": 16,
        "split_seed": 0,
    }
    return {
        "task": task,
        "name": name,
        "seed": 0,
        "output_dir": str(out),
        "data": data,
        "model": model,
        "optim": {"name": "adamw", "lr": lr, "weight_decay": 1e-4, "scheduler": "cosine", "warmup_epochs": 1},
        "trainer": {"max_epochs": 30, "accelerator": "cpu", "check_val_every_n_epoch": 1, "progress": "none"},
    }


def _curves(task: str, final: float, epochs: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    rows = []
    for e in range(epochs):
        decay = np.exp(-3.0 * e / 30)
        row: dict[str, Any] = {"epoch": e, "step": 20 * (e + 1), "train/loss": float(final * (1 + 2 * decay))}
        if task == "illuminant":
            mean = final * (1 + 3 * decay) + rng.normal(0, 0.05)
            row |= {f"val/angular_{s}": mean * f for s, f in zip(STATS, _STAT_FACTORS, strict=True)}
        else:
            row |= {
                "val/auc_raw": 0.9 - 0.1 * decay,
                "val/auc_rebalanced": final - 0.1 * decay + rng.normal(0, 0.005),
                "val/psnr": 22.0 - 2 * decay,
                "val/colorfulness": 30.0 - 10 * decay,
                "val/loss": 3.0 + decay,
            }
        row |= {"lr": 1e-3 * 0.5 * (1 + np.cos(np.pi * e / 30)), "epoch_time_s": 12.3}
        rows.append(row)
    return rows


def _write_run(
    path: Path,
    task: str,
    name: str,
    model: dict[str, Any],
    lr: float,
    final: float,
    rng: np.random.Generator,
    finished: bool = True,
    trial: dict[str, Any] | None = None,
) -> None:
    import pandas as pd

    path.mkdir(parents=True)
    (path / "checkpoints").mkdir()
    (path / "figures").mkdir()
    (path / "config.yaml").write_text(
        yaml.safe_dump(_config(task, name, model, lr, path.parent), sort_keys=False)
    )
    env = {"git_commit": "0" * 40, "versions": {"tinct": "0.1.0"}, "started": "2026-11-23T01:00:00"}
    (path / "env.json").write_text(json.dumps(env))
    curves = _curves(task, final, 30 if finished else 12, rng)
    pd.DataFrame(curves).to_csv(path / "metrics.csv", index=False)
    if trial is not None:
        (path / "trial.json").write_text(json.dumps(trial))
    if not finished:
        return
    last = {k: v for k, v in curves[-1].items() if k.startswith("val/")}
    test = {"test/" + k[4:]: v * 1.05 for k, v in last.items()}
    metrics = {**last, **test, "best_epoch": 29, "epochs": 30, "train_time_s": 369.0}
    (path / "metrics.json").write_text(
        json.dumps(metrics | {"run_dir": str(path), "best_checkpoint": "best.ckpt"})
    )


def make_runs(root: Path, n: int = 100, seed: int = 0) -> None:
    """Write ``n`` run directories (half sweep trials, a tenth folds, 3/10 colorization, a tenth unfinished)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_sweep, n_folds, n_color = n // 2, n // 10, 3 * n // 10
    n_open = n - n_sweep - n_folds - n_color
    backbones, lrs = ("small_cnn", "mobilenet_v2", "resnet18", "squeezenet"), (3e-3, 1e-3, 3e-4)
    sweep = root / "sweep-backbone-lr"
    sweep.mkdir(parents=True)
    spec = {"name": "backbone-lr", "metric": "val/angular_mean", "direction": "minimize"}
    (sweep / "sweep.yaml").write_text(
        yaml.safe_dump({**spec, "axes": {"backbone": list(backbones), "lr": list(lrs)}})
    )
    results = []
    for k in range(n_sweep):
        bb, lr = backbones[k % 4], lrs[k % 3]
        final = 2.0 + 0.3 * (k % 4) + 0.2 * (k % 3) + rng.normal(0, 0.1)
        run = sweep / "runs" / f"t{k:03d}-{bb}-{lr:g}"
        trial = {
            "sweep": "backbone-lr",
            "number": k,
            "params": {"backbone": bb, "lr": lr},
            "state": "COMPLETE",
        }
        _write_run(run, "illuminant", "constancy", {"backbone": bb, "width": 16}, lr, final, rng, trial=trial)
        results.append([k, "COMPLETE", False, bb, lr, final, 30, 370.0, str(run), None])
    results.append(
        [n_sweep, "FAIL", False, "resnet18", 1e-1, None, None, 3.0, "", "RuntimeError: loss is nan"]
    )
    # the columns of tinct.engine.sweep.sweep_results
    cols = [
        "number",
        "state",
        "optional",
        "backbone",
        "lr",
        "val/angular_mean",
        "epochs",
        "time_s",
        "run_dir",
    ]
    table = pd.DataFrame(results, columns=[*cols, "error"])
    table.to_csv(sweep / "results.csv", index=False)
    winners = table.dropna(subset=["val/angular_mean"]).nsmallest(3, "val/angular_mean")
    winners.insert(0, "rank", range(1, len(winners) + 1))
    winners["test/angular_mean"] = winners["val/angular_mean"] * 1.05
    winners[["rank", "number", "run_dir", "val/angular_mean", "test/angular_mean"]].to_csv(
        sweep / "winners.csv", index=False
    )
    for k in range(n_folds):
        space = ("linear", "log")[k % 2]
        fold = root / "crossval" / space / f"fold{k // 2}"
        model = {"backbone": "small_cnn", "width": 16, "input_space": space}
        _write_run(fold, "illuminant", f"cv-{space}", model, 1e-3, 2.5 + 0.2 * (k % 2), rng)
        err = rng.gamma(2.0, 1.2, 100)
        pd.DataFrame({"image": [f"{i:05d}" for i in range(100)], "fold": k // 2, "error": err}).to_csv(
            fold / "errors.csv", index=False
        )
    study = root / "study-colorization"
    for k in range(n_color):
        head, rebalance = ("classification", "regression")[k % 2], bool(k % 3)
        model = {"arch": "eccv16", "width": 0.25, "head": head, "rebalance": rebalance}
        final = 0.75 + 0.02 * rebalance - 0.01 * (head == "regression") + rng.normal(0, 0.005)
        _write_run(study / f"variant-{k:02d}", "colorization", "eccv16-photos", model, 1e-3, final, rng)
    pd.DataFrame(
        [
            ["classification + rebalancing", 30, 86.5, 74.9, 21.2, 39.8],
            ["L2 regression", 30, 88.4, 73.6, 22.4, 21.1],
        ],
        columns=["Model", "Epochs", "AuC raw", "AuC rebalanced", "PSNR", "Colourfulness"],
    ).to_csv(study / "study.csv", index=False)
    (study / "study.md").write_text("Colorization ablation (fake numbers for the benchmark).\n")
    (study / "figures").mkdir()
    (study / "figures" / "metrics.png").write_bytes(_png())
    for k in range(n_open):
        model = {"backbone": "small_cnn", "width": 16}
        _write_run(
            root / "unfinished" / f"run-{k:02d}", "illuminant", "constancy", model, 1e-3, 3.0, rng, False
        )


def _png() -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(range(3), [1, 2, 3])
    buf = io.BytesIO()
    fig.savefig(buf, dpi=100, format="png")
    plt.close(fig)
    return buf.getvalue()


def _median_time(fn: Any, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def bench_report(n: int, repeats: int) -> dict[str, Any]:
    from tinct.engine.report import write_report
    from tinct.engine.summary import find_runs, summarize_runs

    with tempfile.TemporaryDirectory(prefix="tinct-bench-report-") as tmp:
        root, out = Path(tmp) / "runs", Path(tmp) / "report.html"
        t = time.perf_counter()
        make_runs(root, n)
        make_s = time.perf_counter() - t
        runs = len(find_runs(root))
        files = sum(1 for p in root.rglob("*") if p.is_file())
        write_report(root, out)  # warm-up: imports (matplotlib, pandas), font cache
        summary_s, summary_all = _median_time(lambda: summarize_runs(root), repeats)
        report_s, report_all = _median_time(lambda: write_report(root, out), repeats)
        size = out.stat().st_size
        md_s, _ = _median_time(lambda: write_report(root, Path(tmp) / "report.md", fmt="md"), repeats)
        code = f"from tinct.engine.report import write_report; write_report({str(root)!r}, {str(out)!r})"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        fresh_s = time.perf_counter() - t
    res = {
        "runs": runs,
        "files": files,
        "write_runs_s": make_s,
        "summarize_runs_s": summary_s,
        "summarize_runs_all_s": summary_all,
        "write_report_html_s": report_s,
        "write_report_html_all_s": report_all,
        "write_report_md_s": md_s,
        "report_html_bytes": size,
        "fresh_interpreter_report_s": fresh_s,
        "target_s": 10.0,
        "target_met": report_s < 10.0,
    }
    print_table(
        f"tinct report engine on {runs} run directories ({files} files), median of {repeats}",
        ["step", "seconds", "target"],
        [
            ["summarize_runs (table of all runs)", summary_s, ""],
            ["write_report, HTML (summary + figures + embedding)", report_s, "< 10 s"],
            ["write_report, Markdown (figures as files)", md_s, ""],
            ["write_report in a fresh interpreter (imports included)", fresh_s, ""],
            [f"HTML size, MB ({size:,} bytes)", size / 1e6, ""],
        ],
    )
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "report.json")
    args = p.parse_args()
    write_results(args.out, {"report": bench_report(args.runs, args.repeats)})


if __name__ == "__main__":
    main()
