"""Tests of the physically based synthetic colour-constancy generator (SimpleCube++ layout).

Spectral references are computed here with plain numpy sums over colour-science's tabulated data
(colour-science 0.4.7: CIE illuminants, NPL camera sensitivities, Mallett & Yuksel 2019 basis), picked at
the 10 nm sample wavelengths without interpolation, so they share no code with the module under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import colour
import numpy as np
import pandas as pd
import pytest

from tinct.constancy.synth import (
    CAMERAS,
    camera_matrix,
    camera_sensitivities,
    illuminant_rgb,
    sample_illuminant_spd,
    synthesize_constancy,
)
from tinct.core.exceptions import ConfigError, UnknownNameError
from tinct.io.image import read_image

WAVELENGTHS = np.arange(400, 701, 10)
KEYS = {"nikon_d5100": "Nikon 5100 (NPL)", "sigma_sdmerrill": "Sigma SDMerill (NPL)"}
BLACK, SATURATION = 2048, 2**14 - 1
TINY = {"size": (48, 32), "progress": False}


def _sampled(spectrum: object) -> np.ndarray:
    """Values at WAVELENGTHS, zero where the table has no sample (no interpolation)."""
    table = dict(zip(spectrum.wavelengths.tolist(), spectrum.values.tolist(), strict=True))
    width = 1 if spectrum.values.ndim == 1 else spectrum.values.shape[1]
    zero = 0.0 if width == 1 else [0.0] * width
    return np.array([table.get(float(w), zero) for w in WAVELENGTHS], dtype=np.float64)


def _reference_sensitivities(camera: str) -> np.ndarray:
    """A camera's curves at WAVELENGTHS, read independently of tinct (the Canon ones from the CSV itself)."""
    if camera in KEYS:
        return _sampled(colour.MSDS_CAMERA_SENSITIVITIES[KEYS[camera]])
    from colour.characterisation.aces_it import ROOT_RESOURCES_RAWTOACES

    assert camera == "canon_eos_5d_mark_ii"
    table = np.loadtxt(
        Path(ROOT_RESOURCES_RAWTOACES) / "CANON_EOS_5DMark_II_RGB_Sensitivities.csv",
        delimiter=",",
        skiprows=1,
    )
    rows = {float(w): values for w, *values in table.tolist()}
    return np.array([rows[float(w)] for w in WAVELENGTHS], dtype=np.float64)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(min(1.0, cos))))


def _images(root: Path) -> dict[str, np.ndarray]:
    return {p.stem: read_image(p).array for p in sorted(root.glob("*/PNG/*.png"))}


def test_layout_gt_csv_and_metadata(tmp_path: Path) -> None:
    out = synthesize_constancy(tmp_path / "d", n=8, **TINY)
    meta = json.loads((out / "synth.json").read_text())
    assert meta["complete"] and meta["n"] == 8 and len(meta["images"]) == 8
    for split, stems in (
        ("train", ["synth_00000", "synth_00001", "synth_00002", "synth_00004", "synth_00005", "synth_00006"]),
        ("test", ["synth_00003", "synth_00007"]),
    ):
        gt = pd.read_csv(out / split / "gt.csv")
        assert list(gt.columns) == ["image", "r", "g", "b"]
        assert gt["image"].tolist() == stems  # stems without extension, as upstream SimpleCube++
        assert sorted(p.stem for p in (out / split / "PNG").glob("*.png")) == stems
        rgb = gt[["r", "g", "b"]].to_numpy()
        np.testing.assert_allclose(np.linalg.norm(rgb, axis=1), 1.0, atol=1e-8)
        assert (rgb > 0).all()
    for record in meta["images"]:
        assert {"stem", "split", "illuminant", "mixture", "exposure", "iso", "scene", "gt"} <= record.keys()
        assert {"kind", "name", "cct"} <= record["illuminant"].keys()
    assert meta["params"]["camera"] == "nikon_d5100" and meta["params"]["black_level"] == BLACK


def test_raw_values_integers_in_range_and_corner_zero(tmp_path: Path) -> None:
    out = synthesize_constancy(tmp_path / "d", n=8, **TINY)
    for stem, raw in _images(out).items():
        assert raw.dtype == np.uint16 and raw.shape == (32, 48, 3), stem
        assert raw.max() <= SATURATION
        # round(32 / 6) = 5 rows, round(48 / 6) = 8 columns
        assert (raw[-5:, -8:] == 0).all()
        assert (raw[:-5].reshape(-1, 3).max(axis=1) > 0).all() and (raw[:, :-8].max(axis=2) > 0).all()
        assert np.median(raw[:-5]) > BLACK  # the scene sits above the black level


def test_deterministic_and_restart_skips_existing(tmp_path: Path) -> None:
    a = synthesize_constancy(tmp_path / "a", n=8, seed=3, **TINY)
    b = synthesize_constancy(tmp_path / "b", n=8, seed=3, **TINY)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f

    # An interrupted run: one image missing, gt.csv absent. The restart rewrites only what is missing.
    missing, kept = a / "train/PNG/synth_00001.png", a / "train/PNG/synth_00002.png"
    missing.unlink()
    (a / "train/gt.csv").unlink()
    before = kept.stat().st_mtime_ns
    synthesize_constancy(a, n=8, seed=3, **TINY)
    assert kept.stat().st_mtime_ns == before
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f

    # Image i depends only on (seed, i): a shorter run holds the same first images.
    c = synthesize_constancy(tmp_path / "c", n=4, seed=3, **TINY)
    short = _images(c)
    assert short.keys() == {"synth_00000", "synth_00001", "synth_00002", "synth_00003"}
    full = _images(a)
    for stem, raw in short.items():
        np.testing.assert_array_equal(raw, full[stem])
    other = _images(synthesize_constancy(tmp_path / "s4", n=1, seed=4, **TINY))
    assert not np.array_equal(other["synth_00000"], full["synth_00000"])


def test_restart_with_other_parameters_refused(tmp_path: Path) -> None:
    synthesize_constancy(tmp_path / "d", n=2, **TINY)
    with pytest.raises(ConfigError, match="seed"):
        synthesize_constancy(tmp_path / "d", n=2, seed=1, **TINY)


@pytest.mark.parametrize("camera", CAMERAS)
@pytest.mark.parametrize("light", ["D65", "A", "FL2", "LED-B3", "HP1"])
def test_flat_grey_response_matches_numpy_reference(camera: str, light: str) -> None:
    spd = colour.SDS_ILLUMINANTS[light]
    sens = _reference_sensitivities(camera)
    power = _sampled(spd)
    reference = (power[:, None] * sens).sum(axis=0) * 10.0
    np.testing.assert_allclose(illuminant_rgb(spd, camera), reference, rtol=1e-10)
    # A spectrally flat grey g: linear sRGB (g, g, g) -> reflectance g at every wavelength.
    g = 0.37
    grey = camera_matrix(spd, camera) @ np.full(3, g)
    assert _angle(grey, reference) < 0.01
    np.testing.assert_allclose(grey, g * reference, rtol=1e-3)


def test_camera_matrix_matches_spectral_sum_for_colours() -> None:
    basis = _sampled(colour.recovery.MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019)
    spd = colour.SDS_ILLUMINANTS["FL11"]
    power = _sampled(spd)
    sens = _sampled(colour.MSDS_CAMERA_SENSITIVITIES[KEYS["nikon_d5100"]])
    rgb = np.random.default_rng(0).random((5, 3))
    reflectance = rgb @ basis.T  # (5, wavelengths)
    assert reflectance.min() >= 0 and reflectance.max() <= 1
    reference = (reflectance * power) @ sens * 10.0
    np.testing.assert_allclose(rgb @ camera_matrix(spd, "nikon_d5100").T, reference, rtol=1e-10)


def test_rendered_flat_grey_matches_ground_truth(tmp_path: Path) -> None:
    out = synthesize_constancy(
        tmp_path / "d",
        n=4,
        size=(24, 18),
        progress=False,
        scenes=["flat"],
        illuminants=["fluorescent", "led", "hid"],
        mixture_fraction=0.0,
        noise=False,
        exposure_range=(0.5, 0.9),
    )
    meta = json.loads((out / "synth.json").read_text())
    sens = _sampled(colour.MSDS_CAMERA_SENSITIVITIES[KEYS["nikon_d5100"]])
    for record in meta["images"]:
        raw = read_image(out / record["split"] / "PNG" / f"{record['stem']}.png").array.astype(np.float64)
        pixels = raw[:-3].reshape(-1, 3) - BLACK  # round(18 / 6) = 3 corner rows
        reference = (_sampled(colour.SDS_ILLUMINANTS[record["illuminant"]["name"]])[:, None] * sens).sum(0)
        assert _angle(np.array(record["gt"]), reference) < 0.01
        # only 14-bit rounding separates each pixel from the ground truth
        assert _angle(pixels.mean(axis=0), reference) < 0.02


def test_mixture_ground_truth_is_area_weighted_mean(tmp_path: Path) -> None:
    out = synthesize_constancy(
        tmp_path / "d",
        n=4,
        size=(60, 40),
        progress=False,
        scenes=["flat"],
        mixture_fraction=1.0,
        noise=False,
        exposure_range=(0.3, 0.5),
        corner=0.0,
    )
    meta = json.loads((out / "synth.json").read_text())
    for record in meta["images"]:
        assert record["mixture"] and 0.0 < record["mixture_weight"] <= 0.5
        raw = read_image(out / record["split"] / "PNG" / f"{record['stem']}.png").array.astype(np.float64)
        pixels = raw.reshape(-1, 3) - BLACK
        assert _angle(pixels.mean(axis=0), np.array(record["gt"])) < 0.02
        corners = raw[[0, 0, -1, -1], [0, -1, 0, -1]] - BLACK
        assert max(_angle(p, q) for p in corners for q in corners) > 0.1  # two lights across the frame


def test_gray_world_error_is_plausible(tmp_path: Path) -> None:
    out = synthesize_constancy(tmp_path / "d", n=16, size=(64, 48), seed=1, progress=False)
    meta = json.loads((out / "synth.json").read_text())
    errors = []
    for record in meta["images"]:
        raw = read_image(out / record["split"] / "PNG" / f"{record['stem']}.png").array.astype(np.float64)
        usable = (raw.max(axis=2) < SATURATION) & (raw.min(axis=2) > 0)
        estimate = (raw[usable] - BLACK).mean(axis=0)
        errors.append(_angle(estimate, np.array(record["gt"])))
    assert 0.5 < float(np.median(errors)) < 20.0
    assert min(errors) > 0.0


def test_cameras_give_different_raw_responses(tmp_path: Path) -> None:
    nikon = _images(synthesize_constancy(tmp_path / "n", n=2, camera="nikon_d5100", **TINY))
    sigma = _images(synthesize_constancy(tmp_path / "s", n=2, camera="sigma_sdmerrill", **TINY))
    for stem in nikon:
        assert not np.array_equal(nikon[stem], sigma[stem])
    d65 = colour.SDS_ILLUMINANTS["D65"]
    assert _angle(illuminant_rgb(d65, "nikon_d5100"), illuminant_rgb(d65, "sigma_sdmerrill")) > 1.0


def test_camera_names() -> None:
    assert CAMERAS == ("nikon_d5100", "sigma_sdmerrill", "canon_eos_5d_mark_ii")
    for name, key in {**KEYS, "canon_eos_5d_mark_ii": "Canon EOS 5D Mark II (rawtoaces)"}.items():
        np.testing.assert_array_equal(camera_sensitivities(name).values, camera_sensitivities(key).values)
        assert camera_sensitivities(name).shape == colour.SpectralShape(400, 700, 10)
    # The Canon curves (a CSV resource, not MSDS_CAMERA_SENSITIVITIES) equal the file's own samples.
    np.testing.assert_allclose(
        camera_sensitivities("canon_eos_5d_mark_ii").values,
        _reference_sensitivities("canon_eos_5d_mark_ii"),
        rtol=1e-12,
    )
    with pytest.raises(UnknownNameError, match="nikon_d5100"):
        camera_sensitivities("canon_550d")
    with pytest.raises(UnknownNameError, match="sigma_sdmerrill"):
        synthesize_constancy("unused", n=1, camera="canon_550d", progress=False)


def test_sample_illuminant_spd() -> None:
    ybar = _sampled(colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"])[:, 1]
    rng = np.random.default_rng(0)
    draws = [sample_illuminant_spd(rng) for _ in range(300)]
    kinds = [info["kind"] for _, info in draws]
    assert 0.68 < kinds.count("natural") / 300 < 0.88  # default weight 0.78
    for spd, info in draws:
        assert (spd.values >= 0).all()
        assert abs(float(spd.values @ ybar) * 10.0 - 1.0) < 1e-9  # unit luminance
        if info["kind"] == "natural":
            assert 2500 <= info["cct"] <= 10000
            assert info["name"].startswith("planckian" if info["cct"] < 4000 else "daylight")
    # same generator state -> same spectrum; the lamp kinds draw from the CIE tables
    a, _ = sample_illuminant_spd(np.random.default_rng(5), kinds={"led": 1.0})
    b, info = sample_illuminant_spd(np.random.default_rng(5), kinds={"led": 1.0})
    np.testing.assert_array_equal(a.values, b.values)
    assert info["name"].startswith("LED-")
    table = _sampled(colour.SDS_ILLUMINANTS[info["name"]])
    np.testing.assert_allclose(b.values, table / float(table @ ybar * 10.0), rtol=1e-10)
    with pytest.raises(UnknownNameError, match="fluorescent"):
        sample_illuminant_spd(rng, kinds=["candle"])


def test_readable_by_the_simple_cube_reader(tmp_path: Path) -> None:
    from tinct.constancy import simple_cube

    out = synthesize_constancy(tmp_path / "d", n=8, **TINY)
    table = simple_cube.read_simple_cube(out)
    assert len(table) == 8 and sorted(table["split"].unique()) == ["test", "train"]
    meta = {r["stem"]: r["gt"] for r in json.loads((out / "synth.json").read_text())["images"]}
    np.testing.assert_allclose(
        table[["r", "g", "b"]].to_numpy(), [meta[s] for s in table["image"]], atol=1e-9
    )
