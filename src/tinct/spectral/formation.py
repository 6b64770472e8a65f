"""Spectral image formation: camera sensitivities, illuminant spectra and the 3 x 3 camera matrix.

A surface of linear sRGB colour ``(r, g, b)`` in [0, 1] is lifted to the spectral reflectance
``rho(l) = r B_r(l) + g B_g(l) + b B_b(l)`` of Mallett & Yuksel (2019), whose three basis functions are
non-negative and sum to one at every wavelength, so every reflectance lies in [0, 1] and ``(g, g, g)`` is a
spectrally flat grey of reflectance ``g``. A camera with spectral sensitivities ``S_c`` under an illuminant
of spectral power ``E`` then records

    ``C_c = sum_l rho(l) E(l) S_c(l) dl = sum_k M[c, k] x_k``,  ``M[c, k] = sum_l B_k(l) E(l) S_c(l) dl``,

which is exact (no colour-matching approximation) and makes rendering an image one 3 x 3 matrix product
per pixel. The ground-truth illuminant is the response to a perfect white, ``sum_l E(l) S_c(l) dl``, which
equals ``M @ (1, 1, 1)`` up to the basis' 1e-5 deviation from a partition of unity.

Every spectrum is aligned to :data:`SPECTRAL_SHAPE` (400-700 nm every 10 nm, the range both cameras cover;
the Sigma data ends at 680 nm, where it is already near zero, and is taken as zero beyond). The source data
(5 nm or 10 nm grids) contain every 10 nm sample, so the alignment only selects samples, never interpolates.

References:
    Mallett & Yuksel, "Spectral Primary Decomposition for Rendering with sRGB Reflectance", EGSR 2019.
    Darrodi, Finlayson, Goodman, Mackiewicz, "Reference data set for camera spectral sensitivity
    estimation", JOSA A 32(3), 2015 (the NPL camera sensitivities).
    CIE 015:2018 Colorimetry (D series, F series, LED and high-pressure lamp illuminants).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

# colour-science sets numpy's legacy="1.13" print options on import, which makes pandas write CSV floats
# with 12 significant digits everywhere in the process; put the caller's options back.
_PRINT_OPTIONS = np.get_printoptions()
import colour  # noqa: E402

np.set_printoptions(**_PRINT_OPTIONS)

from tinct.core.checks import check_choice  # noqa: E402 - after the print-option guard
from tinct.core.exceptions import UnknownNameError  # noqa: E402

__all__ = [
    "CAMERAS",
    "CAMERA_KEYS",
    "DEFAULT_ILLUMINANT_KINDS",
    "ILLUMINANT_KINDS",
    "SPECTRAL_SHAPE",
    "camera_matrix",
    "camera_sensitivities",
    "illuminant_rgb",
    "sample_illuminant_spd",
]

SPECTRAL_SHAPE = colour.SpectralShape(400, 700, 10)

#: User-facing camera names and the ``colour.MSDS_CAMERA_SENSITIVITIES`` keys they stand for.
CAMERA_KEYS: Mapping[str, str] = {
    "nikon_d5100": "Nikon 5100 (NPL)",
    "sigma_sdmerrill": "Sigma SDMerill (NPL)",
    "canon_eos_5d_mark_ii": "Canon EOS 5D Mark II (rawtoaces)",
}
# colour-science ships the Canon curves as a resource of its rawtoaces (ACES IDT) module, not in
# MSDS_CAMERA_SENSITIVITIES; they are read from that CSV (380-780 nm every 5 nm).
_RESOURCE_CAMERAS: Mapping[str, str] = {
    "Canon EOS 5D Mark II (rawtoaces)": "CANON_EOS_5DMark_II_RGB_Sensitivities.csv",
}
CAMERAS: tuple[str, ...] = tuple(CAMERA_KEYS)

_TABLES = {
    "fluorescent": tuple(f"FL{i}" for i in range(1, 13)) + tuple(f"FL3.{i}" for i in range(1, 16)),
    "led": ("LED-B1", "LED-B2", "LED-B3", "LED-B4", "LED-B5", "LED-BH1", "LED-RGB1", "LED-V1", "LED-V2"),
    "hid": ("HP1", "HP2", "HP3", "HP4", "HP5"),
}
_CCT_RANGES = {"natural": (2500.0, 10000.0), "shade": (10000.0, 25000.0)}
ILLUMINANT_KINDS: tuple[str, ...] = (*_CCT_RANGES, *_TABLES)
# Mostly the Planckian / daylight loci, as in outdoor-and-indoor datasets such as Cube+; a minority of
# fluorescent, LED and high-pressure discharge lamps keeps the off-locus illuminants represented.
DEFAULT_ILLUMINANT_KINDS: Mapping[str, float] = {
    "natural": 0.78,
    "shade": 0.04,
    "fluorescent": 0.09,
    "led": 0.07,
    "hid": 0.02,
}
# Below this CCT the CIE D series is undefined and real light is incandescent, hence Planckian.
_DAYLIGHT_MIN_CCT = 4000.0


def _align(spectrum: Any) -> Any:
    """A copy of ``spectrum`` on :data:`SPECTRAL_SHAPE`, zero outside its measured range."""
    return spectrum.copy().align(
        SPECTRAL_SHAPE, extrapolator_kwargs={"method": "Constant", "left": 0, "right": 0}
    )


def _values(spectrum: Any) -> np.ndarray:
    """The values of ``spectrum`` at the :data:`SPECTRAL_SHAPE` wavelengths.

    When the spectrum is sampled at all of them (every dataset used here), they are picked directly,
    which is exact and 50 times faster than :func:`_align`.
    """
    wavelengths = SPECTRAL_SHAPE.wavelengths
    index = np.searchsorted(spectrum.wavelengths, wavelengths)
    if index.max() < len(spectrum.wavelengths) and np.array_equal(spectrum.wavelengths[index], wavelengths):
        return np.asarray(spectrum.values[index], dtype=np.float64)
    return _align(spectrum).values


def _camera_key(name: str) -> str:
    if name in CAMERA_KEYS:
        return CAMERA_KEYS[name]
    if name in CAMERA_KEYS.values():
        return name
    raise UnknownNameError(
        f"unknown camera {name!r}; valid choices: {', '.join(map(repr, (*CAMERAS, *CAMERA_KEYS.values())))}"
    )


def camera_sensitivities(name: str) -> colour.MultiSpectralDistributions:
    """The spectral sensitivities (red, green, blue) of a camera on :data:`SPECTRAL_SHAPE`.

    Args:
        name: one of :data:`CAMERAS` (``"nikon_d5100"``, ``"sigma_sdmerrill"``, ``"canon_eos_5d_mark_ii"``)
            or its key in :data:`CAMERA_KEYS` (``"Nikon 5100 (NPL)"``, ...). The Nikon and Sigma curves are
            colour-science's ``MSDS_CAMERA_SENSITIVITIES`` (NPL measurements); the Canon curves are the
            rawtoaces resource colour-science ships for its ACES input-transform code.

    Returns:
        A new ``MultiSpectralDistributions`` (relative sensitivities as measured by NPL), safe to modify.

    Raises:
        UnknownNameError: the name is not a known camera; the message lists the choices.

    Example:
        >>> camera_sensitivities("nikon_d5100").shape
        SpectralShape(400.0, 700.0, 10.0)
    """
    key = _camera_key(name)
    if key in _RESOURCE_CAMERAS:
        return _align(_resource_camera(key))
    return _align(colour.MSDS_CAMERA_SENSITIVITIES[key])


@cache
def _resource_camera(key: str) -> colour.MultiSpectralDistributions:
    import os

    from colour.characterisation.aces_it import ROOT_RESOURCES_RAWTOACES

    path = os.path.join(ROOT_RESOURCES_RAWTOACES, _RESOURCE_CAMERAS[key])
    sds = colour.io.read_sds_from_csv_file(path)
    values = np.stack([sds[channel].values for channel in ("R", "G", "B")], axis=1)
    return colour.MultiSpectralDistributions(values, sds["R"].wavelengths, name=key)


@cache
def _sensitivity_array(key: str) -> np.ndarray:
    return camera_sensitivities(key).values.copy()


def _sensitivities(camera: str | colour.MultiSpectralDistributions) -> np.ndarray:
    if isinstance(camera, str):
        return _sensitivity_array(_camera_key(camera))
    return _values(camera)


@cache
def _basis() -> np.ndarray:
    return _align(colour.recovery.MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019).values.copy()


@cache
def _ybar() -> np.ndarray:
    return _align(colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]).values[:, 1].copy()


def _power(illuminant_spd: colour.SpectralDistribution) -> np.ndarray:
    return _values(illuminant_spd)


def camera_matrix(
    illuminant_spd: colour.SpectralDistribution, camera: str | colour.MultiSpectralDistributions
) -> np.ndarray:
    """The 3 x 3 matrix mapping linear sRGB reflectance coefficients to camera RGB under an illuminant.

    ``M[c, k] = sum_l B_k(l) E(l) S_c(l) dl`` with ``B`` the Mallett & Yuksel (2019) sRGB basis, so a
    surface of linear sRGB colour ``x`` (reflectance ``x @ B``) produces camera RGB ``M @ x`` exactly.

    Args:
        illuminant_spd: spectral power of the light, any scale (the matrix scales with it).
        camera: a camera name (see :func:`camera_sensitivities`) or its sensitivities.

    Returns:
        ``(3, 3)`` float64 array, rows camera channels, columns sRGB basis coefficients; non-negative.

    Example:
        >>> d65 = colour.SDS_ILLUMINANTS["D65"]
        >>> m = camera_matrix(d65, "nikon_d5100")
        >>> bool(np.allclose(m.sum(axis=1), illuminant_rgb(d65, "nikon_d5100"), rtol=1e-4))
        True
    """
    weighted = _power(illuminant_spd)[:, None] * _sensitivities(camera) * SPECTRAL_SHAPE.interval
    return weighted.T @ _basis()


def illuminant_rgb(
    illuminant_spd: colour.SpectralDistribution, camera: str | colour.MultiSpectralDistributions
) -> np.ndarray:
    """The camera's response to a perfect white under ``illuminant_spd``: ``sum_l E(l) S_c(l) dl``.

    This is the ground-truth illuminant colour in camera RGB (no black level; scale follows the SPD).

    Returns:
        ``(3,)`` float64 array, non-negative.

    Example:
        >>> rgb = illuminant_rgb(colour.SDS_ILLUMINANTS["A"], "nikon_d5100")
        >>> bool(rgb[0] > rgb[2])  # tungsten light is red-heavy
        True
    """
    return (_power(illuminant_spd) * SPECTRAL_SHAPE.interval) @ _sensitivities(camera)


def _luminance_normalised(values: np.ndarray, name: str) -> colour.SpectralDistribution:
    # Equal illuminance for every light, so the two lights of a mixture mix in physical proportions.
    y = float(values @ _ybar()) * SPECTRAL_SHAPE.interval
    return colour.SpectralDistribution(values / y, SPECTRAL_SHAPE.wavelengths, name=name)


@cache
def _table_entry(name: str) -> tuple[np.ndarray, float]:
    sd = colour.SDS_ILLUMINANTS[name]
    # On the table's own grid (CCT is scale-free, so a plain sum suffices): no extrapolation to 360 nm.
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(sd.shape)
    cct = colour.temperature.XYZ_to_CCT_Ohno2013(sd.values @ cmfs.values)[0]
    return _align(sd).values.copy(), float(cct)


def _kind_weights(kinds: Mapping[str, float] | Sequence[str]) -> tuple[list[str], np.ndarray]:
    items = list(kinds.items()) if isinstance(kinds, Mapping) else [(k, 1.0) for k in kinds]
    if not items:
        raise ValueError("kinds must name at least one illuminant kind")
    for name, weight in items:
        check_choice(name, ILLUMINANT_KINDS, "illuminant kind")
        if not weight >= 0:
            raise ValueError(f"illuminant kind weights must be >= 0, got {name!r}: {weight}")
    weights = np.array([w for _, w in items], dtype=np.float64)
    if weights.sum() <= 0:
        raise ValueError(f"illuminant kind weights must not all be zero, got {dict(items)}")
    return [k for k, _ in items], weights / weights.sum()


def sample_illuminant_spd(
    rng: np.random.Generator, kinds: Mapping[str, float] | Sequence[str] = DEFAULT_ILLUMINANT_KINDS
) -> tuple[colour.SpectralDistribution, dict[str, Any]]:
    """Draw one illuminant spectrum.

    Kinds (a mapping to sampling weights, or a sequence for equal weights):

    - ``"natural"``: CCT uniform in mired over 2500-10000 K; a black body (Planck's law) below 4000 K,
      the CIE D series at the CIE daylight-locus chromaticity of that CCT from 4000 K.
    - ``"shade"``: CIE D series, CCT uniform in mired over 10000-25000 K (blue sky, shade).
    - ``"fluorescent"``: CIE FL1-FL12 and FL3.1-FL3.15, uniformly.
    - ``"led"``: CIE LED-B1..B5, LED-BH1, LED-RGB1, LED-V1, LED-V2, uniformly.
    - ``"hid"``: CIE HP1-HP5 high-pressure discharge lamps (sodium, metal halide), uniformly.

    Args:
        rng: numpy random generator (the only source of randomness).
        kinds: which kinds to draw from and how often; default :data:`DEFAULT_ILLUMINANT_KINDS`.

    Returns:
        ``(spd, info)``: the spectrum on :data:`SPECTRAL_SHAPE`, scaled to unit luminance
        (``sum_l E(l) ybar(l) dl = 1``), and ``{"kind", "name", "cct"}`` (the drawn CCT for the loci,
        Ohno 2013 CCT of the tabulated lights).

    Raises:
        UnknownNameError: an unknown kind; the message lists the valid ones.

    Example:
        >>> spd, info = sample_illuminant_spd(np.random.default_rng(0), kinds=["fluorescent"])
        >>> info["kind"], spd.shape
        ('fluorescent', SpectralShape(400.0, 700.0, 10.0))
    """
    names, weights = _kind_weights(kinds)
    kind = names[int(rng.choice(len(names), p=weights))]
    if kind in _CCT_RANGES:
        lo, hi = _CCT_RANGES[kind]
        cct = 1e6 / rng.uniform(1e6 / hi, 1e6 / lo)
        if cct < _DAYLIGHT_MIN_CCT:
            values = colour.sd_blackbody(cct, SPECTRAL_SHAPE).values
            name = f"planckian {cct:.0f} K"
        else:
            xy = colour.temperature.CCT_to_xy_CIE_D(cct)
            values = _values(colour.sd_CIE_illuminant_D_series(xy))
            name = f"daylight {cct:.0f} K"
    else:
        table = _TABLES[kind]
        name = table[int(rng.integers(len(table)))]
        values, cct = _table_entry(name)
    return _luminance_normalised(np.asarray(values, dtype=np.float64), name), {
        "kind": kind,
        "name": name,
        "cct": float(cct),
    }
