"""Automatic colorization (Zhang et al. 2016): photo folders, networks, the task, the full-resolution
colorizer, its metrics, the study and the shipped weights."""
