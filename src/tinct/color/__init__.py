"""Pure, differentiable colour science on tensors.

Images are ``(*, 3, H, W)`` with the channel axis ``dim=-3`` (the default of every op); colour lists
``(*, 3)`` are passed with ``dim=-1``. Every op has an ``nn.Module`` twin where that is useful as a layer
or a loss. CIE quantities keep their reference scale (RGB in [0, 1], XYZ with Y in [0, 1], L* in [0, 100]).

Submodules: :mod:`~tinct.color.rgb` (sRGB transfer curve, linear RGB <-> XYZ), :mod:`~tinct.color.lab`
(CIELAB, LCh, white points), :mod:`~tinct.color.log` (log RGB, log-chroma), :mod:`~tinct.color.raw`
(black level / saturation), :mod:`~tinct.color.illuminant` (von Kries, angular errors),
:mod:`~tinct.color.difference` (delta E 76 / 94 / 2000), :mod:`~tinct.color.quantize` (313 ab bins,
soft encoding, rebalancing, annealed mean).
"""

from tinct.color import quantize
from tinct.color.difference import (
    CIE94_APPLICATIONS,
    DELTA_E_METHODS,
    DeltaE,
    DeltaELoss,
    delta_e,
    delta_e_cie76,
    delta_e_cie94,
    delta_e_ciede2000,
)
from tinct.color.illuminant import (
    ILLUMINANT_NORMS,
    AngularError,
    ApplyIlluminant,
    CorrectIlluminant,
    ReproductionError,
    angular_error,
    apply_illuminant,
    correct_illuminant,
    normalize_illuminant,
    reproduction_error,
)
from tinct.color.lab import (
    CIE_EPSILON,
    CIE_KAPPA,
    WHITEPOINTS,
    LabToLch,
    LabToRgb,
    LabToXyz,
    LchToLab,
    RgbToLab,
    XyzToLab,
    lab_to_lch,
    lab_to_rgb,
    lab_to_xyz,
    lch_to_lab,
    rgb_to_lab,
    whitepoint_xyz,
    xyz_to_lab,
)
from tinct.color.log import (
    LOG_EPS,
    LinearToLog,
    LogChromaToRgb,
    LogToLinear,
    RgbToLogChroma,
    linear_to_log,
    log_chroma_to_rgb,
    log_to_linear,
    rgb_to_log_chroma,
)
from tinct.color.quantize import (
    GRID_SIZE,
    NUM_BINS,
    ABQuantizer,
    AnnealedMean,
    PriorAccumulator,
    ab_bins,
    annealed_mean,
    bin_counts,
    decode_mean,
    decode_mode,
    empirical_prior,
    nearest_bin,
    rebalancing_weights,
    reference_prior,
    smooth_prior,
    soft_encode,
    soft_encode_dense,
)
from tinct.color.raw import normalize_raw
from tinct.color.rgb import (
    SRGB_TO_XYZ_MATRIX,
    XYZ_TO_SRGB_MATRIX,
    LinearRgbToXyz,
    LinearToSrgb,
    SrgbToLinear,
    XyzToLinearRgb,
    linear_rgb_to_xyz,
    linear_to_srgb,
    srgb_to_linear,
    xyz_to_linear_rgb,
)

__all__ = [
    # rgb
    "SRGB_TO_XYZ_MATRIX",
    "XYZ_TO_SRGB_MATRIX",
    "srgb_to_linear",
    "linear_to_srgb",
    "linear_rgb_to_xyz",
    "xyz_to_linear_rgb",
    "SrgbToLinear",
    "LinearToSrgb",
    "LinearRgbToXyz",
    "XyzToLinearRgb",
    # lab
    "CIE_EPSILON",
    "CIE_KAPPA",
    "WHITEPOINTS",
    "whitepoint_xyz",
    "xyz_to_lab",
    "lab_to_xyz",
    "lab_to_lch",
    "lch_to_lab",
    "rgb_to_lab",
    "lab_to_rgb",
    "XyzToLab",
    "LabToXyz",
    "LabToLch",
    "LchToLab",
    "RgbToLab",
    "LabToRgb",
    # log
    "LOG_EPS",
    "linear_to_log",
    "log_to_linear",
    "rgb_to_log_chroma",
    "log_chroma_to_rgb",
    "LinearToLog",
    "LogToLinear",
    "RgbToLogChroma",
    "LogChromaToRgb",
    # raw
    "normalize_raw",
    # illuminant
    "ILLUMINANT_NORMS",
    "normalize_illuminant",
    "apply_illuminant",
    "correct_illuminant",
    "angular_error",
    "reproduction_error",
    "ApplyIlluminant",
    "CorrectIlluminant",
    "AngularError",
    "ReproductionError",
    # difference
    "DELTA_E_METHODS",
    "CIE94_APPLICATIONS",
    "delta_e",
    "delta_e_cie76",
    "delta_e_cie94",
    "delta_e_ciede2000",
    "DeltaE",
    "DeltaELoss",
    # quantize
    "quantize",
    "NUM_BINS",
    "GRID_SIZE",
    "ab_bins",
    "reference_prior",
    "nearest_bin",
    "soft_encode",
    "soft_encode_dense",
    "bin_counts",
    "smooth_prior",
    "empirical_prior",
    "PriorAccumulator",
    "rebalancing_weights",
    "annealed_mean",
    "decode_mode",
    "decode_mean",
    "ABQuantizer",
    "AnnealedMean",
]
