"""Sweeps: a base config plus axes, run as Optuna trials (``tinct sweep SWEEP.yaml``).

The file format is read by :mod:`tinct.engine.sweep_spec`; this module stores, claims, runs and summarises
the trials.

A sweep file names a base experiment config and the axes to vary; every point of the grid (or every random
draw) is one trial, i.e. one run directory::

    name: illuminant-input-space            # the Optuna study name (default: the file's stem)
    base: mondrian_small_cnn.yaml           # relative to this file
    set: {trainer.max_epochs: 10}           # overrides of every trial
    method: grid                            # grid | random (then n_trials and seed)
    metric: val/angular_mean                # what ranks trials (default: the task's monitor; never test/)
    axes:
      model.input_space: [linear, log]      # a config key and its values
      optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a range (random sweeps only)
      training:                             # a named axis: label -> overrides of that label
        scratch: {}
        contrastive: {pretrain: true, model.freeze: true}
    optional:                               # points skipped by --only-full (partial combinations)
      - {model.input_space: log, training: contrastive}
    exclude:                                # points never run
      - {model.input_space: linear, training: scratch}
    pretrain:                               # a stage that trials with ``pretrain: true`` run first
      config: ../constancy/contrastive_pretrain.yaml
      share: [seed, data, model.backbone, model.width, model.input_space]
      into: model.init                      # gets the stage's last checkpoint

Optuna keeps the trials (SQLite in the sweep folder by default, or any SQLAlchemy URL such as PostgreSQL,
so workers on several machines share one study): a worker claims a waiting trial atomically, trains it
(:func:`tinct.engine.experiments.ensure_trained`, which resumes from ``last.ckpt``), and reports the metric.
A trial that raises is recorded as failed with its error; ``--retry-failed`` queues it again. A trial
whose worker was killed (Ctrl-C, a dead process, no Optuna heartbeat for ``--stale-after`` seconds) is
queued again automatically (Optuna's retry callback) and resumes from its last checkpoint, so restarting
a killed sweep loses no finished trial and reruns none. Runs do not look at the test split;
``--eval-winners K`` scores the best K on it.

```
SWEEP_DIR/
  sweep.yaml            the sweep file as run (base resolved to an absolute path)
  sweep.db              Optuna storage (SQLite; absent with --storage URL)
  runs/t000-<labels>/   one run directory per trial, plus trial.json (params, state, error)
  pretrain/<key>/       pretraining runs shared by trials with the same copied settings
  split.json            the fixed splits (--test-split auto)
  results.csv           one row per trial: axes, metrics, time, state, error (--auto-summary)
  figures/              metric by axis, learning curves, error distributions (--analysis)
  winners.csv           the best K trials re-evaluated on the test split (--eval-winners K)
  logs/worker-<i>.log   output of each worker process (--workers N > 1)
```
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.checks import check_inside
from tinct.core.config import ExperimentConfig
from tinct.core.exceptions import ConfigError, TinctError
from tinct.engine.sweep_spec import PretrainStage, SweepSpec, TrialPoint, label_text, load_sweep
from tinct.engine.sweep_store import (
    SweepStudy,
    claim_trial,
    default_storage,
    fail_stale,
    fail_trials_of_worker,
    open_study,
    plan_trials,
    sweep_results,
    waiting_trials,
)

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = [
    "PretrainStage",
    "SweepSpec",
    "SweepStudy",
    "TrialPoint",
    "eval_winners",
    "load_sweep",
    "open_study",
    "run_sweep",
    "sweep_results",
    "worker_loop",
]


# -- running trials ------------------------------------------------------------------------------------------


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    from optuna.distributions import IntDistribution

    suggest = trial.suggest_int if isinstance(dist, IntDistribution) else trial.suggest_float
    return suggest(name, dist.low, dist.high, log=dist.log)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (a pretraining stage is trained by one worker at a time)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pretrain_dir(sweep_dir: Path, cfg: ExperimentConfig) -> Path:
    ident = json.dumps({k: v for k, v in cfg.model_dump(mode="json").items() if k != "name"}, sort_keys=True)
    return sweep_dir / "pretrain" / hashlib.sha1(ident.encode()).hexdigest()[:12]


def _point_of(spec: SweepSpec, frozen: optuna.trial.FrozenTrial) -> TrialPoint:
    ua = frozen.user_attrs
    return TrialPoint(
        index=int(ua["index"]),
        params=dict(frozen.system_attrs.get("fixed_params", frozen.params)),
        overrides=json.loads(ua["overrides"]),
        optional=bool(ua.get("optional", False)),
    )


def _write_trial_json(run_dir: Path, spec: SweepSpec, number: int, point: TrialPoint, **extra: Any) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / "trial.json",
        {"sweep": spec.name, "number": number, "key": point.key, "params": point.params, **extra},
    )


def run_trial(
    sw: SweepStudy,
    trial_id: int,
    spec: SweepSpec,
    sweep_dir: Path,
    *,
    split_file: str | None = None,
    test: bool = False,
    quiet: bool = True,
) -> optuna.trial.FrozenTrial:
    """Train one claimed trial and report it to the study (value, metrics, time; or the error)."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages._heartbeat import get_heartbeat_thread
    from optuna.trial import TrialState

    from tinct.engine.callbacks import finite_float
    from tinct.engine.experiments import ensure_trained, with_updates
    from tinct.engine.run_dir import RunDir

    study, storage = sw.study, sw.storage
    frozen = storage.get_trial(trial_id)
    point = _point_of(spec, frozen)
    trial = optuna.trial.Trial(study, trial_id)
    for name, dist in spec.distributions().items():
        # Numeric ranges become Optuna parameters (for its samplers and dashboard). Categorical axes stay in
        # the trial's attributes: Optuna fixes a categorical's choices for good, and a sweep may grow values.
        if not isinstance(dist, CategoricalDistribution):
            _suggest(trial, name, dist)
    storage.set_trial_user_attr(trial_id, "params", point.params)
    run_dir = check_inside(sweep_dir / "runs", sweep_dir / "runs" / point.slug, "trial folder").resolve()
    for k, v in {"host": socket.gethostname(), "pid": os.getpid(), "run_dir": str(run_dir)}.items():
        storage.set_trial_user_attr(trial_id, k, v)
    metric, _ = spec.metric_and_direction()
    t0 = time.perf_counter()
    heartbeat = get_heartbeat_thread(trial_id, storage)  # Optuna's, as Study.optimize runs it
    heartbeat.start()
    try:
        _write_trial_json(run_dir, spec, frozen.number, point, state="RUNNING")
        cfg = spec.trial_config(point, sweep_dir, split_file)
        if point.pretrain:
            assert spec.pretrain is not None
            pre = spec.pretrain_config(cfg)
            pre_dir = _pretrain_dir(sweep_dir, pre)
            with _file_lock(pre_dir.with_suffix(".lock")):
                ensure_trained(pre, pre_dir, quiet=quiet, test=False)
            ckpt = pre_dir / "checkpoints" / f"{spec.pretrain.checkpoint}.ckpt"
            storage.set_trial_user_attr(trial_id, "pretrain_dir", str(pre_dir))
            cfg = with_updates(cfg, {spec.pretrain.into: str(ckpt.resolve())})
        status = ensure_trained(cfg, run_dir, quiet=quiet, test=test)
        metrics = RunDir(run_dir).metrics()
        value = finite_float(metrics.get(metric))
        if value is None:
            raise TinctError(
                f"{run_dir}: the run finished without a finite {metric!r} "
                f"(its metrics: {', '.join(k for k in metrics if '/' in k) or 'none'})"
            )
        for k, v in metrics.items():
            if "/" in k or k in ("epochs", "best_epoch", "train_time_s"):
                storage.set_trial_user_attr(trial_id, k, v)
        storage.set_trial_user_attr(trial_id, "status", status)
        storage.set_trial_user_attr(trial_id, "time_s", round(time.perf_counter() - t0, 2))
        study.tell(trial, value)
        _write_trial_json(run_dir, spec, frozen.number, point, state="COMPLETE", value=value)
    except KeyboardInterrupt:
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_user_attr(trial_id, "error", "interrupted (Ctrl-C): resumed on the next start")
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as err:  # recorded, and the sweep goes on with the next trial
        tb = traceback.format_exception(type(err), err, err.__traceback__)
        message = f"{type(err).__name__}: {err}"
        # Suppressed: the trial may be finished already (declared stale by another worker meanwhile).
        with contextlib.suppress(Exception):
            storage.set_trial_user_attr(trial_id, "error", message[:2000])
            storage.set_trial_user_attr(trial_id, "traceback", "".join(tb)[-6000:])
            storage.set_trial_user_attr(trial_id, "time_s", round(time.perf_counter() - t0, 2))
            study.tell(trial, state=TrialState.FAIL)
        with contextlib.suppress(Exception):
            _write_trial_json(run_dir, spec, frozen.number, point, state="FAIL", error=message)
    finally:
        heartbeat.join()
    return storage.get_trial(trial_id)


def worker_loop(
    spec: SweepSpec,
    sweep_dir: str | os.PathLike[str],
    storage: str,
    *,
    only_full: bool = False,
    split_file: str | None = None,
    test: bool = False,
    quiet: bool = True,
    progress: bool = True,
    stale_after: float = 600.0,
) -> int:
    """Claim and run waiting trials of ``spec`` until none is left; returns how many this worker ran."""
    sweep_dir = Path(sweep_dir)
    sw = open_study(spec, storage, stale_after)
    keys = {p.key for p in spec.points()}
    metric, _ = spec.metric_and_direction()
    n = 0
    while (trial_id := claim_trial(sw, keys, only_full)) is not None:
        frozen = sw.storage.get_trial(trial_id)
        label = ", ".join(
            f"{k}={label_text(v)}" for k, v in frozen.system_attrs.get("fixed_params", {}).items()
        )
        if progress:
            print(f"trial {frozen.number} [{label}] started", flush=True)
        done = run_trial(sw, trial_id, spec, sweep_dir, split_file=split_file, test=test, quiet=quiet)
        n += 1
        if progress:
            ua = done.user_attrs
            what = f"FAILED: {ua.get('error', '?')}" if done.value is None else f"{metric} {done.value:.4g}"
            print(f"trial {done.number} [{label}] {what} ({ua.get('time_s', 0):.1f} s)", flush=True)
    return n


def _run_workers(
    spec: SweepSpec, sweep_dir: Path, workers: int, progress: bool, options: dict[str, Any]
) -> None:
    """``workers`` local processes; a worker that dies fails its running trial (with its log's tail)."""

    logs = sweep_dir / "logs"
    logs.mkdir(exist_ok=True)
    sw = open_study(spec, options["storage"], options["stale_after"])
    keys = {p.key for p in spec.points()}
    gpus = _visible_gpus()
    command = [sys.executable, "-m", "tinct.engine.sweep", str(sweep_dir), "--storage", options["storage"]]
    command += ["--stale-after", str(options["stale_after"])] + ["--only-full"] * options["only_full"]
    command += ["--split-file", options["split_file"]] if options["split_file"] else []
    procs: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(i: int) -> None:
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        log = logs / f"worker-{i}.log"
        with open(log, "ab") as fh:
            procs[i] = (subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env), log)

    for i in range(workers):
        start(i)
    if progress:
        print(f"{workers} workers started; their output: {logs}/worker-<i>.log", flush=True)
    respawns = 0
    try:
        while procs:
            time.sleep(1.0)
            for i, (proc, log) in list(procs.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del procs[i]
                if rc == 0:
                    continue
                tail = log.read_text(errors="replace")[-3000:]
                error = f"worker process died with exit code {rc}\n{tail}"
                for number in fail_trials_of_worker(sw, proc.pid, error):
                    if progress:
                        print(f"trial {number} FAILED: its worker died with exit code {rc}", flush=True)
                if waiting_trials(sw, keys, options["only_full"]) and respawns < 3 * workers:
                    respawns += 1
                    start(i)
    except KeyboardInterrupt:
        for proc, _ in procs.values():
            proc.send_signal(2)
        for proc, _ in procs.values():
            with contextlib.suppress(Exception):
                proc.wait(timeout=60)
        raise


def _visible_gpus() -> list[str]:
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            return [str(i) for i in range(torch.cuda.device_count())]
    return []


# -- results -------------------------------------------------------------------------------------------------


def eval_winners(
    spec: SweepSpec, results: pd.DataFrame, k: int, out: Path, progress: bool = True
) -> pd.DataFrame:
    """Score the best ``k`` finished trials (by the sweep's validation metric) on their test split.

    Each winner's ``evaluation.json`` (written by :func:`tinct.engine.evaluate.evaluate`) is reused when it
    is newer than the run's ``metrics.json``. Writes ``winners.csv`` with the rank, the trial's axes, its
    validation metric and every ``test/`` metric.
    """
    import pandas as pd

    from tinct.engine.evaluate import evaluate

    metric, direction = spec.metric_and_direction()
    done = results[results["state"] == "COMPLETE"].dropna(subset=[metric])
    done = done.sort_values(metric, ascending=direction == "minimize").head(k)
    rows = []
    for rank, (_, r) in enumerate(done.iterrows(), start=1):
        run_dir = Path(r["run_dir"])
        ev = run_dir / "evaluation.json"
        if ev.is_file() and ev.stat().st_mtime >= (run_dir / "metrics.json").stat().st_mtime:
            test = {k2: v for k2, v in json.loads(ev.read_text()).items() if k2.startswith("test/")}
        else:
            if progress:
                print(f"winner {rank}: testing trial {r['number']} ({run_dir})", flush=True)
            test = evaluate(run_dir)
        rows.append(
            {
                "rank": rank,
                "number": r["number"],
                **{a: r[a] for a in spec.axes},
                metric: r[metric],
                **test,
                "run_dir": str(run_dir),
            }
        )
    table = pd.DataFrame(rows)
    atomic_write_text(out / "winners.csv", table.to_csv(index=False))
    return table


# -- the command ---------------------------------------------------------------------------------------------


def _snapshot(spec: SweepSpec, sweep_dir: Path) -> None:
    raw = spec.model_dump(mode="json", exclude={"source"})
    raw["base"] = str(spec.resolve(spec.base))
    if spec.pretrain is not None:
        raw["pretrain"]["config"] = str(spec.resolve(spec.pretrain.config))
    text = f"# copied from {spec.source}\n" + yaml.safe_dump(raw, sort_keys=False)
    target = sweep_dir / "sweep.yaml"
    if target.is_file():
        old = yaml.safe_load(target.read_text()) or {}
        changed = [k for k in ("base", "set", "pretrain") if old.get(k) != raw.get(k)]
        if changed:
            raise ConfigError(
                f"{sweep_dir}: this sweep was started with a different {', '.join(changed)} "
                f"(see {target}); use another --out for another experiment (new axis values are fine)"
            )
    atomic_write_text(target, text)


def run_sweep(
    sweep_file: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int = 1,
    storage: str | None = None,
    only_full: bool = False,
    retry_failed: bool = False,
    test_split: str | None = None,
    auto_summary: bool = False,
    analysis: bool = False,
    eval_winners_k: int = 0,
    overrides: Mapping[str, Any] | None = None,
    stale_after: float = 600.0,
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or resume) a sweep and return its results table (also ``results.csv`` with ``auto_summary``).

    Args:
        sweep_file: the sweep YAML (see the module docstring).
        out: the sweep folder (default ``runs/sweeps/<name>``); an existing one is resumed.
        workers: local worker processes (1: trials run in this process, one after the other).
        storage: a SQLAlchemy URL shared by workers on several machines (default: SQLite in ``out``).
        only_full: skip the points the sweep file marks ``optional``.
        retry_failed: queue failed trials again (interrupted ones always are).
        test_split: ``"auto"``: every trial uses the splits written once to ``out/split.json``.
        auto_summary: write ``results.csv``; analysis: also the figures under ``out/figures``.
        eval_winners_k: score the best K trials on the test split (``winners.csv``).
        overrides: dotted keys added to the sweep's ``set`` section.
        stale_after: seconds without a heartbeat after which a running trial of another machine is
            considered dead and queued again (Optuna's ``grace_period``; the heartbeat is recorded every
            ``stale_after / 4`` seconds, 30 at most).
        progress: print a line per trial.
    """
    spec = load_sweep(sweep_file, overrides)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if test_split not in (None, "auto"):
        raise ConfigError(f"--test-split must be 'auto', got {test_split!r}")
    sweeps = Path("runs") / "sweeps"
    sweep_dir = Path(out) if out is not None else check_inside(sweeps, sweeps / spec.name, "sweep folder")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _snapshot(spec, sweep_dir)
    url = storage or spec.storage or default_storage(sweep_dir)
    split_file = str((sweep_dir / "split.json").resolve()) if test_split == "auto" else None
    if split_file is not None:
        spec.trial_config(spec.points()[0], sweep_dir, split_file)  # the task supports data.split_file
    sw = open_study(spec, url, stale_after)
    recovered = fail_stale(sw, local=True)
    points = spec.points()
    counts = plan_trials(sw, points, retry_failed)
    if progress:
        print(
            f"sweep {spec.name}: {len(points)} trials ({counts['done']} done, "
            + (f"{counts['elsewhere']} running elsewhere, " if counts["elsewhere"] else "")
            + f"{counts['queued']} new, {counts['requeued']} queued again"
            + (f", {recovered} interrupted before" if recovered else "")
            + (
                f", {counts['failed']} failed before: --retry-failed runs them again"
                if counts["failed"]
                else ""
            )
            + f") -> {sweep_dir}",
            flush=True,
        )
    options = {"storage": url, "only_full": only_full, "split_file": split_file, "stale_after": stale_after}
    if workers == 1:
        worker_loop(spec, sweep_dir, progress=progress, **options)
    else:
        _run_workers(spec, sweep_dir, workers, progress, options)
    results = sweep_results(spec, sw)
    if auto_summary or analysis or eval_winners_k:
        atomic_write_text(sweep_dir / "results.csv", results.to_csv(index=False))
    if analysis:
        from tinct.engine.results_plots import plot_results

        plot_results(results, sweep_dir / "figures", metric=spec.metric_and_direction()[0])
    if eval_winners_k:
        eval_winners(spec, results, eval_winners_k, sweep_dir, progress)
    if progress:
        states = results["state"].value_counts().to_dict()
        print(f"sweep {spec.name}: " + ", ".join(f"{v} {k.lower()}" for k, v in states.items()), flush=True)
    return results


def _main(argv: Sequence[str] | None = None) -> int:
    """A worker process of :func:`run_sweep` (``python -m tinct.engine.sweep SWEEP_DIR --storage URL``)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m tinct.engine.sweep")
    p.add_argument("sweep_dir")
    p.add_argument("--storage", required=True)
    p.add_argument("--only-full", action="store_true")
    p.add_argument("--split-file")
    p.add_argument("--stale-after", type=float, default=600.0)
    options = vars(p.parse_args(argv))
    sweep_dir = Path(options.pop("sweep_dir"))
    worker_loop(load_sweep(sweep_dir / "sweep.yaml"), sweep_dir, **options)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
