"""Colour differences in CIELAB, usable as losses: CIE 1976, CIE 1994, CIEDE2000 and a dispatcher."""

from tinct.color.difference.cie76 import delta_e_cie76
from tinct.color.difference.cie94 import CIE94_APPLICATIONS, delta_e_cie94
from tinct.color.difference.ciede2000 import delta_e_ciede2000
from tinct.color.difference.dispatch import DELTA_E_METHODS, DeltaE, DeltaELoss, delta_e

__all__ = [
    "CIE94_APPLICATIONS",
    "DELTA_E_METHODS",
    "DeltaE",
    "DeltaELoss",
    "delta_e",
    "delta_e_cie76",
    "delta_e_cie94",
    "delta_e_ciede2000",
]
