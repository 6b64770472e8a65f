"""A physically based synthetic colour-constancy dataset in the SimpleCube++ layout.

Each image is formed spectrally: a scene of linear sRGB colours (bundled scikit-image photographs or
procedural textures, :mod:`tinct.constancy.scenes`) is lifted to spectral reflectance with the
Mallett & Yuksel (2019) basis, lit by a CIE illuminant spectrum (Planckian, daylight, fluorescent, LED,
high-pressure lamp) and seen through a real camera's measured spectral sensitivities
(:mod:`tinct.spectral.formation`). Because reflectance is linear in its three coefficients, each illuminant
reduces to one exact 3 x 3 matrix: no per-pixel spectra are ever formed.

A fraction of the images is lit by two illuminants blended smoothly across the frame (a sigmoid edge of
random direction, position and softness). Their ground truth is the area-weighted mean of the per-pixel
illuminant, ``(1 - w) L1 + w L2`` with ``w`` the mean blend weight (< 0.5, so ``L1`` is the dominant light);
both lights have equal luminance, so this is also the response to a white under the mean spectrum.

The code values follow SimpleCube++ (Canon EOS 550D raws). A random exposure puts the scene's 98th
percentile between 0.2 and 1.25 of the white range (so about one image in eight clips noticeably), shot
noise (Gaussian, variance = signal in electrons; the full well shrinks with a random ISO) and Gaussian read
noise are added, then the black level (2048), clipping to the saturation level (2**14 - 1) and rounding to
integers. The bottom-right sixth of the frame (width and height) is zeroed like SimpleCube++'s SpyderCube,
so a loader that subtracts the black level sees it as below black and must mask it.

Layout::

    OUT/synth.json                 generation parameters and one record per image
    OUT/{train,test}/gt.csv        image,r,g,b (stem without extension; illuminant in camera RGB, unit L2 norm)
    OUT/{train,test}/PNG/<stem>.png  16-bit RGB raw, stems synth_00000 ...: black level added, integers
                                   in [0, saturation]

Image ``i`` depends only on ``(seed, i)`` (``numpy.random.default_rng([seed, i])``); image ``i`` is in the
test split when ``floor((i + 1) * test_fraction) > floor(i * test_fraction)`` (every fourth image by
default), so the splits do not change when ``n`` grows. An interrupted run restarted with the same parameters skips existing images and writes identical
files; ``gt.csv`` and ``synth.json`` are written atomically at the end.

References:
    Banić, Koščević, Lončarić, "Unsupervised learning for color constancy", VISAPP 2018 (Cube+), and
    SimpleCube++ (https://github.com/Visillect/CubePlusPlus).
    Mallett & Yuksel, "Spectral Primary Decomposition for Rendering with sRGB Reflectance", EGSR 2019.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinct.constancy.scenes import PHOTOS, SCENE_KINDS, render_scene
from tinct.core.atomic import atomic_write_json, atomic_write_text
from tinct.core.checks import check_choice
from tinct.core.exceptions import ConfigError
from tinct.io.image import write_image
from tinct.spectral.formation import (
    CAMERA_KEYS,
    CAMERAS,
    DEFAULT_ILLUMINANT_KINDS,
    ILLUMINANT_KINDS,
    SPECTRAL_SHAPE,
    camera_matrix,
    camera_sensitivities,
    illuminant_rgb,
    sample_illuminant_spd,
)

__all__ = [
    "CAMERAS",
    "DEFAULT_SCENES",
    "camera_matrix",
    "camera_sensitivities",
    "illuminant_rgb",
    "sample_illuminant_spd",
    "synthesize_constancy",
]

#: Default scene mix: half photographs, half procedural.
DEFAULT_SCENES: Mapping[str, float] = {"photo": 0.5, "mondrian": 0.2, "texture": 0.15, "gradient": 0.15}
_FORMAT = "tinct synthetic colour constancy v1"


def _weights(
    choices: Mapping[str, float] | Sequence[str], valid: Sequence[str], what: str
) -> dict[str, float]:
    items = dict(choices) if isinstance(choices, Mapping) else dict.fromkeys(choices, 1.0)
    for name, weight in items.items():
        check_choice(name, valid, what)
        if not weight >= 0:
            raise ValueError(f"{what} weights must be >= 0, got {name!r}: {weight}")
    if not items or sum(items.values()) <= 0:
        raise ValueError(f"{what} weights must include a positive one, got {items}")
    return {k: float(v) for k, v in items.items()}


def _is_test(i: int, fraction: float) -> bool:
    return int((i + 1) * fraction) > int(i * fraction)


def _corner(width: int, height: int, fraction: float) -> tuple[slice, slice]:
    return slice(height - round(height * fraction), height), slice(width - round(width * fraction), width)


def _blend_map(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A sigmoid edge across the frame: random direction, position in the central half, softness."""
    scale = 2.0 / max(width, height)
    x = (np.arange(width) + 0.5 - width / 2) * scale
    y = (np.arange(height) + 0.5 - height / 2) * scale
    angle = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(-0.5, 0.5)
    softness = np.exp(rng.uniform(np.log(0.03), np.log(0.5)))
    proj = np.cos(angle) * x[None, :] + np.sin(angle) * y[:, None]
    return (1.0 / (1.0 + np.exp(-(proj - offset) / softness))).astype(np.float32)


def _plan(i: int, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], np.random.Generator]:
    """Everything about image ``i`` except its pixels: the record, render state, and the generator.

    Rendering continues with the returned generator, so a skipped image needs only this cheap part.
    """
    rng = np.random.default_rng([p["seed"], i])
    width, height = p["size"]
    camera = p["camera"]
    mixture = bool(rng.random() < p["mixture_fraction"])
    spd, info = sample_illuminant_spd(rng, p["illuminants"])
    state: dict[str, Any] = {"matrices": [camera_matrix(spd, camera)], "blend": None}
    gt = illuminant_rgb(spd, camera)
    record: dict[str, Any] = {"illuminant": info, "mixture": mixture}
    if mixture:
        spd2, info2 = sample_illuminant_spd(rng, p["illuminants"])
        blend = _blend_map(rng, width, height)
        usable = np.ones((height, width), bool)
        usable[_corner(width, height, p["corner"])] = False
        w = float(blend[usable].mean())
        lights = [(spd, info), (spd2, info2)]
        if w > 0.5:
            lights.reverse()
            blend, w = 1.0 - blend, 1.0 - w
        (spd, info), (spd2, info2) = lights
        state = {"matrices": [camera_matrix(spd, camera), camera_matrix(spd2, camera)], "blend": blend}
        gt = (1.0 - w) * illuminant_rgb(spd, camera) + w * illuminant_rgb(spd2, camera)
        record.update(illuminant=info, second_illuminant=info2, mixture_weight=w)
    lo, hi = p["exposure_range"]
    record["exposure"] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    iso_lo, iso_hi = p["iso_range"]
    record["iso"] = float(np.exp(rng.uniform(np.log(iso_lo), np.log(iso_hi))))
    kinds = list(p["scenes"])
    probs = np.array([p["scenes"][k] for k in kinds]) / sum(p["scenes"].values())
    kind = kinds[int(rng.choice(len(kinds), p=probs))]
    source = PHOTOS[int(rng.integers(len(PHOTOS)))] if kind == "photo" else None
    record["scene"] = {"kind": kind, "source": source}
    record["gt"] = (gt / np.linalg.norm(gt)).tolist()
    return record, state, rng


def _render(
    record: dict[str, Any], state: dict[str, Any], rng: np.random.Generator, p: dict[str, Any]
) -> np.ndarray:
    """The raw image (``H x W x 3`` uint16) of a planned record."""
    width, height = p["size"]
    scene = render_scene(rng, record["scene"]["kind"], width, height, record["scene"]["source"])
    flat = scene.reshape(-1, 3)
    signal = flat @ state["matrices"][0].T.astype(np.float32)
    if state["blend"] is not None:
        second = flat @ state["matrices"][1].T.astype(np.float32)
        second -= signal
        second *= state["blend"].reshape(-1, 1)
        signal += second
    white = p["saturation"] - p["black_level"]
    brightest = np.maximum(np.maximum(signal[:, 0], signal[:, 1]), signal[:, 2])
    level = float(np.percentile(brightest, p["exposure_percentile"]))
    signal *= record["exposure"] * white / max(level, 1e-12)
    if p["noise"]:
        # Shot noise (variance = electrons) plus read noise, in electrons, then back to code values.
        electrons_per_dn = p["full_well"] / white * (100.0 / record["iso"])
        sigma = signal * electrons_per_dn
        sigma += p["read_noise"] ** 2
        np.sqrt(sigma, out=sigma)
        sigma *= rng.standard_normal(signal.shape, dtype=np.float32)
        sigma /= electrons_per_dn
        signal += sigma
    signal += p["black_level"]
    np.clip(signal, 0, p["saturation"], out=signal)
    raw = np.rint(signal, out=signal).astype(np.uint16)
    raw = raw.reshape(height, width, 3)
    raw[_corner(width, height, p["corner"])] = 0
    return raw


def _check_params(path: Path, params: dict[str, Any]) -> None:
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8")).get("params", {})
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read the parameters of the existing data ({err})") from err
    new = json.loads(json.dumps(params))
    changed = sorted(k for k in new.keys() | old.keys() if old.get(k) != new.get(k))
    if changed:
        raise ConfigError(
            f"{path}: the folder holds images generated with other parameters (differing: "
            f"{', '.join(changed)}); use a new folder or the same parameters"
        )


def synthesize_constancy(
    out: str | os.PathLike[str],
    n: int = 1000,
    camera: str = "nikon_d5100",
    size: tuple[int, int] = (324, 216),
    test_fraction: float = 0.25,
    seed: int = 0,
    mixture_fraction: float = 0.15,
    black_level: int = 2048,
    saturation: int = 2**14 - 1,
    progress: bool = True,
    *,
    illuminants: Mapping[str, float] | Sequence[str] = DEFAULT_ILLUMINANT_KINDS,
    scenes: Mapping[str, float] | Sequence[str] = DEFAULT_SCENES,
    exposure_range: tuple[float, float] = (0.2, 1.25),
    exposure_percentile: float = 98.0,
    noise: bool = True,
    full_well: float = 20000.0,
    read_noise: float = 3.0,
    iso_range: tuple[float, float] = (100.0, 1600.0),
    corner: float = 1 / 6,
) -> Path:
    """Generate ``n`` synthetic raw images with ground-truth illuminants in the SimpleCube++ layout.

    Args:
        out: output folder (created; an existing one with the same parameters is completed, not redone).
        n: number of images (indices ``0 .. n-1``, stems ``synth_00000`` ...; not all digits, so
            ``pandas.read_csv`` keeps them strings).
        camera: one of :data:`CAMERAS` or its colour-science key.
        size: ``(width, height)`` in pixels.
        test_fraction: fraction of images in ``test/`` (every ``1 / test_fraction``-th index).
        seed: base seed; image ``i`` uses ``numpy.random.default_rng([seed, i])``.
        mixture_fraction: fraction of images lit by two blended illuminants.
        black_level: added to every raw value (code values).
        saturation: clipping level (code values), at most 65535.
        progress: show a ``rich`` progress bar.
        illuminants: illuminant kinds and weights, see :func:`~tinct.spectral.formation.sample_illuminant_spd`.
        scenes: scene kinds and weights, see :data:`~tinct.constancy.scenes.SCENE_KINDS`
            (``"flat"``, a uniform spectrally flat grey, is for checks).
        exposure_range: log-uniform range of the level, as a fraction of ``saturation - black_level``,
            at which the ``exposure_percentile`` of the per-pixel maximum channel lands before noise.
        exposure_percentile: see ``exposure_range``.
        noise: add shot and read noise (else only quantisation).
        full_well: electrons at the white level at ISO 100 (the full well at ISO ``s`` is ``100 / s`` of it).
        read_noise: read-noise standard deviation in electrons.
        iso_range: log-uniform range of the ISO setting.
        corner: side fraction of the zeroed bottom-right SpyderCube-like rectangle (0 for none).

    Returns:
        The output folder.

    Raises:
        UnknownNameError: unknown camera, illuminant kind or scene kind (the message lists choices).
        ConfigError: ``out`` already holds images generated with other parameters.
        ValueError: an out-of-range number.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    camera_sensitivities(camera)
    name = next((k for k, v in CAMERA_KEYS.items() if camera in (k, v)), camera)
    width, height = (int(v) for v in size)
    if n < 1 or width < 8 or height < 8:
        raise ValueError(f"need n >= 1 and size >= (8, 8), got n={n}, size={size}")
    if not (0 <= test_fraction < 1 and 0 <= mixture_fraction <= 1 and 0 <= corner < 0.5):
        raise ValueError(
            "need 0 <= test_fraction < 1, 0 <= mixture_fraction <= 1, 0 <= corner < 0.5; got "
            f"{test_fraction}, {mixture_fraction}, {corner}"
        )
    if not 0 <= black_level < saturation <= 65535:
        raise ValueError(f"need 0 <= black_level < saturation <= 65535, got {black_level}, {saturation}")
    if not (0 < exposure_range[0] <= exposure_range[1] and 0 < iso_range[0] <= iso_range[1]):
        raise ValueError(
            f"exposure_range and iso_range must be 0 < low <= high, got {exposure_range}, {iso_range}"
        )
    if not (0 < exposure_percentile <= 100 and full_well > 0 and read_noise >= 0):
        raise ValueError("need 0 < exposure_percentile <= 100, full_well > 0, read_noise >= 0")
    sample_illuminant_spd(np.random.default_rng(0), illuminants)  # validates the kinds early
    params: dict[str, Any] = {
        "format": _FORMAT,
        "camera": name,
        "size": [width, height],
        "seed": int(seed),
        "test_fraction": float(test_fraction),
        "mixture_fraction": float(mixture_fraction),
        "black_level": int(black_level),
        "saturation": int(saturation),
        "illuminants": _weights(illuminants, ILLUMINANT_KINDS, "illuminant kind"),
        "scenes": _weights(scenes, SCENE_KINDS, "scene kind"),
        "exposure_range": [float(v) for v in exposure_range],
        "exposure_percentile": float(exposure_percentile),
        "noise": bool(noise),
        "full_well": float(full_well),
        "read_noise": float(read_noise),
        "iso_range": [float(v) for v in iso_range],
        "corner": float(corner),
        "spectral_shape": [SPECTRAL_SHAPE.start, SPECTRAL_SHAPE.end, SPECTRAL_SHAPE.interval],
    }
    root = Path(out)
    meta = root / "synth.json"
    _check_params(meta, params)
    for split in ("train", "test"):
        (root / split / "PNG").mkdir(parents=True, exist_ok=True)
    atomic_write_json(meta, {"params": params, "n": n, "complete": False, "images": []})

    digits = max(5, len(str(n - 1)))
    records: list[dict[str, Any]] = []
    columns = (TextColumn("synth-constancy"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("images", total=n)
        for i in range(n):
            stem = f"synth_{i:0{digits}d}"
            split = "test" if _is_test(i, test_fraction) else "train"
            record, state, rng = _plan(i, params)
            path = root / split / "PNG" / f"{stem}.png"
            if not path.is_file():
                write_image(path, _render(record, state, rng, params) / 65535.0, bit_depth=16)
            records.append({"stem": stem, "split": split, **record})
            bar.advance(task)

    for split in ("train", "test"):
        rows = [
            f"{r['stem']},{r['gt'][0]:.10f},{r['gt'][1]:.10f},{r['gt'][2]:.10f}"
            for r in records
            if r["split"] == split
        ]
        atomic_write_text(root / split / "gt.csv", "\n".join(["image,r,g,b", *rows]) + "\n")
    atomic_write_json(
        meta,
        {"params": params, "n": n, "complete": True, "gt_normalisation": "unit L2 norm", "images": records},
    )
    return root
