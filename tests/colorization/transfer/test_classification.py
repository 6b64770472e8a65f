"""task: classification (tinct.colorization.transfer): data, splits, freezing, metrics, bad inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tinct.colorization.transfer.data import (
    ClassificationDataConfig,
    class_folders,
    classification_splits,
    group_order,
)
from tinct.colorization.transfer.encoders import ColorizationEncoder, ImageClassifier, encoder_blocks
from tinct.colorization.transfer.metrics import ConfusionMetrics, group_confusion_share
from tinct.core.exceptions import ConfigError, DataError

TINY = {"resize": 40, "crop": 32, "eval_size": 32, "batch_size": 8, "val_fraction": 0.2, "test_fraction": 0.3}


def _config(root: Path, out: Path, **model: object) -> object:
    from tinct.engine.config import config_from_dict

    data = {"root": str(root), **TINY, **model.pop("data", {})}  # type: ignore[dict-item]
    return config_from_dict(
        {
            "task": "classification",
            "output_dir": str(out),
            "data": data,
            "model": {"width": 0.125, **model},
            "trainer": {"max_epochs": 1, "progress": "none"},
        }
    )


@pytest.fixture(scope="module")
def hues(make_hue_folder: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hue_folder(tmp_path_factory.mktemp("hues") / "photos", per_class=10)


def test_splits_disjoint_complete_and_colorizations(hues: Path) -> None:
    from tinct.colorization.photos import list_photos, split_photos

    classes, splits = classification_splits(ClassificationDataConfig(root=str(hues), **TINY))
    assert classes == ["blue", "green", "red"]
    sets = {k: {p for p, _ in v} for k, v in splits.items()}
    assert (
        not sets["train"] & sets["val"]
        and not sets["train"] & sets["test"]
        and not sets["val"] & sets["test"]
    )
    assert set().union(*sets.values()) == set(list_photos(hues))
    assert all(classes[y] == p.parent.name for v in splits.values() for p, y in v)
    # the split colorization runs make of the same folder: a colorizer trained there never saw a test photo
    colorization = split_photos(list_photos(hues), 0.2, 0.3, 0)
    assert {k: set(v) for k, v in colorization.items()} == sets


def test_split_file_is_written_once_and_reused(hues: Path, tmp_path: Path) -> None:
    split_file = tmp_path / "split.json"
    d = ClassificationDataConfig(root=str(hues), split_file=str(split_file), **TINY)
    _, first = classification_splits(d)
    stored = json.loads(split_file.read_text())
    assert sorted(stored["test"]) == sorted(p.relative_to(hues).as_posix() for p, _ in first["test"])
    moved = d.model_copy(update={"split_seed": 7})  # another seed would split otherwise: the file wins
    _, again = classification_splits(moved)
    assert again == first


def test_bad_folders(make_hue_folder: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        class_folders(tmp_path / "missing")
    one = make_hue_folder(tmp_path / "one", per_class=2, hues={"red": 0})
    with pytest.raises(DataError, match=r"one.*1 class folder"):
        class_folders(one)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes((one / "red" / "0.png").read_bytes())
    with pytest.raises(DataError, match="belong in class folders"):
        class_folders(flat)
    empty = make_hue_folder(tmp_path / "empty", per_class=2)
    (empty / "yellow").mkdir()
    with pytest.raises(DataError, match=r"yellow.*holds no photo"):
        class_folders(empty)


def test_unreadable_photo_is_named_and_skipped(make_hue_folder: Callable[..., Path], tmp_path: Path) -> None:
    from tinct.engine.train import train

    root = make_hue_folder(tmp_path / "photos", per_class=6)
    (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    cfg = _config(root, tmp_path, head="linear", data={"val_fraction": 0.0, "test_fraction": 0.0})
    with pytest.warns(UserWarning, match=r"broken\.png"):
        metrics = train(cfg, run_dir=tmp_path / "run", verbose=False)  # type: ignore[arg-type]
    assert np.isfinite(metrics["test/accuracy"])


def test_config_checks(hues: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="freeze_until"):
        _config(hues, tmp_path, blocks=3, freeze_until="block4")
    with pytest.raises(ConfigError, match="freeze_until"):
        _config(hues, tmp_path, freeze_until="top")
    with pytest.raises(ConfigError, match="lightness"):
        _config(hues, tmp_path, init="x.pt", data={"input": "color"})
    with pytest.raises(ConfigError, match=r"data\.root"):
        from tinct.engine.config import config_from_dict

        config_from_dict({"task": "classification", "data": {}})
    assert _config(hues, tmp_path, freeze_until="block2").model.freeze_until == 2  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="names class"):
        group_order(["a", "b"], {"warm": ["a", "c"]})


@pytest.mark.parametrize("arch", ["eccv16", "siggraph17"])
def test_init_loads_colorizer_blocks(
    make_colorizer_file: Callable[..., Path], arch: str, tmp_path: Path
) -> None:
    from tinct.colorization.networks import COLORIZERS
    from tinct.colorization.pretrained import load_colorizer_file

    source = make_colorizer_file(tmp_path / "c.pt", arch)
    net = load_colorizer_file(source)[0].net
    enc = ColorizationEncoder(arch, 0.125, blocks=5)
    enc.load_colorizer(source)
    for mine, theirs in zip(enc.blocks, encoder_blocks(net)[:5], strict=True):
        for (k, a), b in zip(mine.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.equal(a, b.to(a.dtype)), k
    # the encoder's blocks compute what the colorization network's encoder computes
    x = enc.prepare(torch.rand(2, 3, 32, 32))
    full = COLORIZERS.get(arch)(width=0.125)
    full.load_state_dict(net.state_dict())
    enc7 = ColorizationEncoder(arch, 0.125, blocks=7)
    enc7.load_colorizer(source)
    with torch.no_grad():
        assert torch.allclose(enc7.eval()(x), full.eval().forward_features(x), atol=1e-5)
    with pytest.raises(ConfigError, match="width"):
        ColorizationEncoder(arch, 0.25, blocks=5).load_colorizer(source)


def test_freezing_keeps_weights_and_batchnorm_statistics(
    make_colorizer_file: Callable[..., Path], hues: Path, tmp_path: Path
) -> None:
    from tinct.engine.train import train

    source = make_colorizer_file(tmp_path / "c.pt")
    cfg = _config(hues, tmp_path, init=str(source), freeze_until="block2", blocks=3)
    train(cfg, run_dir=tmp_path / "run", verbose=False)  # type: ignore[arg-type]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    enc = ColorizationEncoder("siggraph17", 0.125, blocks=3)
    enc.load_colorizer(source)
    before = {f"net.encoder.{k}": v for k, v in enc.state_dict().items()}
    frozen = [k for k in before if k.startswith(("net.encoder.blocks.0.", "net.encoder.blocks.1."))]
    trained = [k for k in before if k.startswith("net.encoder.blocks.2.") and "num_batches" not in k]
    assert any("running_mean" in k for k in frozen)
    for k in frozen:
        assert torch.equal(state[k], before[k]), f"{k} changed although frozen"
    assert all(not torch.equal(state[k], before[k]) for k in trained), "block 3 was not trained"


def test_confusion_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    metric = ConfusionMetrics(["a", "b", "c", "d"])
    for i in range(0, 200, 64):  # batches of unequal size: pooled over samples, not batches
        metric.update(torch.as_tensor(p[i : i + 64]), torch.as_tensor(y[i : i + 64]))
    scores = metric.compute()
    assert scores["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert scores["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    recall = recall_score(y, p, average=None)
    assert [scores[f"accuracy_{c}"] for c in "abcd"] == pytest.approx(list(recall))


def test_group_confusion_share() -> None:
    m = np.array([[5, 3, 1, 0], [2, 5, 0, 0], [0, 0, 5, 4], [0, 0, 0, 5]])
    # off-diagonal 10; inside groups: (0,1) 3 + (1,0) 2 = 5 (class 3 is in no group)
    assert group_confusion_share(m, ["y", "y", "r", ""]) == pytest.approx(0.5)
    order, groups = group_order(["a", "b", "c", "d"], {"r": ["c"], "y": ["b", "a"]})
    assert order == [2, 0, 1, 3] and groups == ["r", "y", "y", ""]


def test_evaluate_and_predict_a_trained_run(hues: Path, tmp_path: Path) -> None:
    import shutil

    from tinct.engine.evaluate import evaluate, predict
    from tinct.engine.train import train

    cfg = _config(
        hues, tmp_path, head="linear", data={"groups": {"warm": ["red"], "cool": ["green", "blue"]}}
    )
    metrics = train(cfg, run_dir=tmp_path / "run", verbose=False)  # type: ignore[arg-type]
    report = json.loads((tmp_path / "run" / "classification_metrics.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["test/accuracy"])
    assert report["classes"] == ["blue", "green", "red"] and report["order"] == [2, 0, 1]
    assert np.asarray(report["matrix"]).sum() == report["n"]
    assert (tmp_path / "run" / "figures" / "confusion_matrix.png").is_file()
    # a folder with a subset of the classes is labelled by the model's class indices
    subset = tmp_path / "subset"
    shutil.copytree(hues / "red", subset / "red")
    shutil.copytree(hues / "blue", subset / "blue")
    scores = evaluate(tmp_path / "run", subset)
    assert 0.0 <= scores["test/accuracy"] <= 1.0
    unknown = tmp_path / "unknown"
    shutil.copytree(hues / "red", unknown / "red")
    shutil.copytree(hues / "blue", unknown / "purple")
    with pytest.raises(DataError, match="purple"):
        evaluate(tmp_path / "run", unknown)
    rows = predict(
        tmp_path / "run", [hues / "red" / "0.png", hues / "blue"], tmp_path / "pred", progress=False
    )
    assert len(rows) == 11 and all(r["class"] in ("blue", "green", "red") for r in rows)
    assert all(abs(sum(r[f"p_{c}"] for c in ("blue", "green", "red")) - 1) < 1e-5 for r in rows)


def test_image_classifier_heads() -> None:
    enc = ColorizationEncoder("siggraph17", 0.125, blocks=5, color=True)
    assert enc.prepare(torch.rand(1, 3, 16, 16)).shape[1] == 3
    for head in ("seed", "linear"):
        model = ImageClassifier(ColorizationEncoder("eccv16", 0.125, blocks=5), 4, head)
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="head"):
        ImageClassifier(enc, 4, "mlp")


def test_a_finished_run_is_the_same_experiment_with_its_classes_unset(hues: Path, tmp_path: Path) -> None:
    from tinct.engine.experiments import check_same_experiment, ensure_trained, with_updates
    from tinct.engine.run_dir import RunDir

    cfg = _config(hues, tmp_path, head="linear")
    assert cfg.model.classes is None  # type: ignore[attr-defined]
    assert ensure_trained(cfg, tmp_path / "run", quiet=True) == "trained"  # type: ignore[arg-type]
    assert RunDir(tmp_path / "run").config().model.classes == ["blue", "green", "red"]  # type: ignore[attr-defined]
    assert ensure_trained(cfg, tmp_path / "run", quiet=True) == "done"  # type: ignore[arg-type]
    # only the fields the task resolves are taken from the run: another model is still another experiment
    with pytest.raises(ConfigError, match="different model section"):
        check_same_experiment(RunDir(tmp_path / "run"), with_updates(cfg, {"model.head": "seed"}))  # type: ignore[arg-type]
