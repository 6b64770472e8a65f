"""Data: image I/O without bit loss, dataset formats, synthetic scene generators, illuminant sampling."""

from tinct.data.illuminants import daylight_xy, planckian_xy, sample_illuminants
from tinct.data.io import RawImage, read_image, write_image
from tinct.data.synthetic import MondrianDataset

__all__ = [
    "MondrianDataset",
    "RawImage",
    "daylight_xy",
    "planckian_xy",
    "read_image",
    "sample_illuminants",
    "write_image",
]
