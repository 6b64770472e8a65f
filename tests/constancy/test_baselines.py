"""Tests of tinct.constancy.baselines: grid estimates, tuning, the evaluation protocols and the output files.

The tuning targets are constructed by hand (numpy Minkowski norms of a two-colour image), the runner is run
end to end on generated datasets, and the Gray World row on the 30 INTEL-TAU IMX135 images is checked
against the published sanity figure (../shared/data/README.md: mean about 3.5, median about 2.3 degrees).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

from tinct.constancy.baselines import (
    evaluate_baselines,
    format_table,
    grid_estimates,
    run_baselines,
    throughput,
    tune,
)
from tinct.constancy.classical import CLASSICAL_METHODS, estimate
from tinct.constancy.layouts import open_constancy
from tinct.core.exceptions import DataError, UnknownNameError
from tinct.engine.statistics import STAT_NAMES, error_statistics


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def write_generic(root: Path, n: int = 9, folds: list[int] | None = None, size=(24, 32)) -> Path:
    """A generic-layout dataset: float .npy images (a random scene under a random illuminant) + gt.csv."""
    root.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(0)
    rows = []
    for i in range(n):
        light = g.uniform(0.3, 1.0, 3)
        image = g.uniform(0.05, 0.9, (*size, 3)) * light
        image[0, 0] = 1.0  # one clipped pixel per image
        np.save(root / f"img{i}.npy", image.astype(np.float32))
        rows.append({"image": f"img{i}.npy", "r": light[0], "g": light[1], "b": light[2]})
    pd.DataFrame(rows).to_csv(root / "gt.csv", index=False)
    if folds is not None:
        pd.DataFrame({"image": [r["image"] for r in rows], "fold": folds}).to_csv(
            root / "folds.csv", index=False
        )
    return root


def test_grid_estimates_follow_grid_points() -> None:
    images, masks = rand(2, 3, 18, 22, seed=1), rand(2, 1, 18, 22, seed=2) < 0.01
    points, est = grid_estimates("gray_edge_2", images, masks)
    assert est.shape == (2, 24, 3) and len(points) == 24
    for k in (0, 7, 23):
        torch.testing.assert_close(est[:, k], estimate("gray_edge_2", images, masks, **points[k]))
    sizes = [rand(3, 10, 12, seed=3), rand(3, 12, 10, seed=4)]  # a list of different sizes works too
    assert grid_estimates("shades_of_gray", sizes)[1].shape == (2, 6, 3)


def test_tune_picks_the_constructed_best_point() -> None:
    # Half the pixels one colour, half another: the Minkowski p-norm by hand, for p = 4, is the truth.
    a, b = np.array([0.9, 0.3, 0.1]), np.array([0.1, 0.4, 0.8])
    image = torch.from_numpy(np.concatenate([np.tile(a, (8, 1)), np.tile(b, (8, 1))]).T.reshape(3, 4, 4))
    truth = (8 * a**4 + 8 * b**4) ** 0.25
    params, error = tune("shades_of_gray", [image.float()], None, torch.tensor(truth[None]).float())
    assert params == {"p": 4.0, "sigma": 0.0}
    assert error < 1e-3
    # a 2-D grid: the truth is the method's own estimate at one point, which must be found again
    images, masks = rand(3, 3, 20, 20, seed=5), rand(3, 1, 20, 20, seed=6) < 0.01
    target = {"p": 8.0, "sigma": 3.0}
    params, error = tune("gray_edge_1", images, masks, estimate("gray_edge_1", images, masks, **target))
    assert params == target and error < 1e-3


def test_run_baselines_end_to_end_cross_validation(tmp_path: Path) -> None:
    root = write_generic(tmp_path / "data")
    stats = run_baselines(root, out=tmp_path / "out", progress=False)
    written = json.loads((tmp_path / "out" / "baselines.json").read_text())
    assert written == stats
    assert list(written) == [*CLASSICAL_METHODS, "ffcc"]  # FFCC, trained per fold, after the classical rows
    for row in written.values():
        assert list(row) == list(STAT_NAMES) and all(math.isfinite(v) and v >= 0 for v in row.values())
    details = json.loads((tmp_path / "out" / "baselines_details.json").read_text())
    assert details["protocol"] == {
        "kind": "cross_validation",
        "folds": 3,
        "fold_source": "random (seed 0)",
        "pooled": True,
    }
    gw = details["methods"]["gray_world"]
    assert gw["n"] == 9 and len(gw["folds"]) == 3 and gw["images_per_s"] > 0
    assert details["methods"]["white_patch"]["folds"][0]["params"]["p"] == "inf"  # JSON has no infinity
    for name, info in details["methods"].items():  # statistics of the POOLED held-out errors
        assert sorted(info["per_image"]["image"]) == sorted(f"img{i}.npy" for i in range(9))
        assert stats[name]["mean"] == pytest.approx(error_statistics(info["per_image"]["error"])["mean"])
        assert sum(f["n_test"] for f in info["folds"]) == 9


def test_run_baselines_protocols(tmp_path: Path) -> None:
    root = write_generic(tmp_path / "data", n=8, folds=[0, 0, 1, 1, 2, 2, 3, 3])
    run_baselines(root, out=tmp_path / "a", methods=["gray_world", "shades_of_gray"], progress=False)
    details = json.loads((tmp_path / "a" / "baselines_details.json").read_text())
    assert details["protocol"]["fold_source"] == "folds.csv" and details["protocol"]["folds"] == 4
    assert list(json.loads((tmp_path / "a" / "baselines.json").read_text())) == [
        "gray_world",
        "shades_of_gray",
    ]
    run_baselines(root, folds=2, out=tmp_path / "b", methods=["gray_world"], progress=False)
    details = json.loads((tmp_path / "b" / "baselines_details.json").read_text())
    assert details["protocol"]["folds"] == 2 and details["protocol"]["fold_source"] == "random (seed 0)"


def test_official_split_tunes_on_train_and_evaluates_on_test(tmp_path: Path) -> None:
    source = open_constancy(write_generic(tmp_path / "data", n=6))
    source.table["split"] = ["train", "train", "train", "train", "test", "test"]  # as SimpleCube++ has
    assert source.has_split
    stats = evaluate_baselines(source, out=tmp_path / "out", methods=["gray_edge_1"], progress=False)
    details = json.loads((tmp_path / "out" / "baselines_details.json").read_text())
    assert details["protocol"] == {"kind": "train_test", "n_train": 4, "n_test": 2}
    info = details["methods"]["gray_edge_1"]
    assert info["n"] == 2 and info["per_image"]["image"] == ["img4.npy", "img5.npy"]
    assert info["folds"][0]["n_train"] == 4
    assert stats["gray_edge_1"]["mean"] == pytest.approx(np.mean(info["per_image"]["error"]))


def test_an_all_black_image_stops_before_any_work(tmp_path: Path) -> None:
    # An all-black image has no estimate: it used to be scored as grey; reading it is now an error naming
    # the file, before a method runs (methods without an estimate on an image: the tensor-level tests below).
    root = write_generic(tmp_path / "data", n=6)
    np.save(root / "img3.npy", np.zeros((24, 32, 3), np.float32))
    source = open_constancy(root)
    source.table["split"] = ["train", "train", "train", "test", "test", "test"]
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"img3\.npy: an all-black image"):
        evaluate_baselines(source, out=out, methods=["gray_world", "white_patch"], progress=False)
    assert not (out / "baselines.json").exists()


def test_tune_skips_grid_points_without_estimate() -> None:
    images = rand(3, 3, 12, 12, seed=7)
    truth = estimate("gray_edge_1", images, None, p=2.0, sigma=1.0)
    black = torch.cat([images, torch.zeros(1, 3, 12, 12)])
    with pytest.raises(DataError, match="gray_edge_1 has no grid point with an estimate for all 4 images"):
        tune("gray_edge_1", black, None, torch.cat([truth, torch.ones(1, 3)]))


def test_unknown_method_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="gray_edge_1"):
        run_baselines(tmp_path / "missing", methods=["max_rgb"], progress=False)


def test_format_table() -> None:
    stats = {
        "gray_world": {"mean": 3.4567, "median": 2.0, "trimean": 2.5, "best25": 0.5, "worst25": 8.0},
        "custom": {"mean": 1.0, "median": 1.0, "trimean": 1.0, "best25": 1.0, "worst25": 1.0},
    }
    table = format_table(stats)
    assert [c.header for c in table.columns] == ["Method", "Mean", "Median", "Trimean", "Best25", "Worst25"]
    console = Console(record=True, width=120)
    console.print(table)
    text = console.export_text()
    assert "Gray World" in text and "3.46" in text and "custom" in text


def test_throughput_is_positive() -> None:
    assert throughput("gray_edge_1", image_size=(24, 32), batch=2, repeats=1, threads=1) > 0


def test_gray_world_row_on_intel_tau(shared_data, tmp_path: Path) -> None:
    root = shared_data / "constancy" / "intel_tau_imx135"
    stats = run_baselines(root, out=tmp_path, methods=["gray_world"], progress=False)
    assert stats["gray_world"]["mean"] == pytest.approx(3.5, abs=0.1)
    assert stats["gray_world"]["median"] == pytest.approx(2.3, abs=0.1)
