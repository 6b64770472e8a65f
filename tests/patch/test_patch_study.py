"""The patch study picks on validation and reports test: a fake sweep (results table and run directories)
whose validation-best and test-best variants differ, so picking on test would show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tinct.core.exceptions import RunDirError, TinctError
from tinct.patch.study import best_variant, patch_study_table, study_patch

AXES = ["model.backbone", "background", "fusion"]
# (background, fusion): (validation ΔE00 mean of the selected checkpoint, test ΔE00 mean)
SCORES = {
    ("without", "none"): (3.0, 3.4),
    ("without", "concat"): (2.5, 2.7),  # best fusion without background on validation ...
    ("without", "film"): (2.6, 2.4),  # ... but the best on test
    ("without", "cross_attention"): (2.7, 2.6),
    ("with", "none"): (1.6, 1.6),
    ("with", "concat"): (1.50, 1.30),  # the best on test (overall and with background)
    ("with", "film"): (1.40, 1.45),  # the best on validation (overall and with background)
    ("with", "cross_attention"): (1.45, 1.40),
}


def _fake_sweep(root: Path, val_in_results: bool = True) -> pd.DataFrame:
    """A sweep's results table and, per trial, ``metrics.json`` and ``patch_metrics.json`` as a tested run
    leaves them (per-bin test ΔE00 = mean + offset)."""
    rows = []
    for i, ((background, fusion), (val, test)) in enumerate(SCORES.items()):
        run = root / "runs" / f"t{i:03d}"
        (run / "figures").mkdir(parents=True)
        (run / "figures" / "patch_swatches.png").write_bytes(f"swatches of {background}/{fusion}".encode())
        (run / "metrics.json").write_text(json.dumps({"val/de00_mean": val, "test/de00_mean": test}))
        bins = {"under < -1 EV": 0.2, "-1..+1 EV": 0.0, "over > +1 EV": 0.5}
        patch = {
            "de00_mean": test, "de00_median": test - 0.1, "de00_p90": test + 1.0, "de00_max": test + 3.0,
            "share_below_1": 0.1, "per_exposure": {k: {"de00_mean": test + d} for k, d in bins.items()},
        }  # fmt: skip
        (run / "patch_metrics.json").write_text(json.dumps(patch))
        row: dict[str, Any] = {"number": i, "state": "COMPLETE", "model.backbone": "small_cnn"}
        row |= {"background": background, "fusion": fusion, "epochs": 3, "run_dir": str(run)}
        row["val/de00_mean"] = val if val_in_results else None
        rows.append(row)
    return pd.DataFrame(rows)


def test_table_has_the_validation_value_of_each_trial(tmp_path: Path) -> None:
    table = patch_study_table(_fake_sweep(tmp_path), AXES)
    numbers = [c for c in table.columns if c not in (*AXES, "epochs", "run_dir")]
    assert numbers[0] == "val de00_mean"  # first among the scores, beside the test ones
    for _, r in table.iterrows():
        assert (r["val de00_mean"], r["de00_mean"]) == SCORES[(r["background"], r["fusion"])]
    # without the value in the sweep's table, the run's metrics.json (best validation epoch) gives it
    again = patch_study_table(_fake_sweep(tmp_path / "b", val_in_results=False), AXES)
    assert again["val de00_mean"].tolist() == table["val de00_mean"].tolist()


def test_table_refuses_a_trial_without_validation_value(tmp_path: Path) -> None:
    results = _fake_sweep(tmp_path, val_in_results=False)
    (Path(results["run_dir"].iloc[2]) / "metrics.json").write_text(json.dumps({"test/de00_mean": 1.0}))
    with pytest.raises(RunDirError, match="val/de00_mean"):
        patch_study_table(results, AXES)


def test_best_variant_is_chosen_on_validation(tmp_path: Path) -> None:
    table = patch_study_table(_fake_sweep(tmp_path), AXES)
    best = best_variant(table)
    assert (best["background"], best["fusion"]) == ("with", "film")
    assert best["de00_mean"] == 1.45  # its test figure, not the lowest test figure (1.30)
    with pytest.raises(TinctError, match="val de00_mean"):
        best_variant(table.drop(columns=["val de00_mean"]))  # a study.csv of before: no silent test pick


def test_study_ranks_and_picks_on_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinct.engine import sweep as sweep_mod

    results = _fake_sweep(tmp_path / "fake")
    monkeypatch.setattr(sweep_mod, "run_sweep", lambda *a, **k: results)
    out = tmp_path / "study"
    shown = study_patch(out, only_full=True, progress=False)

    # the best model (its swatches) is the validation-best run, and so is the first row
    assert (out / "figures" / "best_swatches.png").read_bytes() == b"swatches of with/film"
    assert (shown["background"].iloc[0], shown["fusion"].iloc[0]) == ("with", "film")
    saved = json.loads((out / "study.json").read_text())
    # metadata gain: the best fusion per background on validation, its test gain reported
    gain = {g["background"]: g for g in saved["metadata_gain"]}
    assert gain["without"]["best fusion"] == "concat"  # film is better on test (2.4), not chosen
    assert gain["without"]["gain mean"] == pytest.approx(3.4 - 2.7)
    assert gain["without"]["val gain mean"] == pytest.approx(3.0 - 2.5)
    assert gain["with"]["best fusion"] == "film"  # concat is better on test (1.30), not chosen
    assert gain["with"]["gain mean"] == pytest.approx(1.6 - 1.45)
    assert gain["with"]["gain over > +1 EV"] == pytest.approx((1.6 + 0.5) - (1.45 + 0.5))

    # rows best-first on validation, shown beside the test column (which keeps its own, unsorted, values)
    assert shown["val de00_mean"].is_monotonic_increasing
    assert not shown["de00_mean"].is_monotonic_increasing
    assert list(pd.read_csv(out / "study.csv")["val de00_mean"]) == list(shown["val de00_mean"])
    assert saved["selected_by"] == "val/de00_mean"
    assert (saved["best"]["fusion"], saved["best"]["de00_mean"]) == ("film", 1.45)
    md = (out / "study.md").read_text()
    assert "Ranking and choices are on validation" in md
    header = next(line for line in md.splitlines() if line.startswith("| model.backbone"))
    assert header.split(" | ")[:6] == [
        "| model.backbone",
        "background",
        "fusion",
        "epochs",
        "val de00_mean",
        "de00_mean",
    ]
