import json

import pandas as pd
import pytest
import torch

from tinct.core.exceptions import RunDirError
from tinct.engine import RunDir, evaluate, load_task, predict, train
from tinct.engine.callbacks import AtomicCheckpointIO


def test_train_writes_complete_run_dir(tiny_cfg, capsys) -> None:
    m = train(tiny_cfg)
    run = RunDir(m["run_dir"])
    for f in (
        "config.yaml",
        "env.json",
        "metrics.csv",
        "metrics.json",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "figures/learning_curves.png",
    ):
        assert (run.path / f).is_file(), f
    assert run.config() == tiny_cfg  # the resolved config round-trips
    env = json.loads((run.path / "env.json").read_text())
    assert env["versions"]["torch"] and "git_commit" in env
    df = pd.read_csv(run.metrics_csv)
    assert df["epoch"].tolist() == [0, 1] and {"train/loss", "val/angular_mean", "lr"} <= set(df.columns)
    for key in (
        "val/angular_mean",
        "test/angular_mean",
        "test/angular_median",
        "test/angular_trimean",
        "test/angular_best25",
        "test/angular_worst25",
    ):
        assert key in m and 0 <= m[key] < 90, key
    assert json.loads(run.metrics_json.read_text())["test/angular_mean"] == m["test/angular_mean"]
    assert "tinct illuminant/tiny: 2 epochs" in capsys.readouterr().out


def test_checkpoints_load_weights_only(tiny_cfg) -> None:
    m = train(tiny_cfg, verbose=False)
    ckpt = torch.load(RunDir(m["run_dir"]).checkpoint("last"), weights_only=True)
    assert ckpt["tinct_config"]["task"] == "illuminant"
    assert AtomicCheckpointIO().load_checkpoint(RunDir(m["run_dir"]).checkpoint("best"))["epoch"] in (0, 1)


def test_seeded_runs_repeat(tiny_cfg) -> None:
    a = train(tiny_cfg, verbose=False)
    b = train(tiny_cfg, verbose=False)
    assert a["test/angular_mean"] == pytest.approx(b["test/angular_mean"], rel=1e-6)
    assert a["run_dir"] != b["run_dir"]
    assert "TINCT_RUN_DIR" not in __import__("os").environ  # scoped to each run


def test_resume_continues_without_duplicates(tiny_cfg, tmp_path) -> None:
    run_dir = tmp_path / "r"
    one = tiny_cfg.model_copy(deep=True)
    one.trainer.max_epochs = 1
    train(one, run_dir=run_dir, verbose=False)
    more = RunDir(run_dir).config({"trainer.max_epochs": 3})
    m = train(more, run_dir=run_dir, resume=True, verbose=False)
    df = pd.read_csv(run_dir / "metrics.csv")
    assert df["epoch"].tolist() == [0, 1, 2]
    assert m["epochs"] == 3
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(tiny_cfg, run_dir=tmp_path / "empty", resume=True)


def test_evaluate_and_predict(tiny_cfg, tmp_path) -> None:
    import numpy as np

    from tinct.constancy.mondrian import MondrianDataset
    from tinct.io.image import write_image

    m = train(tiny_cfg, verbose=False)
    run = m["run_dir"]
    again = evaluate(run)
    assert again["test/angular_mean"] == pytest.approx(m["test/angular_mean"], rel=1e-5)

    # a folder in the generic layout: 16-bit PNGs + .npy + gt.csv
    folder = tmp_path / "folder"
    folder.mkdir()
    ds = MondrianDataset(6, size=24, seed=9)
    rows = []
    for i in range(6):
        item = ds[i]
        name = f"img{i}.png" if i % 2 else f"img{i}.npy"
        if i % 2:
            write_image(folder / name, item["image"], bit_depth=16)
        else:
            np.save(folder / name, item["image"].numpy().transpose(1, 2, 0))
        rows.append(
            {
                "image": name,
                "r": float(item["illuminant"][0]),
                "g": float(item["illuminant"][1]),
                "b": float(item["illuminant"][2]),
            }
        )
    pd.DataFrame(rows).to_csv(folder / "gt.csv", index=False)
    res = evaluate(run, folder)
    assert 0 <= res["test/angular_mean"] < 90
    assert (tmp_path / "runs").exists() and any(
        p.name == "evaluation-folder.json" for p in (folder.parent / "runs").rglob("*.json")
    )

    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    write_image(folder / "display.jpg", torch.rand(3, 16, 16))
    with pytest.warns(UserWarning, match="not linear camera RGB"):
        preds = predict(run, [folder], tmp_path / "pred", progress=False)
    ok = [p for p in preds if "error" not in p]
    bad = [p for p in preds if "error" in p]
    assert len(ok) == 7 and len(bad) == 1 and "broken.png" in bad[0]["error"]
    for p in ok:
        v = torch.tensor([p["r"], p["g"], p["b"]])
        assert torch.allclose(v.norm(), torch.tensor(1.0), atol=1e-5) and (v > 0).all()
    assert (tmp_path / "pred" / "predictions.csv").is_file() and (
        tmp_path / "pred" / "img1_balanced.png"
    ).is_file()
    assert load_task(run).cfg == tiny_cfg


class _CrashAt(__import__("lightning").Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_crash_keeps_finished_epochs_and_resumes(tiny_cfg, tmp_path) -> None:
    run_dir = tmp_path / "crashed"
    cfg = tiny_cfg.model_copy(deep=True)
    cfg.trainer.max_epochs = 3
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, run_dir=run_dir, callbacks=[_CrashAt(2)], verbose=False)
    run = RunDir(run_dir)
    assert pd.read_csv(run.metrics_csv)["epoch"].tolist() == [0, 1]  # finished epochs are on disk
    assert torch.load(run.checkpoint("last"), weights_only=True)["epoch"] == 1
    assert not run.metrics_json.exists()  # no final metrics for an unfinished run
    m = train(run.config(), run_dir=run_dir, resume=True, verbose=False)
    assert pd.read_csv(run.metrics_csv)["epoch"].tolist() == [0, 1, 2] and m["epochs"] == 3
    assert run.metrics_json.is_file()


def test_bad_data_fails_before_writing_a_run_dir(tiny_cfg, tmp_path) -> None:
    from tinct.core.exceptions import DataError

    cfg = tiny_cfg.model_copy(deep=True)
    cfg.data = cfg.data.model_copy(update={"kind": "folder", "root": str(tmp_path / "nothing")})
    with pytest.raises(DataError, match=r"nothing: dataset folder not found"):
        train(cfg, run_dir=tmp_path / "run", verbose=False)
    assert not (tmp_path / "run").exists()


def test_metrics_rows_carry_validation_only_when_it_ran(tiny_cfg, tmp_path) -> None:
    import pandas as pd

    cfg = tiny_cfg.model_copy(deep=True)
    cfg.trainer = cfg.trainer.model_copy(update={"max_epochs": 4, "check_val_every_n_epoch": 2})
    train(cfg, run_dir=tmp_path / "run", verbose=False)
    df = pd.read_csv(tmp_path / "run" / "metrics.csv")
    has_val = df["val/loss"].notna().tolist()
    assert has_val == [False, True, False, True], "stale validation values must not be copied forward"
    assert df["train/loss"].notna().all()


def _schedule_factor(
    epoch: int, warm: int, total: int, kind: str, step: int = 10, gamma: float = 0.1
) -> float:
    # The schedule the README documents, written out in closed form (independent of torch's schedulers).
    import math

    if epoch < warm:
        return (epoch + 1) / (warm + 1)
    if kind == "step":
        return gamma ** ((epoch - warm) // step)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (epoch - warm) / max(1, total - warm))))


@pytest.mark.parametrize("kind", ["cosine", "step"])
@pytest.mark.parametrize("warm", [0, 1, 3])
def test_learning_rate_schedule_is_the_documented_one(kind: str, warm: int) -> None:
    import torch

    from tinct.core.config import OptimConfig
    from tinct.engine.task import build_scheduler

    o = OptimConfig(lr=0.2, scheduler=kind, warmup_epochs=warm, step_size=2, gamma=0.5)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=o.lr)
    sched = build_scheduler(opt, o, max_epochs=9)
    for epoch in range(9):
        want = o.lr * _schedule_factor(epoch, warm, 9, kind, step=2, gamma=0.5)
        assert opt.param_groups[0]["lr"] == pytest.approx(want, abs=1e-12), epoch
        opt.step()
        sched.step()


def test_resume_with_more_epochs_follows_the_new_schedule(tiny_cfg, tmp_path) -> None:
    import pandas as pd

    cfg = tiny_cfg.model_copy(update={"optim": tiny_cfg.optim.model_copy(update={"warmup_epochs": 1})})
    run_dir = tmp_path / "sched"
    train(cfg, run_dir=run_dir, verbose=False)  # 2 epochs: the cosine reaches zero at its end
    more = cfg.model_copy(update={"trainer": cfg.trainer.model_copy(update={"max_epochs": 5})})
    train(more, run_dir=run_dir, resume=True, verbose=False)
    # metrics.csv logs the rate after the epoch's scheduler step: the rate of epoch e + 1
    lrs = pd.read_csv(run_dir / "metrics.csv")["lr"].tolist()
    want = [cfg.optim.lr * _schedule_factor(e + 1, 1, 2, "cosine") for e in range(2)]
    want += [cfg.optim.lr * _schedule_factor(e + 1, 1, 5, "cosine") for e in range(2, 5)]
    assert lrs[1] == 0 and lrs[2] > 0  # the finished schedule ended at zero; the new budget goes on
    assert lrs == pytest.approx(want, rel=1e-6)


def _snapshot(folder) -> dict:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_failed_resume_changes_nothing_in_the_run_folder(tiny_cfg, tmp_path) -> None:
    from tinct.core.exceptions import ConfigError

    run_dir = tmp_path / "r"
    one = tiny_cfg.model_copy(deep=True)
    one.trainer.max_epochs = 1
    train(one, run_dir=run_dir, verbose=False)
    before = _snapshot(run_dir)
    # a config change that changes the network: refused before anything is written
    wider = RunDir(run_dir).config({"model.width": 8, "trainer.max_epochs": 2})
    with pytest.raises(ConfigError) as info:
        train(wider, run_dir=run_dir, resume=True, verbose=False)
    message = str(info.value)
    assert str(run_dir) in message and "last.ckpt" in message and "cannot resume" in message
    assert "model.width: 4 -> 8" in message and "shape" in message and "trainer.max_epochs" in message
    assert _snapshot(run_dir) == before
    assert RunDir(run_dir).config() == one  # config.yaml still describes the checkpoint
    # a zero-byte last.ckpt: named, nothing else touched
    last = run_dir / "checkpoints" / "last.ckpt"
    kept = last.read_bytes()
    last.write_bytes(b"")
    before = _snapshot(run_dir)
    more = RunDir(run_dir).config({"trainer.max_epochs": 2})
    with pytest.raises(RunDirError, match=r"last\.ckpt: truncated or not a checkpoint \(0 bytes"):
        train(more, run_dir=run_dir, resume=True, verbose=False)
    assert _snapshot(run_dir) == before
    # the run still resumes with an allowed override once its checkpoint is back
    last.write_bytes(kept)
    m = train(more, run_dir=run_dir, resume=True, verbose=False)
    assert m["epochs"] == 2 and RunDir(run_dir).config().trainer.max_epochs == 2


class _FailOnFitStart(__import__("lightning").Callback):
    # Lightning calls on_fit_start after restoring the weights, before the optimiser state and training
    def on_fit_start(self, trainer, pl_module) -> None:
        raise RuntimeError("restore failed")


def test_a_resume_that_fails_inside_lightning_keeps_the_old_config(tiny_cfg, tmp_path) -> None:
    run_dir = tmp_path / "r"
    one = tiny_cfg.model_copy(deep=True)
    one.trainer.max_epochs = 1
    train(one, run_dir=run_dir, verbose=False)
    before = _snapshot(run_dir)
    more = RunDir(run_dir).config({"trainer.max_epochs": 2})
    with pytest.raises(RuntimeError, match="restore failed"):
        train(more, run_dir=run_dir, resume=True, callbacks=[_FailOnFitStart()], verbose=False)
    assert _snapshot(run_dir) == before  # config.yaml is written once training starts
