"""Colorization task: loss against its definition, prior, full-resolution joining, runs, commands, bad input."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinct.cli.main import main
from tinct.color.lab import rgb_to_lab
from tinct.color.quantize import (
    ab_bins,
    annealed_mean,
    decode_mode,
    nearest_bin,
    rebalancing_weights,
    reference_prior,
    soft_encode_dense,
)
from tinct.colorization.colorize import colorize, evaluate_colorization, load_colorizer
from tinct.colorization.pretrained import export_colorizer, load_colorizer_file
from tinct.colorization.task import (
    ColorizationConfig,
    ColorizationDataConfig,
    ColorizationModelConfig,
    ColorizationTask,
    data_prior,
)
from tinct.core.exceptions import ConfigError, DataError, RunDirError
from tinct.engine import train


def _task(**model: object) -> ColorizationTask:
    torch.manual_seed(0)
    return ColorizationTask(ColorizationConfig(model=ColorizationModelConfig(width=0.125, **model)))


def _photos(folder: Path, n: int = 6, size: tuple[int, int] = (72, 56)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = (rng.random((6, 7, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"p{i}.png"), cv2.resize(small, size, interpolation=cv2.INTER_CUBIC))
    return folder


@pytest.mark.parametrize("rebalance", [True, False])
def test_classification_loss_is_rebalanced_soft_cross_entropy(rebalance: bool) -> None:
    task = _task(rebalance=rebalance)
    task.set_prior(reference_prior(dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 313, 3, 4, generator=g)
    ab = torch.randn(2, 2, 3, 4, generator=g) * 40
    # The definition (Zhang et al. 2016, eq. 2): dense soft-encoded target, weight of the nearest bin.
    target = soft_encode_dense(ab, k=5, sigma=5.0)
    ce = -(target * F.log_softmax(logits, 1)).sum(1)
    if rebalance:
        ce = ce * rebalancing_weights(reference_prior(dtype=torch.float64), 0.5).float()[nearest_bin(ab)]
    assert torch.allclose(task.loss(logits, ab), ce.mean(), rtol=1e-5)


def test_regression_loss_and_decoding() -> None:
    task = _task(head="regression", rebalance=False)
    out = torch.randn(1, 2, 3, 3)
    ab = torch.randn(1, 2, 3, 3) * 30
    assert torch.allclose(task.loss(out, ab), (out - ab / 100).square().sum(1).mean())
    assert torch.equal(task.colorizer().decode(out), out * 100)


def test_decoding_temperature() -> None:
    colorizer = _task().colorizer()
    logits = torch.randn(1, 313, 2, 2)
    assert torch.equal(colorizer.decode(logits, 0.0), decode_mode(logits))
    assert torch.allclose(colorizer.decode(logits, 1.0), annealed_mean(logits, 1.0))
    assert torch.allclose(colorizer.decode(logits), annealed_mean(logits, 0.38))


def test_data_prior_and_weights() -> None:
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    prior = data_prior([red, red[:8]], sigma=5.0)
    assert prior.dtype == torch.float64 and abs(float(prior.sum()) - 1) < 1e-12
    ab = rgb_to_lab(torch.tensor([200 / 255, 0.0, 0.0]), dim=-1)[1:]
    assert prior.argmax() == nearest_bin(ab, dim=-1)
    task = _task()
    task.set_prior(prior)
    w = task.class_weights.double()
    assert abs(float((prior * w).sum()) - 1) < 1e-5  # E_p[w] = 1
    assert int(w.argmin()) == int(prior.argmax())


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (300, 41)])
def test_full_resolution_output_keeps_input_lightness(size: tuple[int, int]) -> None:
    colorizer = _task().colorizer().eval()
    colorizer.infer_size = 32
    rgb = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    out_rgb, lab = colorizer(rgb)
    assert out_rgb.shape == rgb.shape and lab.shape == rgb.shape
    assert torch.equal(lab[:, 0], rgb_to_lab(rgb)[:, 0])
    assert 0 <= out_rgb.min() and out_rgb.max() <= 1
    assert ab_bins().min() - 1e-3 <= lab[:, 1:].min() and lab[:, 1:].max() <= ab_bins().max() + 1e-3


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"data\.root"):
        load_config_from({"task": "colorization", "data": {"kind": "folder"}})
    with pytest.raises(ConfigError, match="multiple of 8"):
        load_config_from({"task": "colorization", "data": {"crop": 100}})
    with pytest.raises(ConfigError, match=r"model\.head"):
        load_config_from({"task": "colorization", "model": {"head": "ordinal"}})


def load_config_from(raw: dict) -> object:
    from tinct.engine.config import config_from_dict

    return config_from_dict(raw)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colorization")
    photos = _photos(root / "photos", n=8)
    cfg = ColorizationConfig(
        name="tiny",
        output_dir=str(root / "runs"),
        data=ColorizationDataConfig(
            kind="folder", root=str(photos), resize=48, crop=32, eval_size=40, samples_per_epoch=8,
            batch_size=4, val_fraction=0.2, test_fraction=0.2,
        ),
        model=ColorizationModelConfig(width=0.125, infer_size=48),
    )  # fmt: skip
    cfg.trainer.max_epochs = 2
    cfg.trainer.progress = "none"
    metrics = train(cfg, run_dir=root / "runs" / "tiny", verbose=False)
    for key in (
        "test/auc_raw",
        "test/auc_rebalanced",
        "test/psnr",
        "test/colorfulness",
        "val/auc_rebalanced",
    ):
        assert np.isfinite(metrics[key]), key
    return Path(metrics["run_dir"])


def test_run_keeps_its_prior(tiny_run: Path) -> None:
    state = torch.load(tiny_run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not torch.allclose(state["prior"], reference_prior())  # estimated on the training photos
    assert abs(float(state["prior"].double().sum()) - 1) < 1e-5


def test_colorize_and_evaluate_a_run(tiny_run: Path, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "in", n=2, size=(45, 31))
    cv2.imwrite(str(photos / "gray.png"), np.full((20, 30), 90, np.uint8))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    rows = colorize([photos], tmp_path / "out", tiny_run, progress=False)
    by_name = {Path(r["image"]).name: r for r in rows}
    assert "error" in by_name["broken.jpg"] and "broken.jpg" in by_name["broken.jpg"]["error"]
    assert "grayscale" in by_name["gray.png"]["note"]
    out = cv2.imread(by_name["p0.png"]["output"])
    assert out.shape == (31, 45, 3)
    panel = cv2.imread(by_name["p0.png"]["panel"])
    assert panel.shape[1] == 3 * 45 + 2 * 4  # grayscale | predicted | original
    assert cv2.imread(by_name["gray.png"]["panel"]).shape[1] == 2 * 30 + 4  # no original to show
    assert (tmp_path / "out" / "colorize.csv").is_file()
    # Sub-folders are kept: equal file names in two folders do not overwrite each other.
    nested = _photos(tmp_path / "nested", n=1)
    _photos(nested / "again", n=1)
    rows = colorize([nested], tmp_path / "out2", tiny_run, progress=False)
    assert sorted(Path(r["output"]).relative_to(tmp_path / "out2").as_posix() for r in rows) == [
        "again/p0_color.png",
        "p0_color.png",
    ]

    with pytest.warns(UserWarning, match="skipped"):
        m = evaluate_colorization(tiny_run, photos, tmp_path / "m.json", progress=False)
    saved = json.loads((tmp_path / "m.json").read_text())
    for key in ("auc_raw", "auc_rebalanced", "psnr", "colorfulness"):
        assert 0 <= saved[key] == saved["model"][key] and key in saved["gray"]
    assert m["n_images"] == 2 and len(m["skipped"]) == 2
    assert m["gray"]["colorfulness"] < 0.5  # ab = 0 has (almost, after 8-bit clipping) no colour
    assert (tiny_run / "colorization_metrics.json").is_file()


def test_export_round_trip(tiny_run: Path, tmp_path: Path) -> None:
    path = export_colorizer(tiny_run, tmp_path / "w.pt", {"recipe": ["tinct train ..."]}, evaluate=True)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["recipe"] == ["tinct train ..."] and card["parameters"] > 0
    assert card["training"]["epochs"] == 2 and card["file_bytes"] == path.stat().st_size
    assert card["test_photos"] and 0 < card["test_metrics"]["auc_raw"] <= 1
    exported, _ = load_colorizer_file(path)
    original, _ = load_colorizer(tiny_run)
    rgb = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    a = original(rgb)[1]
    b = exported(rgb)[1]
    assert torch.equal(a[:, 0], b[:, 0]) and (a - b).abs().max() < 0.5  # float16 storage


def test_bad_models_and_data(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        load_colorizer(tmp_path / "nothing")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(RunDirError, match="not a tinct colorizer"):
        load_colorizer(tmp_path / "other.pt")
    with pytest.raises(DataError, match="not found"):
        evaluate_colorization(tiny_run, tmp_path / "missing", None)
    with pytest.raises(DataError, match="no photos"):
        colorize([tmp_path / "missing"], tmp_path / "out", tiny_run)


def test_cli(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "in", n=2)
    assert main(["colorize", str(photos), "--out", str(tmp_path / "out"), "--model", str(tiny_run),
                 "--temperature", "0.2"]) == 0  # fmt: skip
    assert len(list((tmp_path / "out").glob("*_color.png"))) == 2
    out = tmp_path / "metrics.json"
    code = main(
        ["evaluate", "colorization", "--model", str(tiny_run), "--data", str(photos), "--out", str(out)]
    )
    assert code == 0 and set(json.loads(out.read_text())["gray"]) >= {"auc_raw", "psnr"}
    assert "auc_rebalanced" in capsys.readouterr().out
    assert main(["evaluate", "colorization", "--model", str(tiny_run)]) == 2  # no --data
    assert main(["colorize", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 2
    assert main(["export", str(tiny_run), "--out", str(tmp_path / "x.pt")]) == 0
    assert (
        main(["colorize", str(photos), "--out", str(tmp_path / "o3"), "--model", str(tmp_path / "x.pt")]) == 0
    )
