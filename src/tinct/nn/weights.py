"""Weights from a local file the user names, never a download: any common state-dict layout is understood."""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from tinct.core.exceptions import DataError

__all__ = ["load_weights"]


def load_weights(model: nn.Module, path: str | os.PathLike[str], strict: bool = False) -> list[str]:
    """Load a state dict from a local file into ``model`` (``torch.load(weights_only=True)``).

    Accepts a plain state dict, a dict holding one under ``"state_dict"`` or ``"model"`` (Lightning and
    common training scripts), and torchvision's original key names (``features.*``). Keys of the file that
    the model lacks (e.g. an ImageNet classifier) are ignored and returned.

    Raises:
        DataError: the file is missing, cannot be loaded safely, or no tensor in it matches the model.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: weights file not found (tinct never downloads weights; name a local file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(
            f"{path}: cannot load weights safely with torch.load(weights_only=True): {err}"
        ) from err
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise DataError(f"{path}: expected a state dict, got {type(state).__name__}")
    own = model.state_dict()
    matched: dict[str, Tensor] = {}
    used: set[str] = set()
    for key, value in state.items():
        for candidate in (
            key,
            key.removeprefix("module."),
            key.removeprefix("model."),
            key.removeprefix("backbone."),
        ):
            if candidate in own and isinstance(value, Tensor) and own[candidate].shape == value.shape:
                matched[candidate] = value
                used.add(key)
                break
    if not matched:
        raise DataError(
            f"{path}: none of its {len(state)} tensors matches the model's parameters (wrong architecture?)"
        )
    missing = sorted(set(own) - set(matched))
    if strict and missing:
        raise DataError(f"{path}: missing {len(missing)} tensors, e.g. {missing[:3]}")
    model.load_state_dict(matched, strict=False)
    return sorted(set(state) - used)
