"""Physically based synthetic photos of skin-colour patches, with their camera metadata as real EXIF.

The embedded default of the patch-colour task. Every photo shows a skin-reflectance patch lying on a card
(white border, neutral grey interior) in front of a cluttered background; the label is the patch's CIELAB
under D65 / 2 degrees, computed from its spectrum. The pipeline follows a real camera:

1. **Shade**: a skin reflectance spectrum drawn from :mod:`tinct.spectral.skin` (NIST-derived statistical
   model). Photos come in groups of ``photos_per_shade`` of one shade (the ``group`` column), so splits can
   hold whole shades out.
2. **Scene**: an illuminant spectrum (:func:`tinct.spectral.formation.sample_illuminant_spd`: daylight, shade,
   Planckian, fluorescent, LED, discharge) at an illuminance drawn log-uniformly from 50 to 30000 lux; the
   patch (with +-2 % texture and 0-3 specular or dust spots), the card (a spectrally flat grey card of
   reflectance 0.20 with a 0.87 white border, the same in every photo like a real reference card) and background colours (lifted to spectra with the Mallett & Yuksel basis) are seen
   through the camera's spectral sensitivities. A soft shadow (Gaussian edge) falls on part of the card
   and background, never on the patch.
3. **Exposure**: the camera meters the centre-weighted scene luminance (``EV100 = log2(L * 100 / 12.5)``,
   written as the APEX BrightnessValue ``Bv = EV100 - 5``); the photographer adds an exposure compensation
   (usually small, in 35 % of photos anywhere in +-2.3 EV, hence over- and under-exposure with clipping);
   the program picks an aperture, raises ISO (up to 3200) to keep the shutter at 1/30 s or faster, and the written
   ``(t, N, ISO)`` set the exposure, so the metadata describe the image exactly.
4. **Sensor and processing**: vignetting (10-30 % at the corners), signal-dependent noise growing with ISO,
   clipping at saturation, an auto white balance that errs (per-channel log-normal gains, 3 % typical,
   10 % in 15 % of photos) and adapts incompletely (gains blended 75 / 25 with the daylight preset, so
   tungsten light stays warm, as most cameras render it), the camera's D65 colour matrix to linear sRGB (fitted on the ColorChecker and
   skin spectra), a per-camera tone curve (sRGB with its own contrast), 8-bit JPEG at quality 80-95.

Three cameras with measured sensitivities (colour-science): Nikon D5100, Sigma SD1 Merrill (NPL) and Canon
EOS 5D Mark II (rawtoaces). ``labels.csv`` holds ``image, L, a, b, group`` plus what only a generator knows
(true patch box ``patch_x0..patch_y1``, illuminant, lux, exposure compensation, AWB error); the camera and
exposure are only in each JPEG's EXIF, so reading a generated set exercises the EXIF path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from tinct.core.exceptions import ConfigError

__all__ = ["PATCH_CAMERAS", "SYNTH_PATCHES_FORMAT", "render_patch_photo", "synthesize_patches"]

SYNTH_PATCHES_FORMAT = "tinct synthetic skin patches v1"

#: Camera name -> (EXIF Make, EXIF Model, tone-curve contrast).
PATCH_CAMERAS: dict[str, tuple[str, str, float]] = {
    "nikon_d5100": ("NIKON CORPORATION", "NIKON D5100", 0.25),
    "sigma_sdmerrill": ("SIGMA", "SIGMA SD1 Merrill", 0.0),
    "canon_eos_5d_mark_ii": ("Canon", "Canon EOS 5D Mark II", -0.15),
}
#: The card's reflectances (spectrally flat): a photographer's grey card with a white border, the same
#: in every photo, as a real reference card is; the context around the patch is then a colour reference.
CARD_WHITE, CARD_GREY = 0.87, 0.20
#: How far the auto white balance goes from the daylight preset toward its estimate (1 = complete).
AWB_ADAPTATION = 0.75
_VIGNETTING = (0.1, 0.3)  # light lost at the corners
_AWB_SIGMA = (0.03, 0.10)  # per-channel log error of the AWB estimate: typical, and in 15 % of photos
_APERTURES = (2.8, 4.0, 5.6, 8.0)
_ISOS = (100, 200, 400, 800, 1600, 3200)
# IEC 61966-2-1 (sRGB), D65.
_XYZ_TO_SRGB = np.array(
    [
        [3.2404542, -1.5371385, -0.4985314],
        [-0.9692660, 1.8760108, 0.0415560],
        [0.0556434, -0.2040259, 1.0572252],
    ]
)
_SLOWEST = 1 / 30
_FASTEST = 1 / 8000


def _wavelength_index() -> np.ndarray:
    from tinct.spectral.formation import SPECTRAL_SHAPE
    from tinct.spectral.skin import SKIN_WAVELENGTHS

    return np.searchsorted(SKIN_WAVELENGTHS, SPECTRAL_SHAPE.wavelengths)


@cache
def _camera_constants(camera: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sensitivities (W, 3) scaled so D65 white has green 1, ccm (3, 3) camera -> linear sRGB at D65,
    the camera RGB of a white under D65)``."""
    from tinct.spectral.formation import SPECTRAL_SHAPE, _sensitivities, colour
    from tinct.spectral.skin import load_skin_model, reflectance_to_xyz

    sens = _sensitivities(camera) * SPECTRAL_SHAPE.interval
    d65 = colour.SDS_ILLUMINANTS["D65"].copy().align(SPECTRAL_SHAPE).values
    ybar = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(SPECTRAL_SHAPE).values[:, 1]
    d65 = d65 / (d65 @ ybar * SPECTRAL_SHAPE.interval)
    white = d65 @ sens
    sens = sens / white[1]
    white = white / white[1]
    # Training reflectances: the 24 ColorChecker patches plus 40 skin spectra.
    checker = colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"]
    refl = [sd.copy().align(SPECTRAL_SHAPE).values for sd in checker.values()]
    skin = load_skin_model().sample(np.random.default_rng(12345), 40)
    refl = np.vstack([np.stack(refl), skin[:, _wavelength_index()]])
    cam = (refl * d65) @ sens / white  # white balanced to D65
    shape5 = colour.SpectralShape(380, 780, 5)
    full = np.vstack([np.stack([sd.copy().align(shape5).values for sd in checker.values()]), skin])
    srgb = reflectance_to_xyz(full) @ _XYZ_TO_SRGB.T
    ccm = np.linalg.lstsq(cam, srgb, rcond=None)[0].T
    return sens, ccm / (ccm @ np.ones(3))[:, None], white  # white stays white


def _tone(x: np.ndarray, contrast: float) -> np.ndarray:
    """sRGB encoding followed by the camera's own S-curve (``contrast`` 0 = plain sRGB)."""
    x = np.clip(x, 0.0, 1.0)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)
    return np.clip(y + contrast * y * (1 - y) * (2 * y - 1), 0.0, 1.0)


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], grid: tuple[int, int], channels: int
) -> np.ndarray:
    import cv2

    h, w = shape
    small = rng.random((grid[1], grid[0], channels)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels).astype(np.float64)


def _layout(rng: np.random.Generator, w: int, h: int) -> dict[str, Any]:
    card_w = round(rng.uniform(0.55, 0.75) * w)
    card_h = min(round(card_w * rng.uniform(0.6, 0.8)), int(0.85 * h))
    cx = w / 2 + rng.uniform(-0.08, 0.08) * w
    cy = h / 2 + rng.uniform(-0.08, 0.08) * h
    x0 = int(np.clip(round(cx - card_w / 2), 2, w - card_w - 2))
    y0 = int(np.clip(round(cy - card_h / 2), 2, h - card_h - 2))
    border = max(2, round(rng.uniform(0.04, 0.06) * card_w))
    pw = round(rng.uniform(0.30, 0.45) * card_w)
    ph = min(round(pw * rng.uniform(0.8, 1.25)), card_h - 2 * border - 8)
    ix0, iy0, ix1, iy1 = x0 + border + 4, y0 + border + 4, x0 + card_w - border - 4, y0 + card_h - border - 4
    px0 = int(rng.integers(ix0, max(ix0 + 1, ix1 - pw)))
    py0 = int(rng.integers(iy0, max(iy0 + 1, iy1 - ph)))
    return {
        "card": (x0, y0, x0 + card_w, y0 + card_h),
        "border": border,
        "patch": (px0, py0, min(px0 + pw, ix1), min(py0 + ph, iy1)),
    }


def _shadow(rng: np.random.Generator, w: int, h: int, patch: tuple[int, int, int, int]) -> np.ndarray:
    """Illumination factor in (0, 1]: a soft-edged half-plane shadow beside (never on) the patch."""
    from scipy.special import ndtr

    if rng.random() < 0.2:
        return np.ones((h, w))
    sigma = rng.uniform(3.0, 8.0)
    depth = rng.uniform(0.3, 0.6)
    side = int(rng.integers(4))
    angle = np.deg2rad(rng.uniform(-15, 15)) + side * np.pi / 2
    normal = np.array([np.cos(angle), np.sin(angle)])  # points into the shadow
    px0, py0, px1, py1 = patch
    corners = np.array([[px0, py0], [px1 - 1, py0], [px0, py1 - 1], [px1 - 1, py1 - 1]], dtype=np.float64)
    offset = (corners @ normal).max() + 4 + 2 * sigma + rng.uniform(0, 15)
    yy, xx = np.mgrid[0:h, 0:w]
    while True:
        dist = xx * normal[0] + yy * normal[1] - offset
        factor = 1 - depth * ndtr(dist / sigma)
        if factor[py0:py1, px0:px1].min() >= 0.995:
            return factor
        offset += sigma


def _choose_exposure(rng: np.random.Generator, ev_target: float) -> tuple[float, float, int]:
    """``(t, N, ISO)`` as a camera's program would set them for the wanted EV100 (t a nominal fraction)."""
    n = float(_APERTURES[int(rng.integers(len(_APERTURES)))])
    iso = 100
    t = n**2 / 2**ev_target
    while t > _SLOWEST and iso < _ISOS[-1]:
        iso *= 2
        t /= 2
    t = float(np.clip(t, _FASTEST, 1 / 4))
    # Cameras set shutter times in third stops and write them as fractions (1/60, 1/125...).
    t = 2 ** (round(3 * np.log2(t)) / 3)
    t = float(Fraction(1, max(1, round(1 / t)))) if t < 0.5 else float(Fraction(t).limit_denominator(10))
    return t, n, iso


def render_patch_photo(
    index: int, *, seed: int = 0, size: tuple[int, int] = (160, 120), cameras: Sequence[str] = tuple(PATCH_CAMERAS),
    photos_per_shade: int = 8,
) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
    """Render photo ``index`` of a synthetic set: ``(sRGB uint8 (H, W, 3), record)``.

    The record holds the label (``L, a, b``), the shade ``group``, the camera name, the EXIF values
    (``exposure_time, iso, f_number, brightness``) and generator truths (patch box, illuminant, lux,
    exposure compensation, AWB error in degrees). Deterministic in ``(seed, index)``.
    """
    from tinct.spectral.formation import _basis, sample_illuminant_spd
    from tinct.spectral.skin import load_skin_model, reflectance_to_lab

    w, h = size
    shade = index // photos_per_shade
    spectrum = load_skin_model().sample(np.random.default_rng([seed, 1, shade]), 1)[0]
    lab = reflectance_to_lab(spectrum)
    rng = np.random.default_rng([seed, 0, index])
    camera = cameras[int(rng.integers(len(cameras)))]
    sens, ccm, d65_white = _camera_constants(camera)
    spd, light = sample_illuminant_spd(rng)
    power = spd.values
    white = power @ sens  # camera response to a perfect white under the light (unit luminance)

    # Scene in camera RGB per unit illuminance (white reflector = `white`).
    layout = _layout(rng, w, h)
    bg = 0.03 + 0.87 * _smooth_field(rng, (h, w), (4, 3), 3)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, w - 4)), int(rng.integers(0, h - 4))
        x1, y1 = int(x0 + rng.integers(4, w // 3)), int(y0 + rng.integers(4, h // 3))
        bg[y0:y1, x0:x1] = 0.03 + 0.87 * rng.random(3)
    scene = bg @ ((power[:, None] * sens).T @ _basis()).T
    x0, y0, x1, y1 = layout["card"]
    b = layout["border"]
    scene[y0:y1, x0:x1] = CARD_WHITE * white
    scene[y0 + b : y1 - b, x0 + b : x1 - b] = CARD_GREY * white
    px0, py0, px1, py1 = layout["patch"]
    skin_rgb = (spectrum[_wavelength_index()] * power) @ sens
    texture = 1 + 0.02 * (2 * _smooth_field(rng, (py1 - py0, px1 - px0), (6, 6), 1) - 1)
    scene[py0:py1, px0:px1] = skin_rgb * texture
    for _ in range(int(rng.integers(0, 4))):
        sy, sx = int(rng.integers(py0 + 2, py1 - 2)), int(rng.integers(px0 + 2, px1 - 2))
        r = int(rng.integers(1, 3))
        spot = scene[sy : sy + r, sx : sx + r]
        scene[sy : sy + r, sx : sx + r] = (
            spot + rng.uniform(0.5, 1.0) * white if rng.random() < 0.5 else spot * rng.uniform(0.2, 0.5)
        )
    scene = scene * _shadow(rng, w, h, layout["patch"])[..., None]

    # Metering and exposure.
    lux = float(np.exp(rng.uniform(np.log(50.0), np.log(30000.0))))
    yy, xx = np.mgrid[0:h, 0:w]
    centre = np.exp(-(((xx - w / 2) / (0.35 * w)) ** 2 + ((yy - h / 2) / (0.35 * h)) ** 2))
    y_avg = float((scene[..., 1] * centre).sum() / centre.sum())
    ev_meter = float(np.log2(y_avg * lux / np.pi * 100 / 12.5))
    comp = rng.normal(0, 0.3) if rng.random() < 0.65 else rng.uniform(-2.3, 2.3)
    t, n, iso = _choose_exposure(rng, ev_meter - comp)
    ev100 = float(np.log2(n**2 / t) - np.log2(iso / 100))
    vignette = (
        1 - rng.uniform(*_VIGNETTING) * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2) / 2
    )
    raw = scene * (lux / np.pi) * 1.44 * 2.0**-ev100 * vignette[..., None]
    gain = iso / 100
    raw = raw + rng.standard_normal(raw.shape) * np.sqrt(
        2e-5 * gain * np.clip(raw, 0, 1) + (1.5e-4 * gain) ** 2
    )
    raw = np.clip(raw, 0.0, 1.0)

    # Auto white balance: it errs, and like most cameras' AWB it adapts incompletely (its gains are a
    # geometric blend of the estimate's and the daylight preset's), so warm light stays a little warm.
    sigma = _AWB_SIGMA[0] if rng.random() < 0.85 else _AWB_SIGMA[1]
    estimate = white * np.exp(rng.normal(0, sigma, 3))
    gains = (estimate[1] / estimate) ** AWB_ADAPTATION * (d65_white[1] / d65_white) ** (1 - AWB_ADAPTATION)
    balanced = raw * gains
    cos = float(estimate @ white / (np.linalg.norm(estimate) * np.linalg.norm(white)))
    rgb = balanced @ ccm.T
    make, model, contrast = PATCH_CAMERAS[camera]
    image = np.round(_tone(rgb, contrast) * 255).astype(np.uint8)
    record = {
        "L": float(lab[0]), "a": float(lab[1]), "b": float(lab[2]), "group": f"shade{shade:04d}",
        "camera": camera, "make": make, "model": model,
        "exposure_time": t, "iso": iso, "f_number": n, "brightness": round(ev_meter - 5, 2),
        "patch_x0": px0, "patch_y0": py0, "patch_x1": px1, "patch_y1": py1,
        "illuminant": light["name"], "cct": round(light["cct"], 1), "lux": round(lux, 1),
        "exposure_comp": round(ev_meter - ev100, 3),
        "awb_error": round(float(np.degrees(np.arccos(min(1.0, cos)))), 3),
        "jpeg_quality": int(rng.integers(80, 96)),
    }  # fmt: skip
    return image, record


_LABEL_COLUMNS = ("image", "L", "a", "b", "group")
_TRUTH_COLUMNS = (
    "patch_x0", "patch_y0", "patch_x1", "patch_y1", "illuminant", "cct", "lux", "exposure_comp", "awb_error",
)  # fmt: skip


def synthesize_patches(
    out: str | os.PathLike[str],
    n: int = 2000,
    *,
    size: tuple[int, int] = (160, 120),
    cameras: Sequence[str] = tuple(PATCH_CAMERAS),
    photos_per_shade: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write ``n`` synthetic skin-patch photos (JPEG with EXIF) and ``labels.csv`` into ``out``.

    Rerunning the same command resumes: photos already written are kept (every photo is determined by
    ``(seed, index)``), and ``labels.csv`` and ``synth.json`` are written last, atomically, so a folder with
    them is complete. A folder generated with other parameters is refused.

    Args:
        out: output folder.
        n: number of photos; shades are ``ceil(n / photos_per_shade)``.
        size: ``(width, height)`` in pixels.
        cameras: names from :data:`PATCH_CAMERAS`; each photo draws one.
        photos_per_shade: photos of each skin shade (the ``group`` column).
        seed: random seed.
        progress: show a progress bar.

    Returns:
        The folder.

    Raises:
        ConfigError: bad parameters, or ``out`` holds a set made with other parameters.
    """
    import pandas as pd
    from PIL import Image

    from tinct.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
    from tinct.core.progress import track
    from tinct.io.exif import PhotoMeta, exif_bytes

    if n < 1 or photos_per_shade < 1:
        raise ConfigError(f"n and photos_per_shade must be >= 1, got {n} and {photos_per_shade}")
    if min(size) < 48:
        raise ConfigError(f"size must be at least 48 x 48 pixels, got {size[0]} x {size[1]}")
    unknown = [c for c in cameras if c not in PATCH_CAMERAS]
    if unknown or not cameras:
        raise ConfigError(f"unknown camera(s) {unknown}; valid: {', '.join(PATCH_CAMERAS)}")
    root = Path(out)
    params = {
        "format": SYNTH_PATCHES_FORMAT, "n": n, "size": list(size), "cameras": list(cameras),
        "photos_per_shade": photos_per_shade, "seed": seed,
    }  # fmt: skip
    info = root / "synth.json"
    if info.is_file():
        try:
            old = json.loads(info.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{info}: not a synthetic-patch record ({err})") from err
        if old != params:
            raise ConfigError(
                f"{root} holds a synthetic set made with {old}, not {params}; use another --out"
            )
        if (root / "labels.csv").is_file():
            return root
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in track(range(n), description="rendering skin patches", enabled=progress):
        name = f"patch_{i:05d}.jpg"
        image, rec = render_patch_photo(
            i, seed=seed, size=size, cameras=cameras, photos_per_shade=photos_per_shade
        )
        target = root / name
        if not target.is_file():
            meta = PhotoMeta(rec["exposure_time"], rec["iso"], rec["f_number"], rec["brightness"])
            exif = exif_bytes(meta, make=rec["make"], model=rec["model"])
            buffer = _jpeg(Image.fromarray(image), exif, rec["jpeg_quality"])
            atomic_write_bytes(target, buffer)
        rows.append({"image": name, **{k: rec[k] for k in _LABEL_COLUMNS[1:] + _TRUTH_COLUMNS}})
    table = pd.DataFrame(rows)
    for column in ("L", "a", "b"):
        table[column] = table[column].round(4)
    atomic_write_text(root / "labels.csv", table.to_csv(index=False))
    atomic_write_json(info, params)
    return root


def _jpeg(image: Any, exif: bytes, quality: int) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, exif=exif)
    return buffer.getvalue()
