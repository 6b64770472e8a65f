"""The web demo's tab functions called directly (no browser), the app's layout, and ``tinct serve``'s parser.

Colours are checked in CIELAB computed by scikit-image, independently of tinct's own conversions.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinct.core.exceptions import ConfigError


def _require_gradio() -> Any:
    try:
        import gradio
    except ImportError:
        if os.environ.get("TINCT_REQUIRE_BROWSER", "").strip() not in ("", "0"):
            pytest.fail('gradio is missing (pip install -e ".[demo]") and TINCT_REQUIRE_BROWSER is set')
        pytest.skip('the demo needs gradio (pip install -e ".[demo]")')
    return gradio


@pytest.fixture(scope="module")
def gr() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return _require_gradio()


@pytest.fixture(scope="module")
def handlers(gr: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tinct.demo.app import DemoHandlers

    return DemoHandlers("cpu", workdir=tmp_path_factory.mktemp("downloads"))


@pytest.fixture(scope="module")
def labels() -> dict[str, str]:
    from tinct.api import COLORIZER_CHOICES

    by_source = {source: label for label, source in COLORIZER_CHOICES.items()}
    return {"siggraph17": by_source["shipped:siggraph17"], "eccv16": by_source["shipped:eccv16"]}


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from PIL import Image
    from skimage.data import chelsea

    photo = chelsea()  # 300 x 451 colour photo shipped inside scikit-image
    path = tmp_path_factory.mktemp("photos") / "chelsea.png"
    Image.fromarray(photo).save(path)
    return path, photo


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(rgb, dtype=np.float64) / 255.0)


def test_colorize_paints_new_colours_and_writes_pngs(handlers: Any, labels: dict, cat: tuple) -> None:
    from PIL import Image

    path, photo = cat
    colorized, panel, files = handlers.colorize(str(path), labels["eccv16"], 0.38, None)

    assert colorized.dtype == np.uint8 and colorized.shape == photo.shape
    lab_in, lab_out = _lab(photo), _lab(colorized)
    assert np.median(np.abs(lab_out[..., 0] - lab_in[..., 0])) < 2.0  # lightness kept
    assert np.hypot(lab_out[..., 1], lab_out[..., 2]).mean() > 3.0  # not gray
    assert np.abs(lab_out[..., 1:] - lab_in[..., 1:]).mean() > 1.0  # not the upload's colours
    assert panel.dtype == np.uint8 and panel.shape[1] > 2 * panel.shape[0]

    assert [Path(f).name for f in files] == ["chelsea_color.png", "chelsea_panel.png"]
    with Image.open(files[0]) as im:
        assert im.format == "PNG" and np.array_equal(np.asarray(im.convert("RGB")), colorized)
    with Image.open(files[1]) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), panel)


def test_temperature_changes_eccv16(handlers: Any, labels: dict, cat: tuple) -> None:
    path, _ = cat
    mode, _, _ = handlers.colorize(str(path), labels["eccv16"], 0.0, None)
    mean, _, _ = handlers.colorize(str(path), labels["eccv16"], 1.0, None)
    # The annealed mean at T = 1 averages over the colour bins: less saturated than the mode (T = 0).
    chroma = [np.hypot(*_lab(x)[..., 1:].transpose(2, 0, 1)).mean() for x in (mode, mean)]
    assert chroma[0] > chroma[1] + 1.0


def test_hints_steer_siggraph17(handlers: Any, labels: dict, cat: tuple) -> None:
    path, _ = cat
    table, view = handlers.clear_hints(str(path))
    assert len(table) == 0 and view is not None
    blue = "#1030f0"
    clicks = [(100, 200), (110, 215), (90, 190), (120, 180)]  # the cat's left cheek
    for x, y in clicks:
        table, view = handlers.add_hint(str(path), table, blue, [x, y])
    assert table.values.tolist() == [[x, y, blue] for x, y in clicks]
    assert view.shape[:2] == (300, 451)
    assert tuple(view[200, 100]) == (0x10, 0x30, 0xF0)  # the hint drawn where it was clicked

    auto, _, _ = handlers.colorize(str(path), labels["siggraph17"], 0.38, None)
    steered, _, _ = handlers.colorize(str(path), labels["siggraph17"], 0.38, table)
    b_auto, b_steered = _lab(auto)[180:216, 90:121, 2], _lab(steered)[180:216, 90:121, 2]
    # The hint's colour is deep blue (b* about -90): the cheek turns bluer, far from it little changes.
    assert b_steered.mean() < b_auto.mean() - 5.0
    far = np.abs(_lab(steered)[:60, 350:, 1:] - _lab(auto)[:60, 350:, 1:]).mean()
    assert far < np.abs(b_steered - b_auto).mean()


def test_hints_for_eccv16_are_ignored_with_a_warning(handlers: Any, labels: dict, cat: tuple) -> None:
    path, _ = cat
    plain, _, _ = handlers.colorize(str(path), labels["eccv16"], 0.38, None)
    with pytest.warns(UserWarning, match="takes no colour hints"):
        hinted, _, _ = handlers.colorize(str(path), labels["eccv16"], 0.38, [[100, 200, "#1030f0"]])
    assert np.array_equal(plain, hinted)


def test_bad_inputs_give_one_line_errors(gr: Any, handlers: Any, labels: dict, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not the rest of a PNG")
    for call in (
        lambda: handlers.colorize(str(bad), labels["siggraph17"], 0.38, None),
        lambda: handlers.white_balance(str(bad)),
        lambda: handlers.patch(str(bad)),
    ):
        with pytest.raises(gr.Error) as err:
            call()
        message = err.value.message
        assert "broken.png" in message and str(tmp_path) not in message and "\n" not in message
        assert "Traceback" not in message

    with pytest.raises(gr.Error, match="upload a photo"):
        handlers.colorize(None, labels["siggraph17"], 0.38, None)
    with pytest.raises(gr.Error, match="unknown model"):
        handlers.colorize(str(bad), "no such model", 0.38, None)
    photo = tmp_path / "small.png"
    from PIL import Image

    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(photo)
    with pytest.raises(gr.Error, match="outside"):  # a hint beyond the photo's 30 x 20 pixels
        handlers.colorize(str(photo), labels["siggraph17"], 0.38, [[45, 5, "#ff0000"]])
    with pytest.raises(gr.Error, match="not a colour"):
        handlers.add_hint(str(photo), None, "blue-ish", [3, 4])


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    cos = float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def test_white_balance_tab(handlers: Any, tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(1)
    light = np.array([0.5, 1.0, 0.6])
    scene = np.kron(rng.uniform(0.05, 0.9, size=(10, 12, 3)), np.ones((12, 12, 1))) * light * 0.8
    path = tmp_path / "linear16.png"
    assert cv2.imwrite(str(path), np.rint(scene[..., ::-1] * 65535).astype(np.uint16))

    original, balanced, table, notes = handlers.white_balance(str(path))
    assert original.dtype == balanced.dtype == np.uint8
    assert min(original.shape[:2]) >= 120 and original.shape == balanced.shape  # small files enlarged
    assert notes == ""
    rows = {r[0]: np.array(r[1:4], dtype=float) for r in table.values.tolist()}
    assert {"learned (shipped)", "gray world", "white patch", "shades of gray", "gray edge"} <= set(rows)
    learned = rows["learned (shipped)"]
    for name, rgb in rows.items():
        assert abs(np.linalg.norm(rgb) - 1.0) < 1e-3
        angle = table.loc[table["method"] == name, "angle (°)"].item()
        assert abs(angle - _angle(rgb, learned)) < 0.05
    assert _angle(rows["gray world"], light) < 2.0  # uniform reflectances: gray world finds the light
    # The balanced preview is less tinted than the one as shot: its patches average closer to neutral.
    tint = [float(np.ptp(x.reshape(-1, 3).mean(0))) for x in (original, balanced)]
    assert tint[1] < tint[0]

    jpeg = tmp_path / "shot.jpg"
    assert cv2.imwrite(str(jpeg), np.rint(np.clip(scene, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8))
    *_, notes = handlers.white_balance(str(jpeg))
    assert "shot.jpg" in notes and "display-encoded" in notes and str(tmp_path) not in notes


def test_patch_tab(handlers: Any, tmp_path: Path) -> None:
    import pandas as pd
    from PIL import Image

    from tinct.patch.synth import synthesize_patches

    folder = synthesize_patches(tmp_path / "patches", 1, size=(160, 120), progress=False, seed=3)
    truth = pd.read_csv(folder / "labels.csv").iloc[0]
    path = folder / truth["image"]
    with Image.open(path) as im:
        photo = np.asarray(im.convert("RGB"))

    marked, crop, lab, swatch, metadata = handlers.patch(str(path))
    # Small photos are enlarged by a whole factor: map the true box into the marked image.
    k = marked.shape[0] // photo.shape[0]
    assert k >= 1 and marked.shape[:2] == (photo.shape[0] * k, photo.shape[1] * k)
    x0, y0, x1, y1 = (int(truth[f"patch_{c}"]) * k for c in ("x0", "y0", "x1", "y1"))
    ring = np.concatenate(
        [
            marked[y0:y1, x0 - 4 * k : x0 + 4 * k].reshape(-1, 3),
            marked[y0 - 4 * k : y0 + 4 * k, x0:x1].reshape(-1, 3),
        ]
    )
    yellow = (ring[:, 0] > 200) & (ring[:, 1] > 180) & (ring[:, 2] < 60)
    assert yellow.any(), "no box outline near the patch's true edges"
    assert crop.dtype == np.uint8 and min(crop.shape[:2]) >= 100

    ((L, a, b, hex_),) = lab.values.tolist()
    assert abs(L - truth["L"]) < 10 and abs(a - truth["a"]) < 10 and abs(b - truth["b"]) < 10
    assert hex_ == "#" + "".join(f"{v:02x}" for v in swatch[0, 0])
    assert np.abs(_lab(swatch[:1, :1])[0, 0] - [L, a, b]).max() < 3.0  # the swatch shows the colour
    keys = set(metadata["metadata"])
    assert {"exposure_time", "iso", "f_number"} <= keys


def test_demo_layout_and_no_outside_links(gr: Any) -> None:
    from tinct.demo import build_demo

    demo = build_demo("cpu")
    config = demo.get_config_file()
    tabs = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    assert tabs == ["Colorize", "White balance", "Patch colour"]
    ids = {c["props"].get("elem_id") for c in config["components"]}
    assert {
        "colorize-input",
        "colorize-button",
        "colorize-output",
        "wb-input",
        "wb-table",
        "patch-input",
    } <= ids


def test_missing_gradio_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from tinct.demo.app import import_gradio

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now raises ImportError
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[demo\]"'):
        import_gradio()


def test_busy_port_is_refused_before_building(gr: Any) -> None:
    from tinct.demo import launch

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: cannot listen there"):
            launch(port=port, block=False, quiet=True)


def test_serve_parser() -> None:
    from tinct.cli import serve

    parser = argparse.ArgumentParser(prog="tinct")
    serve.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.device, args.open) == ("127.0.0.1", 7860, "cpu", False)
    args = parser.parse_args(["serve", "--port", "8123", "--host", "0.0.0.0", "--device", "cuda:1"])
    assert (args.host, args.port, args.device) == ("0.0.0.0", 8123, "cuda:1")
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--port", "70000"])
    help_text = parser._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    assert 'pip install -e ".[demo]"' in " ".join(help_text.split())
