"""Patch-colour models exported to ONNX / TorchScript (issue 20): the graphs (standardisation buffers
included) against the task's own forward at two batch sizes, ``tinct export`` of a run directory, and the
models and inputs a graph refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinct.cli.main import main
from tinct.core.exceptions import ConfigError, DataError
from tinct.engine.config import config_from_dict
from tinct.engine.run_dir import RunDir
from tinct.nn.export import load_torchscript, onnx_session, read_onnx_metadata, run_onnx
from tinct.patch.export import GRAPH_FORMAT, PatchGraph, export_patch_graph
from tinct.patch.task import PatchTask

CAMERAS = ["cam_a", "cam_b", "cam_c"]
NAMES = ("image", "meta", "meta_mask", "camera", "stats")


def _task(fusion: str = "concat", **model: object) -> PatchTask:
    """A tiny patch model of random weights (head included: a new head is zero, i.e. constant) and
    standardisation buffers that are not the identity."""
    torch.manual_seed(0)
    cfg = {
        "task": "patch", "data": {"size": 32},
        "model": {"width": 4, "depth": 2, "hidden": 16, "fusion": fusion, "mean_features": True,
                  "cameras": CAMERAS, **model},
    }  # fmt: skip
    task = PatchTask(config_from_dict(cfg)).eval()
    with torch.no_grad():
        for p in task.net.head.parameters():
            p.normal_(0.0, 0.3)
        if hasattr(task.net.fusion, "gate"):  # cross-attention starts closed
            task.net.fusion.gate.fill_(0.5)
        task.meta_mean.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
        task.meta_std.copy_(torch.tensor([2.0, 0.5, 1.0, 4.0]))
        task.stats_mean.normal_()
        task.stats_std.uniform_(0.5, 2.0)
    return task


def _batch(b: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(b, 3, 32, 32, generator=g),
        "meta": torch.randn(b, 4, generator=g) * 3,
        "meta_mask": torch.rand(b, 4, generator=g) > 0.3,
        "camera": torch.randint(0, len(CAMERAS) + 1, (b,), generator=g),
        "stats": torch.rand(b, 12, generator=g),
    }


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_graphs_match_the_task_at_two_batch_sizes(fusion: str) -> None:
    task = _task(fusion)
    onnx = export_patch_graph(task, source="tiny")
    script, meta = load_torchscript(export_patch_graph(task, format="torchscript").data)
    session = onnx_session(onnx.data)
    for seed, b in enumerate((1, 7)):  # the export traced a batch of 2 and checked one of 5
        batch = _batch(b, seed)
        with torch.no_grad():
            expected = task(batch)  # the task's forward: standardisation, then the network
            traced = script(*(batch[n] for n in NAMES))
        assert float((expected - expected[:1]).abs().max()) > 0.1 or b == 1  # the inputs matter
        got = run_onnx(session, batch)[0]
        scale = float(expected.abs().max())
        assert got.shape == expected.shape == (b, 3)
        assert float((got - expected).abs().max()) <= 1e-4 * scale
        assert float((traced - expected).abs().max()) <= 1e-4 * scale
    metadata = read_onnx_metadata(onnx.data)
    assert metadata["tinct.format"] == GRAPH_FORMAT and metadata["tinct.image_size"] == "32"
    assert metadata["tinct.cameras"] == '["cam_a", "cam_b", "cam_c"]' and meta["tinct.kind"] == "patch"


def test_standardisation_is_inside_the_graph() -> None:
    task = _task()
    session = onnx_session(export_patch_graph(task).data)
    batch = _batch(3, 4)
    before = run_onnx(session, batch)[0]
    with torch.no_grad():
        task.meta_mean.add_(
            5.0
        )  # the exported graph holds the old buffers: torch's output moves, its does not
        moved = task(batch)
    assert float((run_onnx(session, batch)[0] - before).abs().max()) == 0
    assert float((moved - before).abs().max()) > 1e-3


def test_export_cli_and_what_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = _task("film")
    run = RunDir(tmp_path / "run").create(task.cfg)
    state = {"state_dict": task.state_dict(), "tinct_config": task.cfg.model_dump(mode="json")}
    torch.save(state, run.checkpoints / "best.ckpt")
    assert main(["export", str(run.path), "--out", str(tmp_path / "patch.onnx")]) == 0
    assert "onnxruntime vs torch: max |difference|" in capsys.readouterr().out
    session = onnx_session(tmp_path / "patch.onnx")
    batch = _batch(4, 7)
    with torch.no_grad():
        expected = task(batch)
    assert float((run_onnx(session, batch)[0] - expected).abs().max()) <= 1e-4 * float(expected.abs().max())
    bad = {**batch, "camera": torch.tensor([0, 1, 9, 2])}  # no camera 9: the graph refuses, as torch does
    with pytest.raises(DataError, match="onnxruntime failed"):
        run_onnx(session, bad)
    with pytest.raises(DataError, match=r"inputs \['stats'\] are missing"):
        run_onnx(session, {k: v for k, v in batch.items() if k != "stats"})
    with pytest.raises(ConfigError, match="device strings"):
        PatchGraph(_task(device_embedding=True))


def test_torchscript_based_onnx_exporter_also_exports_it() -> None:
    """The fallback of :func:`tinct.nn.export.export_onnx` (``dynamo=False``) on the same graph."""
    from tinct.nn.export import export_module

    task = _task()
    graph = PatchGraph(task)
    axes = {n: {0: "batch"} for n in (*NAMES, "lab")}
    exported = export_module(graph, "onnx", graph.sample_inputs(2), graph.sample_inputs(5, seed=1),
                             input_names=NAMES, output_names=["lab"], dynamic_axes=axes, dynamo=False)  # fmt: skip
    batch = _batch(3, 8)
    with torch.no_grad():
        expected = task(batch)
    got = run_onnx(onnx_session(exported.data), batch)[0]
    assert float((got - expected).abs().max()) <= 1e-4 * float(expected.abs().max())
