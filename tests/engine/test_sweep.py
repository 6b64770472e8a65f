"""``tinct sweep``: sweep files, Optuna-backed trials, resume after a kill, crash recording, winners."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tinct.cli.main import main
from tinct.core.exceptions import ConfigError
from tinct.engine.sweep import load_sweep, open_study, run_sweep

REPO = Path(__file__).resolve().parents[2]
MONDRIAN = REPO / "configs" / "illuminant" / "mondrian_small_cnn.yaml"
TINY = {
    "trainer.max_epochs": 2,
    "trainer.progress": "none",
    "data.n_train": 64,
    "data.n_val": 32,
    "data.n_test": 32,
    "data.batch_size": 32,
    "model.width": 4,
}


def write_sweep(tmp: Path, name: str = "tiny", **extra: object) -> Path:
    spec = {"name": name, "base": str(MONDRIAN), "set": dict(TINY), "axes": {"optim.lr": [0.003, 0.01]}}
    spec.update(extra)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def trials(sweep_dir: Path, name: str = "tiny") -> list:
    spec = load_sweep(sweep_dir / "sweep.yaml")
    assert spec.name == name
    return open_study(spec, f"sqlite:///{sweep_dir / 'sweep.db'}").study.get_trials()


# -- sweep files ---------------------------------------------------------------------------------------------


def test_grid_points_named_axes_optional_and_exclude(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        axes={
            "model.input_space": ["linear", "log"],
            "regime": {"small": {"model.width": 4}, "wide": {"model.width": 8, "model.hidden": 16}},
        },
        optional=[{"regime": "wide"}],
        exclude=[{"model.input_space": "log", "regime": "wide"}],
    )
    points = load_sweep(path).points()
    assert [p.params for p in points] == [
        {"model.input_space": "linear", "regime": "small"},
        {"model.input_space": "linear", "regime": "wide"},
        {"model.input_space": "log", "regime": "small"},
    ]
    assert [p.optional for p in points] == [False, True, False]
    assert points[1].overrides == {"model.input_space": "linear", "model.width": 8, "model.hidden": 16}
    assert len({p.key for p in points}) == 3 and len({p.slug for p in points}) == 3
    cfg = load_sweep(path).trial_config(points[1])
    assert (cfg.model.width, cfg.model.hidden, cfg.trainer.max_epochs) == (8, 16, 2)


def test_random_points_are_reproducible_and_in_range(tmp_path: Path) -> None:
    axes = {"optim.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "model.hidden": {"low": 8, "high": 64}}
    path = write_sweep(tmp_path, method="random", n_trials=20, seed=3, axes=axes)
    a, b = load_sweep(path).points(), load_sweep(path).points()
    assert [p.params for p in a] == [p.params for p in b]
    lrs = [p.params["optim.lr"] for p in a]
    assert all(1e-4 <= x <= 1e-2 for x in lrs) and len(set(lrs)) == 20
    assert all(isinstance(p.params["model.hidden"], int) and 8 <= p.params["model.hidden"] <= 64 for p in a)
    # log-uniform: about as many draws below 1e-3 as above
    assert 5 <= sum(x < 1e-3 for x in lrs) <= 15


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axes": {"optim.lr": {"low": 1e-4, "high": 1e-2}}}, "need method: random"),
        ({"method": "random"}, "needs n_trials"),
        ({"axes": {"optim.lr": []}}, "has no values"),
        ({"axes": {"regime": {"a": 3}}}, "maps each label to a mapping"),
        ({"axes": {"model.backbone": ["small_cnn", "no_such_net"]}}, "no_such_net"),
        ({"axes": {"optim.lrr": [0.1]}}, "optim.lrr"),
        ({"base": "missing.yaml"}, "missing.yaml"),
        ({"speed": 3}, "speed"),
        ({"metric": "test/angular_mean"}, "a sweep ranks trials on validation"),
    ],
)
def test_bad_sweep_files_fail_before_training(tmp_path: Path, change: dict, message: str) -> None:
    path = write_sweep(tmp_path, **change)
    with pytest.raises(ConfigError, match=message):
        load_sweep(path)


# -- running -------------------------------------------------------------------------------------------------


def test_sweep_runs_resumes_without_rerunning_and_picks_winners(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, axes={"optim.lr": [0.003, 0.01], "model.input_space": ["linear", "log"]})
    out = tmp_path / "sweep"
    results = run_sweep(path, out, auto_summary=True, eval_winners_k=2, progress=False)
    assert list(results["state"]) == ["COMPLETE"] * 4
    table = pd.read_csv(out / "results.csv")
    assert {"optim.lr", "model.input_space", "val/angular_mean", "time_s", "run_dir", "state"} <= set(table)
    for run_dir in table["run_dir"]:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        assert not any(k.startswith("test/") for k in metrics)  # sweeps never look at the test split
        assert json.loads((Path(run_dir) / "trial.json").read_text())["state"] == "COMPLETE"
    winners = pd.read_csv(out / "winners.csv")
    best2 = table.sort_values("val/angular_mean").head(2)
    assert list(winners["number"]) == list(best2["number"]) and list(winners["rank"]) == [1, 2]
    assert winners["test/angular_mean"].notna().all()
    stamps = {r: (Path(r) / "metrics.json").stat().st_mtime_ns for r in table["run_dir"]}

    # Again: nothing retrains. With a third learning rate: only the two new points train.
    run_sweep(path, out, progress=False)
    assert {r: (Path(r) / "metrics.json").stat().st_mtime_ns for r in table["run_dir"]} == stamps
    bigger = write_sweep(
        tmp_path, axes={"optim.lr": [0.003, 0.01, 0.03], "model.input_space": ["linear", "log"]}
    )
    results = run_sweep(bigger, out, progress=False)
    assert list(results["state"]) == ["COMPLETE"] * 6
    assert {r: (Path(r) / "metrics.json").stat().st_mtime_ns for r in table["run_dir"]} == stamps
    assert len(trials(out)) == 6  # one Optuna trial per point, none repeated


def test_changing_the_base_of_a_started_sweep_is_refused(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, axes={"optim.lr": [0.003]})
    run_sweep(path, tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="different set"):
        run_sweep(path, tmp_path / "s", overrides={"trainer.max_epochs": 3}, progress=False)


def test_crashed_trials_are_recorded_and_retried_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tinct.engine.experiments as experiments

    real = experiments.ensure_trained

    def flaky(cfg, run_dir, quiet=False, test=True):
        if cfg.optim.lr == 0.01:
            raise RuntimeError("out of memory on purpose")
        return real(cfg, run_dir, quiet=quiet, test=test)

    monkeypatch.setattr(experiments, "ensure_trained", flaky)
    path, out = write_sweep(tmp_path), tmp_path / "sweep"
    assert main(["sweep", str(path), "--out", str(out), "--auto-summary", "--quiet"]) == 1
    table = pd.read_csv(out / "results.csv")
    assert list(table["state"]) == ["COMPLETE", "FAIL"]
    assert "RuntimeError: out of memory on purpose" in table["error"].iloc[1]
    failed = [t for t in trials(out) if t.state.name == "FAIL"]
    assert "flaky" in failed[0].user_attrs["traceback"]
    trial_json = json.loads((Path(table["run_dir"].iloc[1]) / "trial.json").read_text())
    assert trial_json["state"] == "FAIL" and "out of memory" in trial_json["error"]

    monkeypatch.setattr(experiments, "ensure_trained", real)
    results = run_sweep(path, out, progress=False)  # without --retry-failed it stays failed
    assert list(results["state"]) == ["COMPLETE", "FAIL"]
    results = run_sweep(path, out, retry_failed=True, progress=False)
    assert list(results["state"]) == ["COMPLETE", "COMPLETE"]
    retried = [t for t in trials(out) if t.user_attrs.get("retry_of") is not None]
    assert len(retried) == 1 and retried[0].user_attrs["retry_of"] == failed[0].number


def test_only_full_skips_optional_points(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, optional=[{"optim.lr": 0.01}])
    results = run_sweep(path, tmp_path / "s", only_full=True, progress=False)
    assert list(results["state"]) == ["COMPLETE", "WAITING"]
    results = run_sweep(path, tmp_path / "s", progress=False)
    assert list(results["state"]) == ["COMPLETE", "COMPLETE"]


def test_pretraining_stage_is_shared_and_initialises_trials(tmp_path: Path) -> None:
    pre = REPO / "configs" / "constancy" / "contrastive_pretrain.yaml"
    path = write_sweep(
        tmp_path,
        axes={
            "training": {
                "scratch": {},
                "frozen": {"pretrain": True, "model.freeze": True},
                "full": {"pretrain": True},
            }
        },
        pretrain={"config": str(pre), "share": ["seed", "data", "trainer", "model.backbone", "model.width"]},
    )
    results = run_sweep(path, tmp_path / "s", progress=False)
    assert list(results["state"]) == ["COMPLETE"] * 3
    pre_runs = [p for p in (tmp_path / "s" / "pretrain").iterdir() if p.is_dir()]
    assert len(pre_runs) == 1  # one pretraining serves both trials
    assert yaml.safe_load((pre_runs[0] / "config.yaml").read_text())["task"] == "illuminant_embedding"
    inits = [yaml.safe_load((Path(r) / "config.yaml").read_text())["model"] for r in results["run_dir"]]
    assert inits[0]["init"] is None
    assert inits[1]["init"] == inits[2]["init"] == str((pre_runs[0] / "checkpoints" / "last.ckpt").resolve())
    assert inits[1]["freeze"] and not inits[2]["freeze"]


def test_test_split_auto_fixes_the_test_set_for_every_trial(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, axes={"data.n_test": [32, 48]})
    results = run_sweep(path, tmp_path / "s", test_split="auto", progress=False)
    assert json.loads((tmp_path / "s" / "split.json").read_text())["source"]["test_set"]["n_test"] == 32
    assert list(results["state"]) == ["COMPLETE", "FAIL"]
    assert "split.json holds the splits of other data" in results["error"].iloc[1]


def test_two_worker_processes_share_the_trials(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, axes={"optim.lr": [0.001, 0.003, 0.01, 0.03]})
    out = tmp_path / "s"
    results = run_sweep(path, out, workers=2, progress=False)
    assert list(results["state"]) == ["COMPLETE"] * 4
    all_trials = trials(out)
    assert len(all_trials) == 4  # each point claimed exactly once
    pids = {t.user_attrs["pid"] for t in all_trials}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["worker-0.log", "worker-1.log"]


@pytest.mark.slow
def test_killing_a_sweep_mid_trial_loses_and_reruns_nothing(tmp_path: Path) -> None:
    slow = dict(TINY, **{"trainer.max_epochs": 30, "data.n_train": 256})
    path = write_sweep(tmp_path, set=slow, axes={"optim.lr": [0.001, 0.003, 0.01]})
    out = tmp_path / "s"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinct.cli", "sweep", str(path), "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # Kill -9 once the second trial is under way (its first checkpoint is written).
    third = out / "runs" / "t001-0.003" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not third.is_file():
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, "the second trial never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = out / "runs" / "t000-0.001" / "metrics.json"
    assert first.is_file() and not (out / "runs" / "t001-0.003" / "metrics.json").is_file()
    stamp = first.stat().st_mtime_ns

    results = run_sweep(path, out, progress=False)
    assert list(results["state"]) == ["COMPLETE"] * 3
    assert first.stat().st_mtime_ns == stamp  # the finished trial is not rerun
    by_key = {}
    for t in trials(out):
        by_key.setdefault(t.user_attrs["key"], []).append(t)
    attempts = sorted(len(v) for v in by_key.values())
    assert attempts == [1, 1, 2]  # only the killed trial has a second attempt ...
    killed = next(v for v in by_key.values() if len(v) == 2)
    assert killed[0].user_attrs["interrupted"] and killed[1].user_attrs["status"] == "resumed"
    epochs = pd.read_csv(out / "runs" / "t001-0.003" / "metrics.csv")["epoch"]
    assert list(epochs) == list(range(30))  # ... which continued from its checkpoint, no epoch twice


def test_optuna_heartbeat_fails_a_lost_trial_and_its_retry_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's heartbeat: a running trial of a lost machine (no heartbeat for --stale-after seconds) is
    failed by Optuna and queued again by its retry callback; a live trial's heartbeat keeps it running."""
    import tinct.engine.experiments as experiments
    from tinct.engine.sweep_store import claim_trial, fail_stale, plan_trials

    path, url = write_sweep(tmp_path, axes={"optim.lr": [0.003]}), f"sqlite:///{tmp_path / 'hb.db'}"
    spec = load_sweep(path)
    sw = open_study(spec, url, stale_after=3)
    assert sw.storage.get_heartbeat_interval() == 1 and sw.storage.grace_period == 3
    plan_trials(sw, spec.points(), retry_failed=False)
    lost = claim_trial(sw, {p.key for p in spec.points()}, only_full=False)
    assert lost is not None
    sw.storage.set_trial_user_attr(lost, "host", "a-lost-machine")  # claimed with a heartbeat, then silence
    assert fail_stale(sw, local=True) == 0  # within the grace period; not a process of this host
    time.sleep(4.5)
    real = experiments.ensure_trained

    def slow(cfg, run_dir, quiet=False, test=True):
        time.sleep(4.5)  # longer than the grace period: only the heartbeat keeps this trial running
        assert fail_stale(open_study(spec, url, stale_after=3)) == 0
        return real(cfg, run_dir, quiet=quiet, test=test)

    monkeypatch.setattr(experiments, "ensure_trained", slow)
    results = run_sweep(path, tmp_path / "s", storage=url, stale_after=3, progress=False)
    assert list(results["state"]) == ["COMPLETE"]
    first, retry = sorted(open_study(spec, url).study.get_trials(), key=lambda t: t.number)
    assert first.state.name == "FAIL" and first.user_attrs["host"] == "a-lost-machine"
    assert retry.state.name == "COMPLETE" and retry.system_attrs["failed_trial"] == first.number


# -- PostgreSQL ----------------------------------------------------------------------------------------------


def _pg_binaries() -> tuple[str, str] | None:
    import glob
    import shutil

    for folder in [None, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        initdb = shutil.which("initdb", path=folder)
        pg_ctl = shutil.which("pg_ctl", path=folder)
        if initdb and pg_ctl:
            return initdb, pg_ctl
    return None


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server on loopback (skipped where the server binaries are not installed)."""
    import pwd
    import shutil
    import socket
    import tempfile

    import psycopg  # noqa: F401  (a test extra, tinct[test]: its absence fails; no server binaries skip)

    binaries = _pg_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql to run this")
    initdb, pg_ctl = binaries
    prefix: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="tinct-pg-", dir="/tmp"))
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser to start the server as 'postgres'")
        prefix = [runuser, "-u", "postgres", "--"]
        os.chown(data, user.pw_uid, user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = data / "db"

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)

    done = run(initdb, "-D", str(db), "-U", "tinct", "--auth=trust", "--no-sync")
    if done.returncode:
        pytest.skip(f"initdb failed: {done.stderr.strip()[-300:]}")
    opts = f"-p {port} -h 127.0.0.1 -k {data} -c fsync=off"
    done = run(pg_ctl, "-D", str(db), "-o", opts, "-l", str(data / "log"), "-w", "-t", "60", "start")
    if done.returncode:
        pytest.skip(f"the PostgreSQL server did not start: {done.stderr.strip()[-300:]}")
    try:
        yield f"postgresql+psycopg://tinct@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "-D", str(db), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_sweep_against_a_real_postgresql_server(tmp_path: Path, postgres_url: str) -> None:
    path = write_sweep(tmp_path, axes={"optim.lr": [0.001, 0.003, 0.01]})
    out = tmp_path / "s"
    results = run_sweep(path, out, workers=2, storage=postgres_url, progress=False)
    assert list(results["state"]) == ["COMPLETE"] * 3
    assert not (out / "sweep.db").exists()  # the trials live in the server
    spec = load_sweep(path)
    stored = open_study(spec, postgres_url).study.get_trials()
    assert len(stored) == 3 and {t.state.name for t in stored} == {"COMPLETE"}
    # A second "machine" joining the finished sweep finds nothing to do.
    again = run_sweep(path, out, storage=postgres_url, progress=False)
    assert list(again["number"]) == list(results["number"])
    assert len(open_study(spec, postgres_url).study.get_trials()) == 3


def test_a_dying_worker_fails_its_trial_and_another_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process that dies (here os._exit in the middle of a trial, as a segfault or the OOM killer
    would) has its trial recorded as failed with the exit code, and the other trials still run."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('TINCT_TEST_CRASH_LR'):\n"
        "    import tinct.engine.experiments as cv\n"
        "    real = cv.ensure_trained\n"
        "    def crash(cfg, run_dir, quiet=False, test=True):\n"
        "        if cfg.optim.lr == float(os.environ['TINCT_TEST_CRASH_LR']):\n"
        "            print('crashing on purpose', flush=True)\n"
        "            os._exit(3)\n"
        "        return real(cfg, run_dir, quiet=quiet, test=test)\n"
        "    cv.ensure_trained = crash\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("TINCT_TEST_CRASH_LR", "0.01")
    path = write_sweep(tmp_path, axes={"optim.lr": [0.003, 0.01, 0.03]})
    results = run_sweep(path, tmp_path / "s", workers=2, progress=False)
    assert list(results["state"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    error = results["error"].iloc[1]
    assert "worker process died with exit code 3" in error and "crashing on purpose" in error
