"""Colorizers exported to ONNX / TorchScript (issue 20): the graphs against torch's own network step at two
sizes, ``tinct export`` end to end, ``tinct colorize --backend onnxruntime`` against the torch backend, the
temperature baked into an ECCV16 graph, instance-aware models, and bad files and options."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tinct.cli import export as export_cli
from tinct.cli.main import main
from tinct.colorization.colorize import load_colorizer
from tinct.colorization.export import GRAPH_FORMAT, OnnxColorizer, export_colorizer_graph
from tinct.core.exceptions import ConfigError, DataError
from tinct.nn.export import load_torchscript, onnx_session, read_onnx_metadata, run_onnx

ARCHS = ("siggraph17", "eccv16")
SIZES = ((32, 48), (56, 40))  # two H x W (multiples of 8): the graph's height and width are free


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory, make_colorizer_file: Callable[..., Path]) -> dict:
    """For each architecture: its tiny colorizer file, the torch colorizer, ONNX bytes and TorchScript bytes."""
    root = tmp_path_factory.mktemp("graphs")
    out = {}
    for arch in ARCHS:
        path = make_colorizer_file(root / f"{arch}.pt", arch=arch, seed=1)
        colorizer, info = load_colorizer(path)
        onnx = export_colorizer_graph(colorizer, info, root / f"{arch}.onnx")
        script = export_colorizer_graph(colorizer, info, root / f"{arch}.ts", format="torchscript")
        out[arch] = {"file": path, "colorizer": colorizer, "onnx": onnx, "script": script}
    return out


def _inputs(arch: str, h: int, w: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 1, h, w, generator=g) * 0.3
    if arch != "siggraph17":
        return (x,)
    mask = (torch.rand(2, 1, h, w, generator=g) > 0.9).float()
    return x, torch.randn(2, 2, h, w, generator=g) * 40 * mask, mask


def _reference(colorizer, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The colorizer's own network step in torch (eager), ECCV16 decoded at its temperature, 0.38."""
    hints = (inputs[1], inputs[2]) if len(inputs) == 3 else None
    with torch.no_grad():
        return colorizer.network_ab(inputs[0], 0.38, hints)


@pytest.mark.parametrize("arch", ARCHS)
def test_graphs_match_torch_at_two_sizes(graphs: dict, arch: str) -> None:
    g = graphs[arch]
    names = ("lightness", "hint_ab", "hint_mask")
    session = onnx_session(g["onnx"].data)
    script, script_meta = load_torchscript(g["script"].data)
    for seed, (h, w) in enumerate(SIZES):
        inputs = _inputs(arch, h, w, seed)
        expected = _reference(g["colorizer"], inputs)
        assert expected.shape == (2, 2, h, w) and float(expected.abs().max()) > 1.0  # not a trivial output
        scale = float(expected.abs().max())
        got = run_onnx(session, dict(zip(names, inputs, strict=False)))[0]
        assert got.shape == expected.shape
        assert float((got - expected).abs().max()) <= 1e-4 * scale
        with torch.no_grad():
            traced = script(*inputs)
        assert float((traced - expected).abs().max()) <= 1e-4 * scale
        if arch == "siggraph17":  # the hints change the output: a graph ignoring them would fail above
            unhinted = _reference(g["colorizer"], inputs[:1])
            assert float((unhinted - expected).abs().max()) > 0.1
    meta = read_onnx_metadata(g["onnx"].data)
    assert meta == script_meta
    assert meta["tinct.format"] == GRAPH_FORMAT and meta["tinct.source"] == str(g["file"])
    assert meta["tinct.temperature"] == ("0.38" if arch == "eccv16" else "")  # only ECCV16 decodes in-graph
    assert f'"arch": "{arch}"' in meta["tinct.config"]


def test_eccv16_graph_keeps_its_temperature(graphs: dict, tmp_path: Path) -> None:
    colorizer = graphs["eccv16"]["colorizer"]
    path = tmp_path / "t02.onnx"
    export_colorizer_graph(colorizer, {"source": "tiny"}, path, temperature=0.2)
    onnx_colorizer, info = load_colorizer(path)
    assert isinstance(onnx_colorizer, OnnxColorizer) and info["backend"] == "onnxruntime"
    x = _inputs("eccv16", 32, 40, 3)[0]
    ab = onnx_colorizer.network_ab(x, 0.2)
    expected = _reference(colorizer, (x,))  # at 0.38: another, less saturated decoding
    with torch.no_grad():
        at_02 = colorizer.network_ab(x, 0.2)
    assert float((ab - at_02).abs().max()) <= 1e-4 * float(at_02.abs().max())
    assert float((ab - expected).abs().max()) > 1e-2
    with pytest.raises(ConfigError, match=r"temperature 0\.2 inside its graph"):
        load_colorizer(path, temperature=0.38)
    with pytest.raises(ConfigError, match=r"temperature 0\.2 inside its graph"):
        onnx_colorizer.network_ab(x, 0.5)
    # A SIGGRAPH17 graph's regression head takes no temperature: any is accepted, as by torch.
    load_colorizer(graphs["siggraph17"]["onnx"].path, temperature=0.9)


def _photos(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = (rng.random((5, 6, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"p{i}.png"), cv2.resize(small, (60, 44), interpolation=cv2.INTER_CUBIC))
    return folder


def _export(*argv: str) -> int:
    """``tinct export`` through its own parser, so a refused option raises (``main`` turns it into a message)."""
    parser = argparse.ArgumentParser()
    export_cli.add_parsers(parser.add_subparsers(dest="command"))
    return export_cli.run(parser.parse_args(["export", *argv]))


def _images(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p)).astype(int) for p in sorted(folder.glob("*_color.png"))}


def test_export_cli_and_colorize_with_onnxruntime(
    graphs: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = graphs["siggraph17"]["file"]
    assert main(["export", str(file), "--out", str(tmp_path / "g.onnx")]) == 0
    assert main(["export", str(file), "--out", str(tmp_path / "g.bin"), "--format", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime vs torch: max |difference|" in out and "TorchScript vs torch" in out
    assert read_onnx_metadata(tmp_path / "g.onnx")["tinct.format"] == GRAPH_FORMAT
    assert load_torchscript(tmp_path / "g.bin")[1]["tinct.format"] == GRAPH_FORMAT
    photos = _photos(tmp_path / "in")
    runs = {
        "torch": ["--model", str(file)],
        "memory": ["--model", str(file), "--backend", "onnxruntime"],
        "file": ["--model", str(tmp_path / "g.onnx")],
    }
    for name, flags in runs.items():
        assert main(["colorize", str(photos), "--out", str(tmp_path / name), "--no-panel", *flags]) == 0
    torch_images = _images(tmp_path / "torch")
    assert len(torch_images) == 2
    for name in ("memory", "file"):
        images = _images(tmp_path / name)
        assert images.keys() == torch_images.keys()
        for key, image in images.items():
            assert np.abs(image - torch_images[key]).max() <= 1, (name, key)
    # The torch run is not grey: the comparison has colours to disagree on.
    image = next(iter(torch_images.values()))
    assert np.ptp(image, axis=2).max() > 10
    # With hints too (the graph's hint inputs).
    hints = tmp_path / "hints.json"
    hints.write_text('{"p0": [{"x": 20, "y": 10, "ab": [40, -30], "radius": 2}]}')
    for name, flags in (("h_torch", runs["torch"]), ("h_onnx", runs["file"])):
        assert main(["colorize", str(photos / "p0.png"), "--out", str(tmp_path / name), "--hints", str(hints),
                     "--no-panel", *flags]) == 0  # fmt: skip
    a, b = _images(tmp_path / "h_torch"), _images(tmp_path / "h_onnx")
    assert a.keys() == b.keys() and np.abs(a["p0_color.png"] - b["p0_color.png"]).max() <= 1


def test_instance_aware_model_exports_its_full_image_network(tmp_path: Path) -> None:
    from tinct.colorization.instance import InstanceColorizer, InstanceFusionNet
    from tinct.colorization.pretrained import FORMAT

    torch.manual_seed(0)
    net = InstanceFusionNet(0.125, crop_size=16).eval()
    config = {
        "task": "instance_colorization",
        "model": {"arch": "siggraph17", "width": 0.125, "head": "regression", "stage": "fusion",
                  "crop_size": 16, "infer_size": 32},
        "data": {"l_cent": 50.0, "l_norm": 100.0},
    }  # fmt: skip
    torch.save({"format": FORMAT, "config": config, "state_dict": net.state_dict()}, tmp_path / "inst.pt")
    colorizer, info = load_colorizer(tmp_path / "inst.pt")
    assert isinstance(colorizer, InstanceColorizer)
    exported = export_colorizer_graph(colorizer, info, tmp_path / "inst.onnx")
    assert exported.notes and "full-image network" in exported.notes[0]
    assert "full-image network" in read_onnx_metadata(tmp_path / "inst.onnx")["tinct.note"]
    x, ab, mask = _inputs("siggraph17", 40, 48, 5)
    from tinct.colorization.siggraph import hint_input

    with torch.no_grad():
        expected = net.full(hint_input(x, ab, mask)).ab  # the full-image network alone
    got = run_onnx(onnx_session(exported.data), {"lightness": x, "hint_ab": ab, "hint_mask": mask})[0]
    assert float((got - expected).abs().max()) <= 1e-4 * float(expected.abs().max())
    onnx_colorizer, _ = load_colorizer(tmp_path / "inst.onnx")
    assert not onnx_colorizer.uses_boxes
    with pytest.raises(ConfigError, match="takes no object boxes"):
        onnx_colorizer.network_ab(x, boxes=torch.zeros(1, 4))


def test_bad_files_and_options(graphs: dict, tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07 not a protobuf at all" * 10)
    with pytest.raises(DataError, match=r"broken\.onnx: not an ONNX model"):
        load_colorizer(bad)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(graphs["eccv16"]["onnx"].data[:5000])
    with pytest.raises(DataError, match=r"truncated\.onnx"):
        load_colorizer(truncated)
    # A valid ONNX model that tinct did not write: no colorizer metadata.
    from tinct.nn.export import export_onnx

    plain = tmp_path / "plain.onnx"
    export_onnx(torch.nn.Conv2d(1, 2, 3, padding=1), (torch.rand(2, 1, 8, 8),), plain,
                input_names=["lightness"], output_names=["ab"])  # fmt: skip
    with pytest.raises(DataError, match=r"plain\.onnx: not a tinct colorizer graph"):
        load_colorizer(plain)
    bad_ts = tmp_path / "broken.ts"
    bad_ts.write_bytes(b"PK not a zip")
    with pytest.raises(DataError, match=r"broken\.ts: not a TorchScript archive"):
        load_torchscript(bad_ts)
    file = graphs["eccv16"]["file"]
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        load_colorizer(file, backend="tensorrt")
    with pytest.raises(ConfigError, match="onnxruntime backend runs on the CPU"):
        load_colorizer(file, backend="onnxruntime", device="cuda")
    with pytest.raises(ConfigError, match="runs with the onnxruntime backend"):
        load_colorizer(graphs["eccv16"]["onnx"].path, backend="torch")
    with pytest.raises(ConfigError, match="not a torch device"):
        load_colorizer(file, device="toaster")
    with pytest.raises(ConfigError, match="--temperature is for colorizer graphs"):
        _export(str(file), "--out", str(tmp_path / "x.pt"), "--temperature", "0.2")
    with pytest.raises(ConfigError, match="already an exported graph"):
        _export(str(graphs["eccv16"]["onnx"].path), "--out", str(tmp_path / "y.onnx"))
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.onnx").exists()
