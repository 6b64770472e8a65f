"""Colorization as representation learning: classification from colorization encoders (transfer), linear
probes per block, and the semantic interpretability of recolorized photos (Zhang et al. 2016, section 3.2)."""
