"""The synthetic skin-patch generator: labels, EXIF written into the JPEGs, determinism, resume."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tinct.core.exceptions import ConfigError
from tinct.io.exif import exposure_offset, read_exif_meta
from tinct.patch.labels import read_patch_table
from tinct.patch.synth import PATCH_CAMERAS, render_patch_photo, synthesize_patches
from tinct.spectral.skin import load_skin_model, reflectance_to_lab

SMALL = {"size": (96, 72), "photos_per_shade": 3, "progress": False}


@pytest.fixture(scope="module")
def patch_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_patches(tmp_path_factory.mktemp("patches") / "set", 9, seed=3, **SMALL)


def test_labels_and_files(patch_set: Path) -> None:
    table = pd.read_csv(patch_set / "labels.csv")
    assert list(table.columns[:5]) == ["image", "L", "a", "b", "group"]
    assert len(table) == 9 and table["group"].nunique() == 3
    for _, g in table.groupby("group"):  # one shade per group: one label
        assert g[["L", "a", "b"]].nunique().max() == 1
    for name in table["image"]:
        with Image.open(patch_set / name) as im:
            assert im.format == "JPEG" and im.size == (96, 72)
    boxes = table[["patch_x0", "patch_y0", "patch_x1", "patch_y1"]].to_numpy()
    assert (boxes[:, 0] < boxes[:, 2]).all() and (boxes[:, 1] < boxes[:, 3]).all()
    assert (boxes[:, 2] <= 96).all() and (boxes[:, 3] <= 72).all() and (boxes >= 0).all()


def test_exif_written_by_the_generator_reads_back(patch_set: Path) -> None:
    """The EXIF path on JPEGs written by the generator: every field and the camera name come back."""
    cameras = {model for _, model, _ in PATCH_CAMERAS.values()}
    for i in range(9):
        _, rec = render_patch_photo(i, seed=3, size=(96, 72), photos_per_shade=3)
        meta = read_exif_meta(patch_set / f"patch_{i:05d}.jpg")
        assert meta.exposure_time == pytest.approx(rec["exposure_time"], rel=1e-9)
        assert meta.iso == rec["iso"] and meta.f_number == pytest.approx(rec["f_number"])
        assert meta.brightness == pytest.approx(rec["brightness"], abs=1e-6)
        assert meta.camera in cameras and meta.camera == rec["model"]
        # The exposure the metadata describe is the one that made the image: (Bv + 5) - EV100 is the
        # photographer's compensation (up to the rounding of Bv to 0.01 EV).
        assert exposure_offset(meta) == pytest.approx(rec["exposure_comp"], abs=0.011)
    table = read_patch_table(patch_set).table
    assert table[["exposure_time", "iso", "f_number", "brightness", "ev100"]].notna().all().all()
    assert set(table["camera"]) <= cameras


def test_labels_are_the_skin_colour_under_d65() -> None:
    model = load_skin_model()
    spectrum = model.sample(np.random.default_rng([0, 1, 2]), 1)[0]  # shade 2 of seed 0
    _, rec = render_patch_photo(2 * 8, seed=0)
    np.testing.assert_allclose([rec["L"], rec["a"], rec["b"]], reflectance_to_lab(spectrum), atol=1e-9)
    assert 30 < rec["L"] < 85 and 0 < rec["a"] < 25 and 0 < rec["b"] < 35  # skin, not any colour


def test_deterministic_and_varied() -> None:
    a, ra = render_patch_photo(5, seed=1)
    b, rb = render_patch_photo(5, seed=1)
    np.testing.assert_array_equal(a, b)
    assert ra == rb
    records = [render_patch_photo(i, seed=1)[1] for i in range(24)]
    assert len({r["camera"] for r in records}) == 3
    assert len({r["iso"] for r in records}) > 1 and len({r["illuminant"] for r in records}) > 10
    comps = np.array([r["exposure_comp"] for r in records])
    assert comps.max() - comps.min() > 1.0  # over- and under-exposed photos occur


def test_patch_is_uniform_and_the_shadow_stays_off_it() -> None:
    for i in range(6):
        image, rec = render_patch_photo(i, seed=4)
        x0, y0, x1, y1 = rec["patch_x0"], rec["patch_y0"], rec["patch_x1"], rec["patch_y1"]
        patch = image[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3].reshape(-1, 3).astype(float)
        spread = np.percentile(patch, 90, axis=0) - np.percentile(patch, 10, axis=0)
        assert spread.max() < 40, (i, spread)


def test_resume_and_refusal(tmp_path: Path) -> None:
    root = synthesize_patches(tmp_path / "s", 4, **SMALL)
    first = (root / "patch_00000.jpg").stat().st_mtime_ns
    assert synthesize_patches(tmp_path / "s", 4, **SMALL) == root
    assert (root / "patch_00000.jpg").stat().st_mtime_ns == first
    with pytest.raises(ConfigError, match=r"other|made with"):
        synthesize_patches(tmp_path / "s", 5, **SMALL)
    with pytest.raises(ConfigError, match="unknown camera"):
        synthesize_patches(tmp_path / "t", 4, cameras=["leica_m"], progress=False)
    with pytest.raises(ConfigError, match="at least 48"):
        synthesize_patches(tmp_path / "u", 4, size=(40, 30), progress=False)
