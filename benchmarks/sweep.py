"""What a sweep costs on top of the training it runs (issue #7: < 5 % of a 1-minute trial).

The same small trials are trained twice in this process: once by calling ``train()`` directly (the
reference), once through ``run_sweep`` (sweep file validation, Optuna's SQLite storage, claiming, trial
attributes, heartbeat, trial.json). The difference per trial is the sweep's overhead; it is a fixed cost,
so it is reported against a 1-minute trial. With ``--workers N`` each worker is a separate process, whose
start (Python, torch, Lightning, Optuna imports) is paid once per worker, not per trial: measured too.

    python benchmarks/sweep.py [--trials 4] [--repeats 3] [--out benchmarks/results/sweep.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

from tinct.core.config import apply_overrides
from tinct.engine.config import config_from_dict
from tinct.engine.sweep import load_sweep, run_sweep
from tinct.engine.train import train

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "configs" / "illuminant" / "mondrian_small_cnn.yaml"
TRIAL = {
    "trainer.max_epochs": 2,
    "trainer.progress": "none",
    "data.n_train": 512,
    "data.n_val": 128,
    "data.n_test": 128,
    "model.width": 8,
}


def sweep_file(folder: Path, lrs: list[float]) -> Path:
    path = folder / "bench.sweep.yaml"
    path.write_text(
        yaml.safe_dump({"name": "bench", "base": str(BASE), "set": TRIAL, "axes": {"optim.lr": lrs}})
    )
    return path


def direct(folder: Path, lrs: list[float]) -> float:
    """Wall time of training the trials with ``train()`` (no test, as in a sweep)."""
    raw = apply_overrides(yaml.safe_load(BASE.read_text()), TRIAL)
    t0 = time.perf_counter()
    for i, lr in enumerate(lrs):
        cfg = config_from_dict(apply_overrides(raw, {"optim.lr": lr}))
        with contextlib.redirect_stdout(io.StringIO()):  # the per-epoch lines (a sweep trains quietly)
            train(cfg, run_dir=folder / f"direct{i}", verbose=False, test=False)
    return time.perf_counter() - t0


def swept(folder: Path, lrs: list[float]) -> float:
    path = sweep_file(folder, lrs)
    t0 = time.perf_counter()
    results = run_sweep(path, folder / "sweep", progress=False)
    wall = time.perf_counter() - t0
    assert (results["state"] == "COMPLETE").all(), results
    return wall


def worker_start(folder: Path, lrs: list[float]) -> float:
    """A worker process joining a finished sweep: process start, imports, storage; it finds no work."""
    sweep_dir = folder / "sweep"
    spec = load_sweep(sweep_dir / "sweep.yaml")
    url = f"sqlite:///{sweep_dir / 'sweep.db'}"
    assert spec.name == "bench"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tinct.engine.sweep", str(sweep_dir), "--storage", url],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sweep.json"))
    args = p.parse_args()
    lrs = [0.001 * (1.5**i) for i in range(args.trials)]
    with tempfile.TemporaryDirectory() as warm:  # imports, first-epoch allocations
        direct(Path(warm), lrs[:1])
    rows = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            d = direct(folder, lrs)
            s = swept(folder, lrs)
            w = worker_start(folder, lrs)
            rows.append(
                {"direct_s": d, "sweep_s": s, "overhead_s": (s - d) / args.trials, "worker_start_s": w}
            )
            print(f"repeat {r + 1}: direct {d:.2f} s, sweep {s:.2f} s, worker start {w:.2f} s", flush=True)
    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    share = 100.0 * max(med["overhead_s"], 0.0) / 60.0
    worker_share = {k: 100.0 * med["worker_start_s"] / (60.0 * k) for k in (1, 4, 10)}
    print_table(
        f"sweep overhead ({args.trials} trials of {med['direct_s'] / args.trials:.1f} s, median of {args.repeats})",
        ["measure", "value", "target"],
        [
            ["trials trained directly (s)", med["direct_s"], ""],
            ["the same trials as a sweep (s)", med["sweep_s"], ""],
            ["overhead per trial (s)", med["overhead_s"], ""],
            ["overhead per trial, % of a 1-min trial", share, "< 5 %"],
            ["--workers N: start of one worker process, paid once per worker (s)", med["worker_start_s"], ""],
            *[
                [f"  the same per trial, {k} one-minute trials per worker (%)", v, ""]
                for k, v in worker_share.items()
            ],
        ],
    )
    write_results(
        Path(args.out),
        {
            "sweep_overhead": {
                "trials": args.trials,
                "repeats": args.repeats,
                "runs": rows,
                "median": med,
                "overhead_percent_of_1min_trial": share,
                "worker_start_percent_of_1min_trials_by_trials_per_worker": worker_share,
                "target_percent": 5.0,
            }
        },
    )


if __name__ == "__main__":
    main()
