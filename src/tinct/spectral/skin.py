"""A compact statistical model of human skin reflectance, and skin colour under D65.

The model is the mean and the first principal components of the diffuse reflectance factor of 100 people's
skin measured by NIST (Cooksey, Allen, Tsai, "Reference data set of human skin reflectance", J. Res. NIST
122:26, 2017; data doi 10.18434/M38597, U.S. government work, public domain), reduced to 380-780 nm every
5 nm. It ships with tinct as ``spectral/resources/skin_reflectance_pca.json`` (about 10 kB) so that the
synthetic patch data (:mod:`tinct.patch.synth`) needs no download; :func:`derive_skin_model`
rebuilds it from the NIST file, and a test checks the shipped table against that derivation.

Derivation: the ``Average`` spectrum of each subject (the mean of its three repeats) on the file's 3 nm grid
is interpolated linearly to 380, 385, ..., 780 nm; the model is the mean of the 100 spectra and the leading
right-singular vectors of the centred matrix, with the standard deviation of each component's scores.
:meth:`SkinModel.sample` draws scores from independent normals with those deviations (truncated at
``clip_sigma``), which is the maximum-entropy model of the measured mean and covariance.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tinct.core.exceptions import DataError

__all__ = [
    "SKIN_WAVELENGTHS",
    "SkinModel",
    "derive_skin_model",
    "load_skin_model",
    "reflectance_to_lab",
    "reflectance_to_xyz",
]

SKIN_WAVELENGTHS = np.arange(380.0, 781.0, 5.0)
_RESOURCE = Path(__file__).parent / "resources" / "skin_reflectance_pca.json"
_SOURCE = (
    "NIST human skin reflectance, doi 10.18434/M38597 (Cooksey, Allen, Tsai, J. Res. NIST 122:26, 2017): "
    "subject averages of 100 people, 380-780 nm every 5 nm (linear interpolation of the 3 nm data)"
)


@dataclass(frozen=True)
class SkinModel:
    """Mean skin reflectance plus principal components.

    Attributes:
        wavelengths: ``(W,)`` nm.
        mean: ``(W,)`` reflectance factor in [0, 1].
        components: ``(K, W)`` orthonormal rows.
        std: ``(K,)`` standard deviation of the subjects' scores on each component.
        explained: ``(K,)`` share of the subjects' variance each component explains.
    """

    wavelengths: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    std: np.ndarray
    explained: np.ndarray

    def sample(self, rng: np.random.Generator, n: int, clip_sigma: float = 2.5) -> np.ndarray:
        """``n`` plausible skin spectra ``(n, W)``, reflectance clipped to [0.005, 1].

        Example:
            >>> model = load_skin_model()
            >>> spectra = model.sample(np.random.default_rng(0), 4)
            >>> spectra.shape, bool(spectra.min() > 0)
            ((4, 81), True)
        """
        z = np.clip(rng.standard_normal((n, len(self.std))), -clip_sigma, clip_sigma)
        return np.clip(self.mean + (z * self.std) @ self.components, 0.005, 1.0)

    def to_json(self) -> dict[str, object]:
        return {
            "source": _SOURCE,
            "wavelengths": self.wavelengths.tolist(),
            "mean": np.round(self.mean, 6).tolist(),
            "components": np.round(self.components, 6).tolist(),
            "std": np.round(self.std, 6).tolist(),
            "explained_variance_ratio": np.round(self.explained, 6).tolist(),
        }


def _read_nist(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Wavelengths and the subjects' ``Average`` spectra ``(subjects, wavelengths)`` of the NIST file."""
    import pandas as pd

    try:
        raw = pd.read_csv(path, header=None, encoding="latin-1", dtype=str)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read the NIST skin reflectance table ({err})") from err
    header = raw.index[raw[0].astype(str).str.startswith("Wavelength")]
    if len(header) != 1:
        raise DataError(f"{path}: no 'Wavelength (nm)' header row; not the NIST M38597 table")
    row = int(header[0])
    columns = raw.iloc[row].tolist()
    body = raw.iloc[row + 1 :].apply(pd.to_numeric, errors="coerce")
    body = body[body[0].notna()]
    average = [i for i, name in enumerate(columns) if str(name).strip() == "Average"]
    if not average:
        raise DataError(f"{path}: no 'Average' columns")
    spectra = body[average].to_numpy(dtype=np.float64).T
    if not np.isfinite(spectra).all():
        raise DataError(f"{path}: missing values in the 'Average' columns")
    return body[0].to_numpy(dtype=np.float64), spectra


def derive_skin_model(path: str | os.PathLike[str], n_components: int = 6) -> SkinModel:
    """Build the model from the NIST file (``../shared/data/spectra/nist_skin_reflectance_M38597.csv``).

    Raises:
        DataError: the file is not the NIST table (the message names it).
    """
    wavelengths, spectra = _read_nist(Path(path))
    resampled = np.stack([np.interp(SKIN_WAVELENGTHS, wavelengths, s) for s in spectra])
    mean = resampled.mean(axis=0)
    centred = resampled - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:n_components]
    # A component's sign is arbitrary; fix it so the shipped table is reproducible (positive sum).
    components *= np.where(components.sum(axis=1) < 0, -1.0, 1.0)[:, None]
    scores = centred @ components.T
    variance = singular**2
    return SkinModel(
        SKIN_WAVELENGTHS.copy(),
        mean,
        components,
        scores.std(axis=0, ddof=1),
        variance[:n_components] / variance.sum(),
    )


@cache
def load_skin_model() -> SkinModel:
    """The shipped model (see the module docstring for its provenance)."""
    record = json.loads(_RESOURCE.read_text())
    return SkinModel(
        np.asarray(record["wavelengths"], dtype=np.float64),
        np.asarray(record["mean"], dtype=np.float64),
        np.asarray(record["components"], dtype=np.float64),
        np.asarray(record["std"], dtype=np.float64),
        np.asarray(record["explained_variance_ratio"], dtype=np.float64),
    )


@cache
def _xyz_weights(wavelengths: tuple[float, ...]) -> np.ndarray:
    from tinct.spectral.formation import colour  # colour-science, imported with tinct's print-option guard

    shape = colour.SpectralShape(wavelengths[0], wavelengths[-1], wavelengths[1] - wavelengths[0])
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape).values
    d65 = colour.SDS_ILLUMINANTS["D65"].copy().align(shape).values
    weights = d65[:, None] * cmfs
    return weights / weights[:, 1].sum()


def reflectance_to_xyz(reflectance: np.ndarray, wavelengths: np.ndarray = SKIN_WAVELENGTHS) -> np.ndarray:
    """CIE XYZ (Y in [0, 1]) of reflectances ``(*, W)`` under D65, CIE 1931 2 degree observer.

    Plain summation over the (evenly spaced) samples, i.e. colour-science's ``sd_to_XYZ(method="Integration")``.
    """
    return np.asarray(reflectance, dtype=np.float64) @ _xyz_weights(tuple(map(float, wavelengths)))


def reflectance_to_lab(reflectance: np.ndarray, wavelengths: np.ndarray = SKIN_WAVELENGTHS) -> np.ndarray:
    """CIELAB under D65 / 2 degrees (the white is the perfect reflector under D65) of reflectances ``(*, W)``.

    Example:
        >>> lab = reflectance_to_lab(np.full(81, 0.18))
        >>> [round(float(v), 2) + 0.0 for v in lab]  # + 0.0: a rounded -0.0 prints as 0.0
        [49.5, 0.0, 0.0]
    """
    xyz = reflectance_to_xyz(reflectance, wavelengths)
    white = reflectance_to_xyz(np.ones(len(wavelengths)), wavelengths)
    t = xyz / white
    delta = 6 / 29
    f = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1
    )
