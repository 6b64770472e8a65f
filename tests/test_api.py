"""The batch API (tinct.colorize, tinct.estimate_illuminant, tinct.predict_patch) on paths, PIL images and
arrays, checked against the CLI's own outputs, ground truth of real and synthetic data, and properties that
must hold (lightness kept, batches equal single calls, hints change the colour)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tinct
from tinct import api
from tinct.color.difference import delta_e_ciede2000
from tinct.color.illuminant import angular_error
from tinct.color.lab import rgb_to_lab
from tinct.color.rgb import srgb_to_linear
from tinct.core.exceptions import ConfigError, DataError
from tinct.engine.modelfile import load_model


def _photo(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 5.0)], axis=-1)
    return ((0.8 * base + 0.2 * rng.random((h, w, 3))) * 255).astype(np.uint8)


def _lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float())[0].numpy()


def _run_dir(task: object, run: Path) -> Path:
    """A run directory (config.yaml, checkpoints/best.ckpt) holding ``task``, as training leaves one."""
    import yaml

    config = task.cfg.model_dump(mode="json")  # type: ignore[attr-defined]
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save({"state_dict": task.state_dict(), "tinct_config": config}, run / "checkpoints" / "best.ckpt")  # type: ignore[attr-defined]
    return run


# -- colorize ----------------------------------------------------------------------------------------


def test_colorize_input_types_agree_and_keep_lightness(tmp_path: Path) -> None:
    photo = _photo()
    path = tmp_path / "p.png"
    Image.fromarray(photo).save(path)
    from_array = tinct.colorize(photo)
    from_path = tinct.colorize(path)
    from_pil = tinct.colorize(Image.open(path))
    from_float = tinct.colorize(photo.astype(np.float32) / 255)
    assert from_array.shape == (48, 64, 3) and from_array.dtype == np.float32
    for other in (from_path, from_pil, from_float):
        np.testing.assert_allclose(other, from_array, atol=1e-5)
    # the output's L* is the input's (up to the clipping of out-of-gamut colours)
    diff = np.abs(_lightness(from_array) - _lightness(photo.astype(np.float32) / 255))
    assert np.median(diff) < 0.5
    # and it has colour: not the gray input
    gray = tinct.colorize(photo.mean(axis=2).astype(np.uint8))
    assert gray.shape == (48, 64, 3) and np.abs(gray[..., 0] - gray[..., 2]).mean() > 1e-3


def test_colorize_batches_equal_single_calls_and_the_cli(tmp_path: Path) -> None:
    photos = [_photo(seed=0), _photo(seed=1), _photo(40, 56, seed=2)]  # two of one size: one batch
    batch = tinct.colorize(photos)
    assert isinstance(batch, list) and len(batch) == 3
    for photo, out in zip(photos, batch, strict=True):
        np.testing.assert_allclose(tinct.colorize(photo), out, atol=1e-5)
    # tinct colorize (files, strips) writes the same colours, to the 8-bit rounding and strip arithmetic
    from tinct.cli.main import main

    Image.fromarray(photos[2]).save(tmp_path / "a.png")
    assert main(["colorize", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--no-panel"]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "a_color.png")).astype(np.float32) / 255
    assert np.abs(written - batch[2]).max() <= 2.5 / 255


def test_colorize_hints_change_the_colour_where_given() -> None:
    photo = np.full((64, 64, 3), 128, np.uint8)
    plain = tinct.colorize(photo)
    hinted = tinct.colorize(photo, hints=[{"x": 32, "y": 32, "rgb": [230, 30, 30], "radius": 3}])
    a_star = [
        float(rgb_to_lab(torch.from_numpy(x.transpose(2, 0, 1)))[1, 28:36, 28:36].mean())
        for x in (plain, hinted)
    ]
    assert a_star[1] - a_star[0] > 8.0  # redder where the red hint is (measured: +15 a* units)
    assert np.abs(hinted - plain).max() > 0.05
    assert api.takes_hints() and not api.takes_hints("shipped:eccv16")
    with pytest.raises(ConfigError, match="takes no colour hints"):
        tinct.colorize(photo, "shipped:eccv16", hints=[{"x": 1, "y": 1, "ab": [10, 10]}])
    with pytest.raises(DataError, match="outside"):
        tinct.colorize(photo, hints=[{"x": 500, "y": 1, "ab": [10, 10]}])


def test_colorize_instance_model_takes_boxes() -> None:
    photo = _photo(64, 80)
    without = tinct.colorize(photo, "shipped:instance")
    with_box = tinct.colorize(photo, "shipped:instance", boxes=[[8, 8, 56, 48]])
    assert with_box.shape == without.shape
    assert np.abs(with_box - without)[8:48, 8:56].max() > 0  # the box's fused features changed its colour


def test_colorize_bad_inputs() -> None:
    with pytest.raises(DataError, match="expected an"):
        tinct.colorize(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(DataError, match="NaN"):
        tinct.colorize(np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(DataError, match=r"nothing\.png"):
        tinct.colorize("nothing.png")
    with pytest.raises(ConfigError, match="shipped:nope"):
        tinct.colorize(_photo(), "shipped:nope")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            tinct.colorize(_photo(), device="cuda")


# -- illuminant ---------------------------------------------------------------------------------------


def _scene(illuminant: np.ndarray, seed: int = 0) -> np.ndarray:
    """A Mondrian of random reflectances whose mean is grey, lit by ``illuminant``: Gray World's exact case."""
    rng = np.random.default_rng(seed)
    patches = rng.random((4, 4, 3))
    patches /= patches.reshape(-1, 3).mean(0)
    scene = np.kron(patches, np.ones((8, 8, 1))) * 0.3
    return (scene * illuminant / illuminant.max()).astype(np.float32)


def test_estimate_illuminant_gray_world_exact_on_arrays_paths_and_batches(tmp_path: Path) -> None:
    light = np.array([0.7, 0.5, 0.3])
    scene = _scene(light)
    est = tinct.estimate_illuminant(scene, "gray_world")
    assert est.shape == (3,)
    assert float(angular_error(torch.tensor(est), torch.tensor(light), dim=-1)) < 0.01
    np.save(tmp_path / "scene.npy", scene)
    from_path = tinct.estimate_illuminant(tmp_path / "scene.npy", "gray_world")
    np.testing.assert_allclose(from_path, est, atol=1e-6)
    both = tinct.estimate_illuminant([scene, _scene(light[::-1].copy(), 1)], "gray_world")
    assert both.shape == (2, 3)
    np.testing.assert_allclose(both[0], est, atol=1e-6)


def test_shipped_estimator_on_real_cube_plus_thumbnails(shared_file) -> None:
    root = shared_file("constancy/cube_plus_64")
    with open(root / "gt.csv") as f:
        rows = list(csv.DictReader(f))[:24]
    paths = [root / r["image"] for r in rows]
    truth = torch.tensor([[float(r[c]) for c in "rgb"] for r in rows])
    est = tinct.estimate_illuminant(paths)  # the shipped FFCC (Canon 550D, the sensor of Cube+)
    assert est.shape == (24, 3)
    errors = angular_error(torch.from_numpy(est), truth.double(), dim=-1)
    assert float(errors.median()) < 3.0  # Gray World's median on Cube+ is about 3-4 degrees
    # batched and one by one agree
    np.testing.assert_allclose(tinct.estimate_illuminant(paths[3]), est[3], atol=1e-5)
    np.testing.assert_allclose(tinct.estimate_illuminant(paths, batch_size=5), est, atol=1e-5)


def test_white_balance_neutralises_the_light() -> None:
    light = np.array([0.8, 0.55, 0.25])
    wb = api.white_balance(_scene(light), "gray_world")
    assert wb.preview.shape == (32, 32, 3) and wb.original.shape == (32, 32, 3)
    assert set(wb.classical) == {"gray_world", "white_patch", "shades_of_gray", "gray_edge"}
    # Gray World's exact case: the balanced linear mean is neutral, the original's is the light's colour
    balanced, original = (
        srgb_to_linear(torch.from_numpy(x), dim=-1).numpy().reshape(-1, 3).mean(0)
        for x in (wb.preview, wb.original)
    )
    np.testing.assert_allclose(balanced / balanced.mean(), 1.0, atol=1e-3)
    assert float(angular_error(torch.tensor(original).double(), torch.tensor(light), dim=-1)) < 0.5


def test_estimate_illuminant_warns_on_display_encoded_input(tmp_path: Path) -> None:
    Image.fromarray(_photo()).save(tmp_path / "p.jpg")
    with pytest.warns(UserWarning, match="display-encoded"):
        est = tinct.estimate_illuminant(tmp_path / "p.jpg", "gray_world")
    assert np.isclose(np.linalg.norm(est), 1.0)
    with pytest.raises(DataError, match=r"no usable pixel|saturated|black"):
        tinct.estimate_illuminant(np.zeros((16, 16, 3), np.float32), "gray_world")


# -- patch colour -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patch_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinct.patch.synth import synthesize_patches

    # seed 7: photos the shipped model (trained with seed 0) never saw
    return synthesize_patches(
        tmp_path_factory.mktemp("patches"), n=12, photos_per_shade=2, seed=7, progress=False
    )


def test_predict_patch_against_true_colours(patch_photos: Path) -> None:
    with open(patch_photos / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    paths = [patch_photos / r["image"] for r in rows]
    truth = torch.tensor([[float(r[c]) for c in ("L", "a", "b")] for r in rows])
    lab = tinct.predict_patch(paths)
    assert lab.shape == (12, 3)
    de = delta_e_ciede2000(torch.from_numpy(lab).float(), truth, dim=-1)
    assert float(de.mean()) < 4.0  # the shipped model's test mean is 1.48 on unseen shades
    one = api.patch_prediction(paths[0])
    np.testing.assert_allclose(one.lab, lab[0], atol=1e-4)
    x0, y0, x1, y1 = one.box
    assert 0 <= x0 < x1 and 0 <= y0 < y1 and one.metadata["iso"] is not None
    assert one.swatch.shape == (96, 96, 3) and one.swatch.dtype == np.uint8
    # a PIL image keeps its EXIF, so it predicts as its file
    np.testing.assert_allclose(tinct.predict_patch(Image.open(paths[0])), lab[0], atol=0.05)
    # an array has no EXIF: the metadata are unknown unless given, and the prediction changes
    blind = tinct.predict_patch(np.asarray(Image.open(paths[0])))
    assert blind.shape == (3,) and np.all(np.isfinite(blind))


def test_predict_patch_bad_inputs(tmp_path: Path) -> None:
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "flat.png")
    with pytest.raises(DataError, match=r"flat\.png"):
        tinct.predict_patch(tmp_path / "flat.png")
    with pytest.raises(ConfigError, match=r"patch"):
        tinct.predict_patch(tmp_path / "flat.png", model=api._shipped("illuminant"))


def test_tinct_predict_on_a_patch_model(patch_photos: Path, tmp_path: Path) -> None:
    """``tinct predict`` takes a patch model (a run directory or an exported model file) like any task."""
    from tinct.cli.main import main
    from tinct.engine.evaluate import predict
    from tinct.engine.modelfile import load_model

    task = load_model(api._shipped("patch"))
    run = _run_dir(task, tmp_path / "run")
    photos = sorted(patch_photos.glob("*.jpg"))[:3]
    rows = predict(run, photos, tmp_path / "out", progress=False)
    assert [Path(r["image"]).name for r in rows] == [p.name for p in photos]
    np.testing.assert_allclose(
        [[r["L"], r["a"], r["b"]] for r in rows], tinct.predict_patch(photos), atol=1e-4
    )
    assert all(Path(r["preview"]).is_file() for r in rows)
    assert main(["predict", str(run), str(photos[0]), "--out", str(tmp_path / "cli")]) == 0


def test_onnx_graphs_serve_the_api_as_their_models(tmp_path: Path, patch_photos: Path) -> None:
    """An ``.onnx`` graph of ``tinct export`` is a model= like its run: same estimates to 1e-4."""
    from tinct.cli.main import main

    for name, out in (("illuminant", "ffcc.onnx"), ("patch", "patch.onnx")):
        assert main(["export", str(api._shipped(name)), "--out", str(tmp_path / out)]) == 0
    scenes = [_scene(np.array([0.7, 0.5, 0.3])), _scene(np.array([0.3, 0.5, 0.8]), 2)]
    np.testing.assert_allclose(
        tinct.estimate_illuminant(scenes, tmp_path / "ffcc.onnx"),
        tinct.estimate_illuminant(scenes),
        atol=1e-4,
    )
    photos = sorted(patch_photos.glob("*.jpg"))[:4]
    np.testing.assert_allclose(
        tinct.predict_patch(photos, tmp_path / "patch.onnx"), tinct.predict_patch(photos), atol=1e-3
    )
    with pytest.raises(ConfigError, match=r"cuda|CPU"):
        tinct.estimate_illuminant(scenes, tmp_path / "ffcc.onnx", device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error path of a machine without a GPU")
@pytest.mark.parametrize("command", ["colorize", "predict", "evaluate"])
def test_device_flag_without_a_gpu_is_one_clear_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tinct.cli.main import main

    Image.fromarray(_photo()).save(tmp_path / "p.png")
    run = _run_dir(load_model(api._shipped("illuminant")), tmp_path / "run")
    argv = {
        "colorize": ["colorize", str(tmp_path / "p.png"), "--out", str(tmp_path / "out"), "--device", "cuda"],
        "predict": [
            "predict",
            str(run),
            str(tmp_path / "p.png"),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cuda",
        ],
        "evaluate": ["evaluate", str(run), "--device", "cuda:3"],
    }[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "cuda" in err.lower() and "Traceback" not in err
