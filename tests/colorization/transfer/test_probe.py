"""Linear probes per encoder block: feature sizes, BatchNorm calibration, C by validation, the bootstrap
margin, and ``probe`` end to end (files, resuming from the cache, a classification run, bad input)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from tinct.colorization.siggraph import SIGGRAPHNet
from tinct.colorization.transfer import probe as probe_module
from tinct.colorization.transfer.data import ClassificationDataConfig
from tinct.colorization.transfer.encoders import MAX_BLOCKS, encoder_blocks
from tinct.colorization.transfer.probe import (
    best_probe_margin,
    calibrate_batchnorm,
    encoder_from_source,
    extract_features,
    fit_probe,
    linear_probes,
    pooled_size,
    random_encoder,
)
from tinct.colorization.transfer.probe_report import probe
from tinct.core.exceptions import ConfigError, DataError, RunDirError

SMALL = {"resize": 40, "eval_size": 32, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 16}


class _Images(Dataset[dict[str, Tensor]]):
    def __init__(self, n: int, size: int = 32) -> None:
        self.images = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"image": self.images[i]}


def _photo(cls: int, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """Class = dominant hue and a texture the lightness shows (horizontal, vertical stripes or blobs)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    texture = [
        np.sin(yy * 1.5 + phase),
        np.sin(xx * 0.7 + phase),
        np.sin(xx * 0.3) * np.cos(yy * 0.3 + phase),
    ]
    bgr = np.array([[60, 60, 200], [60, 200, 60], [200, 60, 60]], np.float32)[cls]
    image = bgr + 50 * texture[cls][..., None] + rng.normal(0, 8, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _folder(root: Path, classes: int = 3, per_class: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(root / f"class{c}" / f"p{i}.png"), _photo(c, rng))
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("probe") / "photos")


@pytest.fixture(scope="module")
def colorizer(tmp_path_factory: pytest.TempPathFactory, make_colorizer_file: Callable[..., Path]) -> Path:
    return make_colorizer_file(tmp_path_factory.mktemp("model") / "sig.pt")


def test_pooled_size() -> None:
    assert [pooled_size(c, 4096) for c in (16, 64, 128, 512, 8192)] == [16, 8, 6, 3, 1]
    assert pooled_size(8, 256) == 6  # sqrt(32) = 5.66
    with pytest.raises(ValueError, match="positive"):
        pooled_size(0, 4096)


@pytest.mark.parametrize("arch", ["eccv16", "siggraph17"])
def test_feature_sizes_per_block(arch: str) -> None:
    encoder = random_encoder(arch, 0.125, MAX_BLOCKS, seed=0)
    data = _Images(5)
    blocks = extract_features(encoder, data, features=256, batch_size=2)
    assert len(blocks) == MAX_BLOCKS
    for c, f in zip(encoder.channels, blocks, strict=True):
        s = pooled_size(c, 256)
        assert f.shape == (5, c * s * s) and f.dtype == np.float32
        assert abs(f.shape[1] - 256) / 256 < 0.2, (c, f.shape)
        assert np.isfinite(f).all()
    again = extract_features(encoder, data, features=256, batch_size=4)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(blocks, again, strict=True))


def test_random_encoder_seeds_and_calibration() -> None:
    a, b = random_encoder("siggraph17", 0.125, 3, seed=0), random_encoder("siggraph17", 0.125, 3, seed=1)
    assert not torch.equal(a.blocks[0][0].weight, b.blocks[0][0].weight)
    assert not any(p.requires_grad for p in a.parameters()) and not a.training
    weights = {k: v.clone() for k, v in a.state_dict().items() if "running" not in k}
    norms = [m for m in a.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(m.running_mean == 0) and torch.all(m.running_var == 1) for m in norms)
    calibrate_batchnorm(a, _Images(6), batch_size=4)
    assert not a.training and all(m.momentum == 0.1 for m in norms)
    for m in norms:
        assert not torch.allclose(m.running_mean, torch.zeros_like(m.running_mean))
        assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))
    state = a.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items() if "num_batches" not in k)


def test_fit_probe_chooses_c_by_validation() -> None:
    rng = np.random.default_rng(0)

    def split(n: int, shares: list[float], signal: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(3, size=n, p=shares)
        return rng.normal(size=(n, 8)) + signal * np.eye(3, 8)[y], y

    # Training photos mostly of class 0: a vanishing C predicts the majority class (the intercept is not
    # penalised), so balanced validation photos prefer the larger C, whatever order Cs come in.
    train, val, test = split(90, [0.8, 0.1, 0.1]), split(60, [1 / 3] * 3), split(60, [1 / 3] * 3)
    for Cs in [(1e-6, 10.0), (10.0, 1e-6)]:
        r = fit_probe(train, val, test, Cs=Cs)
        assert r["C"] == 10.0 and r["val_accuracy"] > 0.9 and r["converged"]
    weak = fit_probe(train, val, test, Cs=(1e-6,))
    assert weak["val_accuracy"] == pytest.approx(np.mean(val[1] == 0))
    # Separable: every C scores 1.0 on validation; the tie goes to the lowest validation log-loss.
    separable = split(60, [1 / 3] * 3, signal=20.0)
    r = fit_probe(split(60, [1 / 3] * 3, signal=20.0), separable, separable, Cs=(1.0, 0.01, 0.1))
    assert r["C"] == 1.0 and r["test_accuracy"] == 1.0
    # A validation split of majority-class photos only: a vanishing C (the majority class everywhere) ties
    # with a C that learnt on accuracy, but not on log-loss; the test photos of the other classes show it.
    majority = (val[0][val[1] == 0][:3], val[1][val[1] == 0][:3])
    r = fit_probe(train, majority, test, Cs=(1e-6, 10.0))
    assert r["val_accuracy"] == 1.0 and r["C"] == 10.0 and r["test_accuracy"] > 0.8
    assert r["test_predictions"].dtype == np.int64 and len(r["test_predictions"]) == 60
    with pytest.raises(DataError, match="at least two classes"):
        fit_probe((train[0], np.zeros(90, int)), val, test)
    with pytest.raises(ValueError, match="different feature counts"):
        fit_probe(train, (val[0][:, :4], val[1]), test)


def _probes(val: list[float], correct: list[int], y: np.ndarray) -> list[dict[str, object]]:
    """One seed's probes: block b has validation accuracy val[b] and gets the first correct[b] test photos
    right."""
    out = []
    for b, (v, k) in enumerate(zip(val, correct, strict=True)):
        pred = y.copy()
        pred[k:] = 1 - y[k:]
        out.append({"block": b + 1, "val_accuracy": v, "test_predictions": pred})
    return out


def test_best_probe_margin_is_chosen_by_validation() -> None:
    y = np.array([0, 1] * 5)
    results = {
        "test_labels": y,
        "encoders": {
            # Block 1 is better on the test photos, but validation chooses block 2: the test chooses nothing.
            "pretrained": [_probes([0.6, 0.8], [9, 7], y)],
            "random": [_probes([0.7, 0.4], [5, 10], y), _probes([0.3, 0.5], [10, 3], y)],
        },
    }
    m = best_probe_margin(results, n_boot=4000)
    assert m["a_blocks"] == [2] and m["b_blocks"] == [1, 2]
    assert m["a_accuracy"] == pytest.approx(0.7) and m["b_accuracy"] == pytest.approx(0.4)
    assert m["margin"] == pytest.approx(0.3)
    assert m["per_seed"] == pytest.approx([0.2, 0.4])
    lo, hi = m["ci95"]
    assert lo < 0.3 < hi and abs(m["mean"] - 0.3) < 0.02 and m["n_test"] == 10
    assert best_probe_margin(results, n_boot=100) == best_probe_margin(results, n_boot=100)
    with pytest.raises(KeyError, match="supervised"):
        best_probe_margin(results, "supervised")


def test_encoder_from_exported_colorizers(colorizer: Path) -> None:
    encoder, text = encoder_from_source(colorizer)
    net = SIGGRAPHNet(width=0.125)
    net.load_state_dict(torch.load(colorizer, weights_only=True)["state_dict"])
    assert encoder.arch == "siggraph17" and encoder.width == 0.125 and str(colorizer) in text
    assert len(encoder.blocks) == MAX_BLOCKS and not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())
    for mine, theirs in zip(encoder.blocks, encoder_blocks(net), strict=True):
        for (k, v), w in zip(mine.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.equal(v, w), k


def test_encoder_from_shipped_colorizers() -> None:
    from tinct.colorization.colorize import load_colorizer
    from tinct.colorization.pretrained import ECCV16_COLORIZER, INSTANCE_COLORIZER

    encoder, _ = encoder_from_source(ECCV16_COLORIZER.path())
    assert encoder.arch == "eccv16" and encoder.width == 0.25 and len(encoder.blocks) == MAX_BLOCKS
    encoder, _ = encoder_from_source(INSTANCE_COLORIZER.path())
    full = load_colorizer(INSTANCE_COLORIZER.path())[0].net.full
    assert encoder.arch == "siggraph17"
    assert torch.equal(encoder.blocks[6][0].weight, encoder_blocks(full)[6][0].weight)


def test_probe_end_to_end_and_resume(
    photos: Path, colorizer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "probe"
    table = probe(colorizer, photos, out, random_seeds=2, features=256, progress=False, **SMALL)
    assert list(table["encoder"].unique()) == ["pretrained", "random"]
    assert len(table) == 2 * MAX_BLOCKS
    assert (table["seeds"] == [1] * MAX_BLOCKS + [2] * MAX_BLOCKS).all()
    assert table[["val_accuracy", "test_accuracy"]].stack().between(0, 1).all()
    assert (table["features"] == table["channels"] * table["pooled"] ** 2).all()
    assert table.groupby("encoder")["best"].sum().tolist() == [1, 1]
    for name in ("probe.csv", "probe.json", "probe.md", "figures/probe_accuracy.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "probe.json").read_text())
    margin = report["margin"]
    assert report["data"]["eval_size"] == 32 and report["sizes"]["test"] > 0
    assert margin["ci95"][0] <= margin["margin"] <= margin["ci95"][1] and len(margin["per_seed"]) == 2
    md = (out / "probe.md").read_text()
    assert "| block | pretrained | random (2 seeds) |" in md and "**" in md and "95% paired bootstrap" in md
    pd.testing.assert_frame_equal(pd.read_csv(out / "probe.csv"), table, check_dtype=False)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been used")

    for name in ("extract_features", "fit_probe", "calibrate_batchnorm"):
        monkeypatch.setattr(probe_module, name, fail)
    again = probe(colorizer, photos, out, random_seeds=2, features=256, progress=False, **SMALL)
    pd.testing.assert_frame_equal(again, table)
    assert json.loads((out / "probe.json").read_text())["margin"] == margin


def test_linear_probes_feature_cache(photos: Path, colorizer: Path, tmp_path: Path) -> None:
    """Fitted probes are cached beside the features; with other Cs the features alone are reused."""
    encoder, _ = encoder_from_source(colorizer)
    data = ClassificationDataConfig(root=str(photos), **SMALL)
    table, results = linear_probes({"pretrained": encoder}, data, features=128, Cs=(0.1,), cache_dir=tmp_path)
    assert (tmp_path / "pretrained" / "test_block7.npy").is_file()
    assert len(results["test_labels"]) == results["sizes"]["test"]
    stamp = (tmp_path / "pretrained" / "train_block1.npy").stat().st_mtime_ns
    table2, _ = linear_probes({"pretrained": encoder}, data, features=128, Cs=(1.0,), cache_dir=tmp_path)
    assert (tmp_path / "pretrained" / "train_block1.npy").stat().st_mtime_ns == stamp
    assert (table2["C"] == 1.0).all() and (table["C"] == 0.1).all()


def test_bad_inputs(photos: Path, colorizer: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        probe(colorizer, tmp_path / "missing", tmp_path / "out", random_seeds=0, progress=False)
    (tmp_path / "one" / "only").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "one" / "only" / "a.png"), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(DataError, match="1 class folder"):
        probe(colorizer, tmp_path / "one", tmp_path / "out", random_seeds=0, progress=False)
    with pytest.raises(RunDirError, match=r"nothing\.pt"):
        encoder_from_source(tmp_path / "nothing.pt")
    with pytest.raises(ConfigError, match="data: a folder"):
        probe(colorizer, None, tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="random_seeds"):
        probe(colorizer, photos, tmp_path / "out", random_seeds=-1, progress=False)
    with pytest.raises(ConfigError, match="unknown data setting"):
        probe(colorizer, photos, tmp_path / "out", progress=False, sizes=3)
    with pytest.raises(RunDirError, match="not a classification run"):
        probe(colorizer, photos, tmp_path / "out", supervised=colorizer, progress=False)
    assert not (tmp_path / "out" / "probe.csv").exists()


def test_probe_of_a_classification_run(photos: Path, tmp_path: Path) -> None:
    from tinct.colorization.transfer.task import ClassificationConfig, ClassificationModelConfig
    from tinct.engine import train

    cfg = ClassificationConfig(
        name="tiny", output_dir=str(tmp_path / "runs"),
        data=ClassificationDataConfig(root=str(photos), crop=32, **SMALL),
        model=ClassificationModelConfig(arch="eccv16", width=0.125, blocks=3, head="linear"),
    )  # fmt: skip
    cfg.trainer.max_epochs = 1
    cfg.trainer.progress = "none"
    run = Path(train(cfg, run_dir=tmp_path / "runs" / "tiny", verbose=False, test=False)["run_dir"])
    encoder, text = encoder_from_source(run)
    assert encoder.arch == "eccv16" and len(encoder.blocks) == 3 and "classification run" in text
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    table = probe(run, None, tmp_path / "out", supervised=run, random_seeds=1, features=128, progress=False)
    assert list(table["encoder"].unique()) == ["pretrained", "random", "supervised"]
    assert (table.groupby("encoder").size() == 3).all()
    report = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert report["data"]["root"] == str(photos) and report["data"]["eval_size"] == 32
