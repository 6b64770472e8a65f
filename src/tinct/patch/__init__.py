"""Perceptual patch colour: synthetic photos, the adaptive crop, labels and metadata, networks and fusions,
the task, its metrics and the study."""
