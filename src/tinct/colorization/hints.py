"""Colour hints for user-guided colorization (SIGGRAPH17): simulated in training, given by users at run time.

Training (Zhang et al. 2017, section 3.3): a fraction of the crops get a number of hint points drawn from a
geometric distribution; each reveals the mean true ab of a small square patch (side 1 to ``max_patch``) at a
random place. The network then learns both the automatic case (no hints) and the guided one.

At run time (``tinct colorize PHOTOS --hints FILE.json``, :func:`load_hints`) the user's points are read from
a JSON file in one of three forms::

    [{"x": 120, "y": 80, "ab": [20, -35]}, {"x": 10, "y": 5, "hex": "#ff7800", "radius": 2}]
    {"points": [{"x": 120, "y": 80, "rgb": [255, 120, 0]}]}
    {"beach.jpg": [{"x": 120, "y": 80, "ab": [20, -35]}], "holiday/dog": []}

The first two give the points of the one photo being colorized; the third maps photos to their points.
A key matches a photo by its file name (``beach.jpg``), its stem (``beach``), or the last parts of its path
(``holiday/dog``, ``holiday/dog.png``), case-sensitively; a key that matches no input is reported and
ignored, one that matches several inputs is an error, and photos no key matches are colorized without hints.

A point has these keys (no others):

- ``x``, ``y``: the pixel's column and row in the photo as tinct reads it (upright, after its EXIF
  rotation), from the top-left corner: ``0 <= x <= width - 1``, ``0 <= y <= height - 1``; fractions allowed.
- the colour, exactly one of ``ab`` (CIELAB a*, b*, each in [-110, 110], the network's range), ``rgb``
  (8-bit sRGB, each in [0, 255]) or ``hex`` (``"#ff7800"``, ``"ff7800"`` or ``"#f70"``); sRGB colours are
  converted to CIELAB (D65, :func:`tinct.color.lab.rgb_to_lab`) and their a*, b* used: a hint gives only
  chroma, the lightness is always the photo's own.
- ``radius`` (optional, an integer >= 0, default 1): the hint covers a square of ``2 radius + 1`` pixels
  a side of the network's grid (the photo scaled so its short side is the colorizer's ``infer_size``), so
  the default is a 3 x 3 patch. Patches are clipped to the grid; where they overlap, later points win.

Points are counted from 0 in error messages, which name the hint file, the photo key and the point.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tinct.colorization.siggraph import AB_MAX
from tinct.core.exceptions import DataError
from tinct.core.naming import key_matches

__all__ = ["DEFAULT_RADIUS", "HintFile", "Hints", "load_hints", "sample_hints"]

#: Default half-side of a hint patch on the network's grid (1: 3 x 3 pixels).
DEFAULT_RADIUS = 1


def sample_hints(
    ab: Tensor, rate: float, p: float = 0.125, max_patch: int = 9, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Simulated hints for a batch of true ab maps.

    Args:
        ab: (B, 2, H, W) true ab.
        rate: probability that a crop gets any hints.
        p: parameter of the geometric distribution of the number of points (>= 1, mean 1 / p).
        max_patch: largest side of a hint patch (pixels); each patch's side is uniform in 1..max_patch.
        generator: random generator (default: torch's global one, seeded by Lightning).

    Returns:
        ``(hint_ab, mask)``: (B, 2, H, W) the patch means inside patches (0 elsewhere) and (B, 1, H, W) 1
        inside patches.

    Example:
        >>> ab = torch.zeros(3, 2, 16, 16); ab[:, 0] = 20.0
        >>> hint_ab, mask = sample_hints(ab, rate=1.0, generator=torch.Generator().manual_seed(0))
        >>> bool((mask.flatten(1).sum(1) > 0).all()), bool((hint_ab[:, 0][mask[:, 0] > 0] == 20).all())
        (True, True)
        >>> sample_hints(ab, rate=0.0)[1].sum().item()
        0.0
    """
    b, _, h, w = ab.shape
    hint_ab = torch.zeros_like(ab)
    mask = ab.new_zeros(b, 1, h, w)
    device = ab.device
    with_hints = torch.rand(b, generator=generator) < rate
    # Geometric number of points >= 1: floor(log U / log(1 - p)) + 1.
    u = torch.rand(b, generator=generator).clamp_min(1e-12)
    counts = (
        (torch.floor(torch.log(u) / torch.log1p(torch.tensor(-p))) + 1).long()
        if p < 1
        else torch.ones(b).long()
    )
    for i in torch.nonzero(with_hints).flatten().tolist():
        n = int(counts[i])
        sizes = torch.randint(1, min(max_patch, h, w) + 1, (n,), generator=generator).tolist()
        for side in sizes:
            y = int(torch.randint(0, h - side + 1, (), generator=generator))
            x = int(torch.randint(0, w - side + 1, (), generator=generator))
            patch = ab[i, :, y : y + side, x : x + side]
            hint_ab[i, :, y : y + side, x : x + side] = patch.mean(dim=(-2, -1), keepdim=True)
            mask[i, :, y : y + side, x : x + side] = 1.0
    return hint_ab.to(device), mask.to(device)


# -- user hints -----------------------------------------------------------------------------------------

_POINT_KEYS = ("x", "y", "ab", "rgb", "hex", "radius")
_COLOUR_KEYS = ("ab", "rgb", "hex")
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_EXAMPLE = '{"x": 120, "y": 80, "ab": [20, -35]}'


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: Any, n: int) -> list[float] | None:
    """``value`` as ``n`` finite floats, or None when it is not a list of ``n`` finite numbers."""
    if not isinstance(value, list) or len(value) != n or not all(_is_number(v) for v in value):
        return None
    out = [float(v) for v in value]
    return out if all(math.isfinite(v) for v in out) else None


@dataclass(frozen=True, eq=False)
class Hints:
    """The colour hints of one photo: points in the photo's pixels, their ab, and their patch radii.

    Made by :func:`load_hints` (or :meth:`from_points`); :meth:`rasterize` turns them into the hint maps
    :meth:`~tinct.colorization.networks.Colorizer.predict_ab_lowres` takes.

    Attributes:
        points: :math:`(N, 2)` float64, ``x`` (column) and ``y`` (row) in the photo's pixels from the top-left.
        ab: :math:`(N, 2)` float64 CIELAB a*, b*, each in [-110, 110].
        radius: :math:`(N,)` int64 >= 0, half-side of each point's patch on the network's grid.
        source: the hint file (named in error messages; ``""``: none).
        key: the photo's key in the file (None: the file's only list of points).

    Example:
        >>> hints = Hints.from_points([{"x": 0, "y": 0, "ab": [20, -35]}, {"x": 99, "y": 49, "hex": "#ff7800"}])
        >>> len(hints), hints.radius.tolist()
        (2, [1, 1])
        >>> ab, mask = hints.rasterize((50, 100), (16, 32))
        >>> ab.shape, mask.shape, int(mask.sum()), ab[0, :, 0, 0].tolist()
        (torch.Size([1, 2, 16, 32]), torch.Size([1, 1, 16, 32]), 8, [20.0, -35.0])
    """

    points: Tensor
    ab: Tensor
    radius: Tensor
    source: str = ""
    key: str | None = field(default=None)

    def __post_init__(self) -> None:
        from tinct.core.checks import check_shape

        check_shape(self.points, ["N", "2"], "points")
        check_shape(self.ab, ["N", "2"], "ab")
        check_shape(self.radius, ["N"], "radius")
        if not len(self.points) == len(self.ab) == len(self.radius):
            raise DataError(
                f"{self._prefix()}points, ab and radius must have one row per point, got "
                f"{len(self.points)}, {len(self.ab)} and {len(self.radius)}"
            )

    def __len__(self) -> int:
        return len(self.points)

    def _prefix(self) -> str:
        return f"{self.source}: " if self.source else ""

    def _where(self, i: int) -> str:
        return f"point {i}" + (f" of {self.key!r}" if self.key is not None else "")

    @classmethod
    def from_points(
        cls, points: Sequence[Mapping[str, Any]], source: str = "", key: str | None = None
    ) -> Hints:
        """Hints from a list of points as in a hint file (see the module's description).

        Raises:
            DataError: a point is not an object, has an unknown key, misses ``x`` or ``y``, has none or
                several of ``ab`` / ``rgb`` / ``hex``, a value that is not a finite number or is out of
                range (ab in [-110, 110], rgb in [0, 255], x and y >= 0), a bad hex colour or radius. The
                message names ``source``, ``key`` and the point (counted from 0).

        Example:
            >>> grey = Hints.from_points([{"x": 3, "y": 4.5, "rgb": [128, 128, 128], "radius": 0}])
            >>> bool(grey.ab.abs().max() < 0.01), grey.radius.tolist()
            (True, [0])
        """
        from tinct.color.lab import rgb_to_lab

        prefix = f"{source}: " if source else ""
        xy: list[list[float]] = []
        colours: list[tuple[str, list[float]]] = []
        radii: list[int] = []
        for i, item in enumerate(points):
            where = prefix + f"point {i}" + (f" of {key!r}" if key is not None else "")
            if not isinstance(item, Mapping):
                raise DataError(f"{where}: expected an object like {_EXAMPLE}, got {json.dumps(item)}")
            unknown = [k for k in item if k not in _POINT_KEYS]
            if unknown:
                raise DataError(
                    f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(_POINT_KEYS)}"
                )
            for name in ("x", "y"):
                if name not in item:
                    raise DataError(f"{where}: missing {name!r} (pixel {'column' if name == 'x' else 'row'})")
                value = item[name]
                if not _is_number(value) or not math.isfinite(value):
                    raise DataError(f"{where}: {name} must be a finite number, got {json.dumps(value)}")
                if value < 0:
                    raise DataError(f"{where}: {name} = {value} is outside the photo (pixels count from 0)")
            xy.append([float(item["x"]), float(item["y"])])
            given = [k for k in _COLOUR_KEYS if k in item]
            if len(given) != 1:
                got = "none" if not given else " and ".join(map(repr, given))
                raise DataError(f"{where}: give exactly one colour, 'ab', 'rgb' or 'hex' (got {got})")
            kind = given[0]
            value = item[kind]
            if kind == "ab":
                ab = _numbers(value, 2)
                if ab is None or not all(-AB_MAX <= v <= AB_MAX for v in ab):
                    raise DataError(
                        f"{where}: ab must be two finite numbers in [-{AB_MAX:g}, {AB_MAX:g}] "
                        f"(CIELAB a*, b*), got {json.dumps(value)}"
                    )
                colours.append(("ab", ab))
            elif kind == "rgb":
                rgb = _numbers(value, 3)
                if rgb is None or not all(0.0 <= v <= 255.0 for v in rgb):
                    raise DataError(
                        f"{where}: rgb must be three numbers in [0, 255] (8-bit sRGB), got {json.dumps(value)}"
                    )
                colours.append(("rgb", rgb))
            else:
                match = _HEX.fullmatch(value) if isinstance(value, str) else None
                if match is None:
                    raise DataError(
                        f'{where}: hex must be a colour like "#ff7800" or "#f70", got {json.dumps(value)}'
                    )
                digits = match.group(1)
                if len(digits) == 3:
                    digits = "".join(d * 2 for d in digits)
                colours.append(("rgb", [float(int(digits[j : j + 2], 16)) for j in (0, 2, 4)]))
            radius = item.get("radius", DEFAULT_RADIUS)
            if not _is_number(radius) or not math.isfinite(radius) or radius < 0 or radius != int(radius):
                raise DataError(
                    f"{where}: radius must be a whole number >= 0 (pixels of the network's grid), "
                    f"got {json.dumps(radius)}"
                )
            radii.append(int(radius))
        ab = torch.zeros(len(colours), 2, dtype=torch.float64)
        rgb_rows = [i for i, (kind, _) in enumerate(colours) if kind == "rgb"]
        for i, (kind, values) in enumerate(colours):
            if kind == "ab":
                ab[i] = torch.tensor(values, dtype=torch.float64)
        if rgb_rows:
            rgb = torch.tensor([colours[i][1] for i in rgb_rows], dtype=torch.float64) / 255.0
            ab[rgb_rows] = rgb_to_lab(rgb, dim=-1)[:, 1:]
        return cls(
            torch.tensor(xy, dtype=torch.float64).reshape(-1, 2),
            ab,
            torch.tensor(radii, dtype=torch.int64),
            source,
            key,
        )

    def check_inside(self, photo_size: tuple[int, int], photo: str | os.PathLike[str] | None = None) -> None:
        """Raise :class:`DataError` (naming the hint file, the point and ``photo``) unless every point lies
        in an ``H x W`` photo: ``0 <= x <= W - 1``, ``0 <= y <= H - 1``."""
        h, w = photo_size
        for i, (x, y) in enumerate(self.points.tolist()):
            if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
                name = f"{photo} " if photo is not None else "the photo "
                raise DataError(
                    f"{self._prefix()}{self._where(i)} at x = {x:g}, y = {y:g} is outside {name}({w} x {h} "
                    f"pixels: x in [0, {w - 1}], y in [0, {h - 1}])"
                )

    def rasterize(
        self,
        photo_size: tuple[int, int],
        network_size: tuple[int, int],
        photo: str | os.PathLike[str] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The hint maps at the network's resolution for an ``H x W`` photo seen at ``h x w``.

        Photo pixel ``(x, y)`` goes to network pixel ``(round((x + 0.5) w / W - 0.5), round((y + 0.5) h / H
        - 0.5))`` (halves rounded up), the grid pixel whose area holds the photo pixel's centre, as the
        colorizer's resize sees it (``F.interpolate``, ``align_corners=False``). Each point sets a square of
        ``2 radius + 1`` pixels a side around it, clipped to the grid; later points overwrite earlier ones.

        Args:
            photo_size: ``(H, W)`` of the photo (upright, as tinct reads it).
            network_size: ``(h, w)`` at which the network sees it
                (:meth:`~tinct.colorization.networks.Colorizer.network_size`).
            photo: the photo's name for error messages.

        Returns:
            ``(ab, mask)``: :math:`(1, 2, h, w)` float32 a*, b* (0 outside hints) and :math:`(1, 1, h, w)`
            float32, 1 inside hints.

        Raises:
            DataError: a point lies outside the photo (:meth:`check_inside`).
        """
        self.check_inside(photo_size, photo)
        big_h, big_w = photo_size
        h, w = network_size
        ab = torch.zeros(1, 2, h, w)
        mask = torch.zeros(1, 1, h, w)
        cols = torch.floor((self.points[:, 0] + 0.5) * (w / big_w)).long().clamp(0, w - 1).tolist()
        rows = torch.floor((self.points[:, 1] + 0.5) * (h / big_h)).long().clamp(0, h - 1).tolist()
        for col, row, r, colour in zip(cols, rows, self.radius.tolist(), self.ab.tolist(), strict=True):
            y0, y1, x0, x1 = max(row - r, 0), min(row + r + 1, h), max(col - r, 0), min(col + r + 1, w)
            ab[0, 0, y0:y1, x0:x1] = colour[0]
            ab[0, 1, y0:y1, x0:x1] = colour[1]
            mask[0, 0, y0:y1, x0:x1] = 1.0
        return ab, mask


@dataclass(frozen=True)
class HintFile:
    """A parsed hint file (:func:`load_hints`): one list of points, or photo keys mapped to their points.

    Attributes:
        source: the file.
        points: the points of the only photo (the list and ``{"points": [...]}`` forms), else None.
        photos: photo key -> its points (the mapping form), else empty.

    Example:
        >>> f = HintFile.from_json({"a.jpg": [{"x": 1, "y": 2, "ab": [5, 5]}], "b": []}, "hints.json")
        >>> [len(f.for_photo(p)) for p in (Path("in/a.jpg"), Path("b.png"))], f.for_photo(Path("c.jpg"))
        ([1, 0], None)
    """

    source: str
    points: Hints | None = None
    photos: dict[str, Hints] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, source: str = "") -> HintFile:
        """Parse a hint file's JSON value (see the module's description).

        Raises:
            DataError: the value has none of the three forms, holds no point list, or a point is invalid
                (:meth:`Hints.from_points`); the message names ``source``.
        """
        prefix = f"{source}: " if source else ""
        if isinstance(data, dict) and len(data) == 1 and isinstance(data.get("points"), list):
            data = data["points"]
        if isinstance(data, list):
            if not data:
                raise DataError(f"{prefix}no hints (an empty list); expected points like [{_EXAMPLE}]")
            return cls(source, points=Hints.from_points(data, source))
        if isinstance(data, dict):
            if not data:
                raise DataError(f'{prefix}no hints (an empty object); expected {{"photo.jpg": [{_EXAMPLE}]}}')
            photos = {}
            for key, value in data.items():
                if not isinstance(value, list):
                    raise DataError(
                        f"{prefix}the hints of {key!r} must be a list of points like [{_EXAMPLE}], "
                        f"got {json.dumps(value)}"
                    )
                photos[key] = Hints.from_points(value, source, key)
            return cls(source, photos=photos)
        raise DataError(
            f"{prefix}expected a list of points like [{_EXAMPLE}] or an object mapping photo names to such "
            f"lists, got {json.dumps(data)}"
        )

    def _keys_for(self, photo: Path) -> list[str]:
        return [k for k in self.photos if key_matches(k, photo)]

    def for_photo(self, photo: str | os.PathLike[str]) -> Hints | None:
        """The hints of ``photo`` (matched by name, stem or trailing path parts), or None when it has none.

        Raises:
            DataError: several keys match the photo.
        """
        if self.points is not None:
            return self.points
        p = Path(photo)
        keys = self._keys_for(p)
        if len(keys) > 1:
            raise DataError(
                f"{self.source}: keys {', '.join(map(repr, keys))} all name {p}; give each photo's points once"
            )
        return self.photos[keys[0]] if keys else None

    def assign(self, photos: Sequence[Path]) -> tuple[list[Hints | None], list[str]]:
        """The hints of each of ``photos`` (None: none), and the keys that name none of them.

        Raises:
            DataError: the file is a single list of points but ``photos`` are several; a key names several
                photos; several keys name one photo.
        """
        if self.points is not None:
            if len(photos) > 1:
                raise DataError(
                    f"{self.source}: one list of points, for one photo, but {len(photos)} photos were given; "
                    f'map each photo\'s name to its points instead ({{"photo.jpg": [{_EXAMPLE}]}})'
                )
            return [self.points] * len(photos), []
        used: set[str] = set()
        for key in self.photos:
            named = [p for p in photos if key_matches(key, p)]
            if len(named) > 1:
                from tinct.core.exceptions import some_of

                raise DataError(
                    f"{self.source}: key {key!r} names {len(named)} photos ({some_of(named, 3)}); "
                    "name each by more of its path (folder/name)"
                )
            if named:
                used.add(key)
        assigned = [self.for_photo(p) for p in photos]
        return assigned, [k for k in self.photos if k not in used]


def load_hints(path: str | os.PathLike[str]) -> HintFile:
    """Read a hint file (JSON; see the module's description for its forms).

    Raises:
        DataError: the file is missing, unreadable, empty, not JSON, repeats a key in an object, or holds
            no valid hints; the message names the file (and the photo key and point).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = Path(d) / "hints.json"
        ...     _ = p.write_text('[{"x": 10, "y": 20, "rgb": [255, 120, 0], "radius": 2}]')
        ...     hints = load_hints(p).for_photo("any.jpg")
        >>> hints.points.tolist(), [round(v, 2) for v in hints.ab[0].tolist()], hints.radius.tolist()
        ([[10.0, 20.0]], [46.72, 73.13], [2])
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: hint file not found")
    if not p.is_file():
        raise DataError(f"{p}: not a file (expected a JSON hint file)")
    from tinct.core.jsonfile import read_json

    data = read_json(p, "hint file", f"expected JSON such as [{_EXAMPLE}]")
    return HintFile.from_json(data, str(p))
