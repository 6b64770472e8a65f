"""Illuminant estimators exported to ONNX / TorchScript (issue 20): a CNN and FFCC (its FFTs as real DFT
matrix products) against the task's own torch forward at two image sizes and batch sizes, and
``tinct export`` of a run directory and of a model file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from tinct.cli import export as export_cli
from tinct.cli.main import main
from tinct.constancy.export import GRAPH_FORMAT, FFCCGraph, export_illuminant_graph
from tinct.constancy.task import IlluminantTask
from tinct.core.exceptions import ConfigError
from tinct.engine.config import config_from_dict
from tinct.engine.run_dir import RunDir
from tinct.nn.export import load_torchscript, onnx_session, read_onnx_metadata, run_onnx

MODELS = {
    "cnn": {
        "backbone": "small_cnn",
        "width": 4,
        "depth": 2,
        "head": "fc4",
        "hidden": 8,
        "input_space": "log",
    },
    "ffcc": {"estimator": "ffcc", "ffcc": {"bins": 32, "bin_size": 0.0625, "channels": 3}},
}
SHAPES = ((4, 48, 64), (1, 40, 72))  # batch, H, W: none of them the export's own


def _task(estimator: str) -> IlluminantTask:
    torch.manual_seed(0)
    task = IlluminantTask(config_from_dict({"task": "illuminant", "model": MODELS[estimator]})).eval()
    with torch.no_grad():
        if estimator == "ffcc":  # a torus around some illuminants and filters that are not zero
            task.ffcc.center_on(torch.tensor([[0.5, 1.0, 0.7], [0.7, 1.0, 0.4], [0.4, 1.0, 0.9]]))
            task.ffcc.filter_v.normal_(0.0, 1e-4)
            task.ffcc.bias_v.normal_(0.0, 1e-4)
        else:  # weights far enough from the initialisation that the estimates differ between images
            for p in task.parameters():
                p.add_(torch.randn_like(p) * 0.4)
    return task


def _images(batch: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    cast = 0.4 + torch.rand(batch, 3, 1, 1, generator=g)
    return (torch.rand(batch, 3, h, w, generator=g) * 0.9 + 0.05) * cast


@pytest.fixture(scope="module")
def exported() -> dict:
    out = {}
    for estimator in MODELS:
        task = _task(estimator)
        out[estimator] = {
            "task": task,
            "onnx": export_illuminant_graph(task, source="tiny"),
            "script": export_illuminant_graph(task, format="torchscript", source="tiny"),
        }
    return out


@pytest.mark.parametrize("estimator", list(MODELS))
def test_graphs_match_the_task_at_two_sizes(exported: dict, estimator: str) -> None:
    e = exported[estimator]
    session = onnx_session(e["onnx"].data)
    script, meta = load_torchscript(e["script"].data)
    for seed, (b, h, w) in enumerate(SHAPES):
        x = _images(b, h, w, seed)
        with torch.no_grad():
            expected = e["task"](x)  # the task's own forward (FFCC: torch.fft)
            traced = script(x)
        got = run_onnx(session, {"image": x})[0]
        assert got.shape == expected.shape == (b, 3)
        assert float((got - expected).abs().max()) <= 1e-4
        assert float((traced - expected).abs().max()) <= 1e-4
    x = _images(4, 48, 64, 9)
    with torch.no_grad():
        spread = e["task"](x)
    assert float((spread - spread[:1]).abs().max()) > 1e-3  # images of other casts get other estimates
    assert meta == read_onnx_metadata(e["onnx"].data)
    assert meta["tinct.format"] == GRAPH_FORMAT and meta["tinct.estimator"] == estimator


def test_ffcc_graph_logits_are_the_fft_convolution() -> None:
    ffcc = _task("ffcc").ffcc
    hist = ffcc.histograms(_images(2, 32, 32, 3))
    with torch.no_grad():
        expected = ffcc.logits(hist)
        got = FFCCGraph(ffcc).logits(hist)
        # The circular convolution written out for one output cell (u, v) = (3, 5), channel sum included.
        n = ffcc.bins
        f = ffcc.filters
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        direct = (hist[0] * f[:, (3 - i) % n, (5 - j) % n]).sum() + ffcc.bias[3, 5]
    assert float((got - expected).abs().max()) <= 1e-5 * float(expected.abs().max())
    assert abs(float(direct) - float(expected[0, 3, 5])) <= 1e-4 * float(expected.abs().max())


def _export(*argv: str) -> int:
    """``tinct export`` through its own parser, so a refused option raises (``main`` turns it into a message)."""
    parser = argparse.ArgumentParser()
    export_cli.add_parsers(parser.add_subparsers(dest="command"))
    return export_cli.run(parser.parse_args(["export", *argv]))


def test_export_cli_run_dir_and_model_file(
    exported: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    task = exported["cnn"]["task"]
    run = RunDir(tmp_path / "run").create(task.cfg)
    state = {"state_dict": task.state_dict(), "tinct_config": task.cfg.model_dump(mode="json")}
    torch.save(state, run.checkpoints / "best.ckpt")
    assert main(["export", str(run.path), "--out", str(tmp_path / "est.onnx")]) == 0
    assert main(["export", str(run.path), "--out", str(tmp_path / "model.pt")]) == 0  # tinct's model file
    assert main(["export", str(tmp_path / "model.pt"), "--out", str(tmp_path / "est.ts")]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime vs torch: max |difference|" in out and "TorchScript vs torch" in out
    x = _images(3, 40, 56, 5)
    script, meta = load_torchscript(tmp_path / "est.ts")
    with torch.no_grad():
        expected, traced = task(x), script(x)
    got = run_onnx(onnx_session(tmp_path / "est.onnx"), {"image": x})[0]
    assert float((got - expected).abs().max()) <= 1e-4
    assert float((traced - expected).abs().max()) <= 1e-4
    assert meta["tinct.source"] == str(tmp_path / "model.pt")
    assert read_onnx_metadata(tmp_path / "est.onnx")["tinct.kind"] == "illuminant"
    with pytest.raises(ConfigError, match="--temperature is for colorizer graphs"):
        _export(str(run.path), "--out", str(tmp_path / "t.onnx"), "--temperature", "0.3")
    with pytest.raises(ConfigError, match="--card and --evaluate"):
        _export(str(run.path), "--out", str(tmp_path / "t.pt"), "--evaluate")
    assert not (tmp_path / "t.onnx").exists() and not (tmp_path / "t.pt").exists()
