"""Distributed training: two CPU processes (DDP, gloo) agree, and only rank 0 writes the run directory.

``tinct train`` is launched the two ways users launch it: by Lightning's own launcher (``--devices 2
--strategy ddp``: rank 0 re-runs the same command line for rank 1, which finds the run directory in
``$TINCT_RUN_DIR``) and by torchrun (one process per rank; the run directory is named after
``--rdzv-id``). Each process is ``ddp_worker.py``, which hands its arguments to ``tinct.cli.main.main``
and adds only a callback that reports, per rank, the metrics it computed, a hash of its final weights,
and every file operation it made under the output folder (see the worker's docstring for how).

The validation and test splits (33 scenes) do not divide by the two ranks, and with a batch size of 16
one rank runs a batch more than the other: the metrics of both must be those of one process scoring
every scene once (Lightning's default sampler would pad the splits, scoring a scene twice).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from tinct.core.exceptions import RunDirError
from tinct.engine import RunDir, evaluate, load_task
from tinct.engine.config import config_from_dict
from tinct.engine.train import build_trainer, resolve_run_dir

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("ddp_worker.py")
CONFIG = REPO / "configs" / "illuminant" / "mondrian_small_cnn.yaml"
EPOCHS = 2
TINY = {
    "name": "tiny",
    "data.n_train": 64,
    "data.n_val": 33,  # odd, so the two ranks get 17 and 16 scenes: batches of 16 + 1 and of 16
    "data.n_test": 33,
    "data.size": 16,
    "data.batch_size": 16,
    "data.num_workers": 0,
    "model.width": 4,
    "model.depth": 2,
    "model.hidden": 8,
    "trainer.max_epochs": EPOCHS,
    "trainer.progress": "none",
}
# the run directory layout of tinct.engine.run_dir, and nothing else (no temporary files left over)
LAYOUT = {
    "config.yaml",
    "env.json",
    "metrics.csv",
    "metrics.json",
    "checkpoints/best.ckpt",
    "checkpoints/last.ckpt",
    "figures/learning_curves.png",
}
# variables by which Lightning or tinct would think they run under a cluster or launcher already
_LAUNCH_VARS = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK"}
_LAUNCH_PREFIXES = ("SLURM_", "TORCHELASTIC_", "MASTER_", "LSB_", "OMPI_", "PMI_", "JSM_", "PL_", "TINCT_")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_env(reports: Path, watch: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS and not k.startswith(_LAUNCH_PREFIXES)
    }
    env.update(
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
        TINCT_TEST_REPORT_DIR=str(reports),
        TINCT_TEST_WATCH_DIR=str(watch),
    )
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> None:
    """Run ``cmd`` in its own process group (killed whole on timeout); fail with its output."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the ranks it started
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {cmd}\n--- stdout ---\n{out}\n--- stderr ---\n{err}")
    if proc.returncode != 0:
        pytest.fail(f"exit status {proc.returncode}: {cmd}\n--- stdout ---\n{out}\n--- stderr ---\n{err}")


def _sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _without_time(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if k != "train_time_s"}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["lightning", "torchrun"])
def test_ddp_two_cpu_ranks_agree_and_only_rank0_writes(tmp_path: Path, launcher: str) -> None:
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    reports.mkdir()
    env = _launch_env(reports, runs)
    args = ["train", str(CONFIG), "--set", f"output_dir={runs}"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={v}"]
    args += ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]
    if launcher == "lightning":
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
        cmd = [sys.executable, str(WORKER), *args]
        environment, run_name = "LightningEnvironment", r"tiny-\d{8}-\d{6}"
    else:
        rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", "--rdzv-id", "ddptest"]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2"]
        cmd += [*rdzv, str(WORKER), *args]
        environment, run_name = "TorchElasticEnvironment", "tiny-jobddptest"
    _run(cmd, env, cwd=tmp_path)

    # -- one report per rank, from a 2-process gloo DDP run under the intended launcher ---------------
    assert sorted(p.name for p in reports.iterdir()) == ["rank0.json", "rank1.json"]
    r0, r1 = (json.loads((reports / f"rank{i}.json").read_text()) for i in (0, 1))
    for rank, r in enumerate((r0, r1)):
        assert (r["global_rank"], r["world_size"], r["rc"]) == (rank, 2, 0)
        assert (r["strategy"], r["backend"], r["cluster_environment"]) == ("DDPStrategy", "gloo", environment)
    assert r0["pid"] != r1["pid"]

    # -- exactly one run directory, with the documented layout ----------------------------------------
    (run,) = runs.iterdir()
    assert re.fullmatch(run_name, run.name), run.name
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert files == LAYOUT
    assert r0["returned"]["run_dir"] == r1["returned"]["run_dir"] == str(run)
    assert RunDir(run).config().trainer.max_epochs == EPOCHS

    # -- (1) the ranks agree: bitwise-equal weights, equal metrics -------------------------------------
    assert r0["state_sha256"] and r0["state_sha256"] == r1["state_sha256"]
    assert r0["param_sum"] == r1["param_sum"]
    assert len(r0["epochs"]) == len(r1["epochs"]) == EPOCHS
    for e0, e1 in zip(r0["epochs"], r1["epochs"], strict=True):
        assert e0.keys() == e1.keys() and e0 == pytest.approx(e1, rel=1e-6)
    assert r0["fit_metrics"] and r0["fit_metrics"] == pytest.approx(r1["fit_metrics"], rel=1e-6)
    assert r0["test_metrics"] and r0["test_metrics"] == pytest.approx(r1["test_metrics"], rel=1e-6)
    assert _without_time(r0["returned"]) == _without_time(r1["returned"])
    # ... and rank 0's files hold what both ranks computed
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert {k: _sha256(v) for k, v in last["state_dict"].items()} == r1["state_sha256"]
    assert json.loads((run / "metrics.json").read_text()) == r0["returned"]
    df = pd.read_csv(run / "metrics.csv")
    assert len(df) == EPOCHS and df["epoch"].tolist() == list(range(EPOCHS))
    for row, e1 in zip(df.to_dict("records"), r1["epochs"], strict=True):
        shared = {k: e1[k] for k in e1 if k.startswith(("train/", "val/"))}
        assert shared and {k: row[k] for k in shared} == pytest.approx(shared, rel=1e-6)

    # -- (2) only rank 0 wrote: every write under the output folder, by either rank, was recorded -------
    assert r1["writes"] == [], f"rank 1 wrote under the output folder: {r1['writes']}"
    renamed = {path for event, path in r0["writes"] if event == "os.rename"}
    opened = {path for event, path in r0["writes"] if event == "open"}
    assert {f"{run.name}/{f}" for f in LAYOUT} <= renamed  # every file, figures too, written atomically
    assert {f"{run.name}/{f}" for f in files} <= renamed | opened  # nothing written behind the hook's back
    assert all(p in (".", run.name) or p.startswith(f"{run.name}/") for _, p in r0["writes"])

    # -- (3) every scene scored exactly once: the metrics of one process on the same checkpoint --------
    one = evaluate(run, checkpoint="best", out=tmp_path / "evaluation.json")
    test = {k: v for k, v in r0["test_metrics"].items() if k.startswith("test/")}
    assert test.keys() == one.keys() and test == pytest.approx(one, rel=1e-5, abs=1e-6)
    # the loss term, a batch-size-weighted mean over both ranks, is the mean over scenes too
    assert test["test/loss"] == pytest.approx(test["test/angular_mean"], rel=1e-5)
    task = load_task(run, "best")
    trainer = build_trainer(task.cfg, None, [], accelerator="cpu", devices=1)
    (val,) = trainer.validate(task, datamodule=task.build_datamodule(), verbose=False)
    best = {k: v for k, v in json.loads((run / "metrics.json").read_text()).items() if k.startswith("val/")}
    assert best.keys() == val.keys() and best == pytest.approx(
        {k: float(v) for k, v in val.items()}, rel=1e-5
    )


@pytest.fixture
def cfg(tmp_path: Path):
    return config_from_dict(
        {
            "task": "illuminant",
            "name": "tiny",
            "output_dir": str(tmp_path / "runs"),
            "data": {"kind": "mondrian"},
            "model": {"backbone": "small_cnn"},
        }
    )


@pytest.fixture
def several_processes(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment as one of several processes would see it, with no job id yet."""
    for var in ("TINCT_RUN_DIR", "SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    return monkeypatch


@pytest.mark.parametrize("run_id", [None, "none"])  # "none": torchrun's value without --rdzv-id
def test_several_processes_without_shared_run_dir_refused(cfg, several_processes, run_id) -> None:
    if run_id is not None:
        several_processes.setenv("TORCHELASTIC_RUN_ID", run_id)
    with pytest.raises(RunDirError, match="no shared run directory"):
        resolve_run_dir(cfg, None)
    assert not Path(cfg.output_dir).exists()


def test_several_processes_agree_on_run_dir(cfg, several_processes, tmp_path: Path) -> None:
    out = Path(cfg.output_dir)
    several_processes.setenv("TORCHELASTIC_RUN_ID", "abc")
    assert resolve_run_dir(cfg, None) == out / "tiny-jobabc"
    several_processes.setenv("SLURM_JOB_ID", "4242")  # SLURM's job id wins over torchrun's
    assert resolve_run_dir(cfg, None) == out / "tiny-job4242"
    several_processes.setenv("TINCT_RUN_DIR", str(tmp_path / "spawned"))
    assert resolve_run_dir(cfg, None) == tmp_path / "spawned"
    assert resolve_run_dir(cfg, tmp_path / "explicit") == tmp_path / "explicit"


def test_srun_tasks_and_several_nodes_count_as_several_processes(
    cfg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """srun sets SLURM_NTASKS, not WORLD_SIZE; Lightning's launcher on node 1 sets neither."""
    for var in ("TINCT_RUN_DIR", "SLURM_JOB_ID", "SLURM_STEP_ID", "TORCHELASTIC_RUN_ID", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    out = Path(cfg.output_dir)
    with pytest.raises(RunDirError, match="no shared run directory"):
        resolve_run_dir(cfg, None, num_nodes=2)
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert resolve_run_dir(cfg, None) == out / "tiny-job77"
    monkeypatch.setenv("SLURM_STEP_ID", "1")  # a second srun step of the same job is another run
    assert resolve_run_dir(cfg, None) == out / "tiny-job77.1"
