"""Scene reflectances for the synthetic colour-constancy data: photographs and procedural textures.

Every scene is an ``H x W x 3`` float32 array of linear sRGB colours in [0, 1], read as the coefficients of
the Mallett & Yuksel (2019) reflectance basis (see :mod:`tinct.spectral.formation`). Photographs are the
natural sRGB images bundled with scikit-image (no download), decoded with the sRGB EOTF, randomly cropped,
scaled and mirrored; procedural scenes are Mondrians, smooth multi-colour textures and gradients under
smooth shading. Each generator takes a ``numpy.random.Generator`` as its only source of randomness.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

__all__ = [
    "PHOTOS",
    "SCENE_KINDS",
    "flat_scene",
    "gradient_scene",
    "mondrian_scene",
    "photo_scene",
    "render_scene",
    "texture_scene",
]

#: scikit-image's bundled natural RGB photographs (``skimage.data`` loaders that need no download).
PHOTOS: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
)


@cache
def _srgb_lut() -> np.ndarray:
    # IEC 61966-2-1 sRGB decoding of the 256 8-bit codes.
    v = np.arange(256, dtype=np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


@cache
def _photo(name: str) -> np.ndarray:
    import skimage.data

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        image = left if name == "motorcycle_left" else right
    else:
        image = getattr(skimage.data, name)()
    return np.ascontiguousarray(image[:, :, :3])


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrinking = image.shape[1] >= width and image.shape[0] >= height
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def photo_scene(rng: np.random.Generator, width: int, height: int, name: str) -> np.ndarray:
    """A random crop (40-100 % of the largest crop of the output's aspect ratio) of a bundled photo."""
    image = _photo(name)
    ih, iw = image.shape[:2]
    ch_max = min(ih, iw * height / width)
    ch = max(4, int(ch_max * rng.uniform(0.4, 1.0)))
    cw = min(iw, max(4, round(ch * width / height)))
    y0, x0 = int(rng.integers(ih - ch + 1)), int(rng.integers(iw - cw + 1))
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    # Decode before resampling: averaging must happen on linear values.
    return np.clip(_resize(_srgb_lut()[crop], width, height), 0.0, 1.0)


def _colours(rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` surface colours: brightness log-uniform in [0.03, 0.9], mostly low chroma as in nature."""
    value = np.exp(rng.uniform(np.log(0.03), np.log(0.9), size=(k, 1)))
    hue = rng.dirichlet(np.ones(3), size=k) * 3.0
    chroma = rng.beta(1.2, 2.5, size=(k, 1))
    return np.clip(value * ((1.0 - chroma) + chroma * hue), 0.0, 1.0).astype(np.float32)


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates, ``x`` in [-1, 1] and ``y`` scaled by the same factor."""
    scale = 2.0 / max(width, height)
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) * scale
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) * scale
    return np.meshgrid(x, y)


def _fractal_noise(rng: np.random.Generator, width: int, height: int, octaves: int = 5) -> np.ndarray:
    """Smooth noise with a 1/f-like spectrum, zero mean, unit standard deviation, ``H x W``."""
    import cv2

    total = np.zeros((height, width), np.float32)
    for o in range(octaves):
        cells = 2 ** (o + 1)
        coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
        total += 0.6**o * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return (total - total.mean()) / max(float(total.std()), 1e-6)


def _shading(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth multiplicative light fall-off in [0.3, 1] (one light source off to one side)."""
    x, y = _grid(width, height)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x + np.sin(angle) * y + 1.0) / 2.0
    return (1.0 - rng.uniform(0.0, 0.7) * np.clip(ramp, 0.0, 1.0))[..., None]


def mondrian_scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Land's Mondrian: 20-80 overlapping flat rectangles of random surface colour, smoothly shaded."""
    n = int(rng.integers(20, 81))
    colours = _colours(rng, n + 1)
    image = np.empty((height, width, 3), np.float32)
    image[:] = colours[0]
    for c in colours[1:]:
        h = int(height * rng.uniform(0.05, 0.4)) + 1
        w = int(width * rng.uniform(0.05, 0.4)) + 1
        y0, x0 = int(rng.integers(-h // 2, height)), int(rng.integers(-w // 2, width))
        image[max(y0, 0) : y0 + h, max(x0, 0) : x0 + w] = c
    return image * _shading(rng, width, height)


def texture_scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """3-6 colours blended by smooth fractal-noise fields; sharpness ranges from soft clouds to regions."""
    k = int(rng.integers(3, 7))
    colours = _colours(rng, k)
    fields = np.stack([_fractal_noise(rng, width, height) for _ in range(k)], axis=-1)
    fields *= np.exp(rng.uniform(np.log(0.5), np.log(8.0)))
    fields -= fields.max(axis=-1, keepdims=True)
    weights = np.exp(fields)
    weights /= weights.sum(axis=-1, keepdims=True)
    return (weights @ colours) * _shading(rng, width, height)


def gradient_scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A linear or radial gradient through 2-3 colours with a little brightness texture."""
    x, y = _grid(width, height)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * x + np.sin(angle) * y + 1.0) / 2.0
    else:
        cx, cy = rng.uniform(-0.7, 0.7, size=2)
        t = np.hypot(x - cx, y - cy) / 1.5
    t = np.clip(t, 0.0, 1.0)[..., None]
    colours = _colours(rng, int(rng.integers(2, 4)))
    stops = np.linspace(0.0, 1.0, len(colours))
    image = np.stack([np.interp(t, stops, colours[:, c]) for c in range(3)], axis=-1)[:, :, 0]
    texture = np.exp(0.1 * _fractal_noise(rng, width, height))[..., None]
    return np.clip(image * texture, 0.0, 1.0).astype(np.float32)


def flat_scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A uniform, spectrally flat grey (reflectance constant over wavelength) of random level."""
    return np.full((height, width, 3), rng.uniform(0.2, 0.9), np.float32)


_PROCEDURAL: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "mondrian": mondrian_scene,
    "texture": texture_scene,
    "gradient": gradient_scene,
    "flat": flat_scene,
}
#: Scene kinds: ``"photo"`` (one of :data:`PHOTOS`) and the procedural generators.
SCENE_KINDS: tuple[str, ...] = ("photo", *_PROCEDURAL)


def render_scene(
    rng: np.random.Generator, kind: str, width: int, height: int, source: str | None = None
) -> np.ndarray:
    """Render a scene of ``kind`` (one of :data:`SCENE_KINDS`; ``source`` names the photo).

    Returns:
        ``height x width x 3`` float32 linear sRGB reflectance coefficients in [0, 1].

    Example:
        >>> render_scene(np.random.default_rng(0), "mondrian", 12, 8).shape
        (8, 12, 3)
    """
    if kind == "photo":
        if source not in PHOTOS:
            raise ValueError(f"photo scenes need source= one of {', '.join(PHOTOS)}, got {source!r}")
        return photo_scene(rng, width, height, source)
    return np.clip(_PROCEDURAL[kind](rng, width, height), 0.0, 1.0).astype(np.float32, copy=False)
