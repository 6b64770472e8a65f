"""Colour constancy: dataset layouts, Mondrians and spectral scenes, classical estimators, the CNN and
contrastive tasks, baselines, cross-validation, the study and its plots."""
