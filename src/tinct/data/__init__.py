"""Data: image I/O without bit loss, dataset formats, synthetic scene generators, illuminant sampling."""

from tinct.data.illuminants import daylight_xy, planckian_xy, sample_illuminants
from tinct.data.io import RawImage, read_image, write_image
from tinct.data.synthetic import MondrianDataset

__all__ = ["RawImage", "read_image", "write_image", "MondrianDataset", "planckian_xy", "daylight_xy", "sample_illuminants"]
