"""Finding a uniform colour target (a skin-coloured patch on a card) in a photo, cropping it, batches."""

from tinct.patch.crop.folder import CROP_SUFFIXES, crop_folder
from tinct.patch.crop.locate import Box, crop_with_context, locate_patch, locate_patches
from tinct.patch.crop.sheet import contact_sheet

__all__ = [
    "CROP_SUFFIXES",
    "Box",
    "contact_sheet",
    "crop_folder",
    "crop_with_context",
    "locate_patch",
    "locate_patches",
]
