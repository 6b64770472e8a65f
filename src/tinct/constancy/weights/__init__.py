"""Illuminant estimators shipped with tinct (files beside this module, each with a model card)."""

from tinct.engine.modelfile import ShippedModel

__all__ = ["ILLUMINANT_MODEL"]

#: What :func:`tinct.api.estimate_illuminant` and the demo use without ``model=``.
ILLUMINANT_MODEL = ShippedModel(
    name="ffcc_cube_plus",
    file="illuminant_ffcc_cube_plus.pt",
    description="FFCC (3 log-chroma histogram channels, 2 x 2 shifted grids) trained on the Cube+ thumbnails "
    "(Canon 550D) by "
    "configs/constancy/thumbnails.yaml; other cameras' sensors differ, so expect larger errors on them",
    package="tinct.constancy",
)
