"""The shipped skin reflectance model: derived from the NIST data, and CIELAB against colour-science."""

from pathlib import Path

import colour
import numpy as np
import pytest

from tinct.core.exceptions import DataError
from tinct.spectral.skin import SKIN_WAVELENGTHS, derive_skin_model, load_skin_model, reflectance_to_lab

NIST = "spectra/nist_skin_reflectance_M38597.csv"  # under ../shared/data


def test_shipped_model_equals_the_derivation_from_nist(shared_file) -> None:
    derived, shipped = derive_skin_model(shared_file(NIST)), load_skin_model()
    np.testing.assert_allclose(shipped.mean, derived.mean, atol=1e-6)
    np.testing.assert_allclose(shipped.components, derived.components, atol=1e-6)
    np.testing.assert_allclose(shipped.std, derived.std, atol=1e-6)


def test_model_properties() -> None:
    m = load_skin_model()
    np.testing.assert_array_equal(m.wavelengths, SKIN_WAVELENGTHS)
    np.testing.assert_allclose(m.components @ m.components.T, np.eye(len(m.std)), atol=1e-5)
    assert 0.99 < m.explained.sum() <= 1.0 and np.all(np.diff(m.std) <= 0)
    # Skin: reflectance rises from blue to red, with the haemoglobin dip near 540-580 nm.
    assert m.mean[SKIN_WAVELENGTHS == 650][0] > 2 * m.mean[SKIN_WAVELENGTHS == 420][0]
    lab = reflectance_to_lab(m.sample(np.random.default_rng(0), 500))
    assert 55 < lab[:, 0].mean() < 75 and 5 < lab[:, 1].mean() < 15 and 10 < lab[:, 2].mean() < 22


def test_lab_matches_colour_science() -> None:
    m = load_skin_model()
    spectra = m.sample(np.random.default_rng(1), 5)
    shape = colour.SpectralShape(380, 780, 5)  # the model's grid: no interpolation, no extrapolation
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape)
    d65 = colour.SDS_ILLUMINANTS["D65"].copy().align(shape)
    white = colour.sd_to_XYZ(
        colour.SpectralDistribution(np.ones(81), SKIN_WAVELENGTHS), cmfs, d65, method="Integration"
    )
    for spectrum, lab in zip(spectra, reflectance_to_lab(spectra), strict=True):
        sd = colour.SpectralDistribution(spectrum, SKIN_WAVELENGTHS)
        xyz = colour.sd_to_XYZ(sd, cmfs, d65, method="Integration")
        expected = colour.XYZ_to_Lab(xyz / white[1], colour.XYZ_to_xy(white))
        np.testing.assert_allclose(lab, expected, atol=1e-6)


def test_not_the_nist_table(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"x\.csv"):
        derive_skin_model(bad)
