"""Weights from a local file the user names, never a download: any common state-dict layout is understood.

A load is exact unless the caller says otherwise: every tensor of the model must come from the file and
every tensor of the file must land in the model. Two ways to relax that, both visible:

- ``head``: key prefixes of a classifier head that the file has and the model was built without (an
  ImageNet checkpoint loaded into a backbone). Those tensors are dropped and named in a log message.
- ``partial=True``: any mismatch is accepted (the user asked for it); missing and unexpected tensors are
  reported in a :class:`PartialLoadWarning`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinct.core.exceptions import DataError, some_of

__all__ = ["LoadedWeights", "PartialLoadWarning", "load_weights", "read_state_dict"]

_log = logging.getLogger(__name__)
_EXAMPLES = 3


class PartialLoadWarning(UserWarning):
    """A partial weights load (``partial=True``) left model tensors at their initialisation or ignored
    tensors of the file."""


@dataclass(frozen=True)
class LoadedWeights:
    """What :func:`load_weights` did.

    Attributes:
        loaded: model keys set from the file.
        missing: model keys the file did not provide (left at their initialisation).
        unexpected: file keys that went nowhere (no such model key, or a different shape).
        head: file keys dropped as the classifier head the caller named (``head=``).
    """

    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    head: tuple[str, ...]


def read_state_dict(path: str | os.PathLike[str], what: str = "weights") -> dict[str, Tensor]:
    """The state dict in a local weights file: bare, or under a ``"state_dict"`` or ``"model"`` key (as
    training scripts save it), read with ``torch.load(weights_only=True)`` (no pickled code runs).

    Args:
        path: the file (never downloaded).
        what: what the file holds, for messages ("detector weights", "LPIPS backbone weights").

    Raises:
        DataError: the file is missing, cannot be loaded safely or holds no dict of tensors (one line naming
            the file).
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: {what} file not found (tinct never downloads weights; name a local file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for foreign or corrupt files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"{path}: cannot load {what} safely with torch.load(weights_only=True): {first}"
        ) from err
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise DataError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def load_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    partial: bool = False,
    head: Sequence[str] = (),
) -> LoadedWeights:
    """Load a state dict from a local file into ``model`` (``torch.load(weights_only=True)``).

    Accepts a plain state dict, a dict holding one under ``"state_dict"`` or ``"model"`` (Lightning and
    common training scripts), and keys prefixed ``module.``, ``model.`` or ``backbone.``.

    Args:
        model: the module to load into.
        path: a local file.
        partial: accept a file that does not match the model exactly: the matching tensors are loaded, and
            the missing and unexpected ones are reported in a :class:`PartialLoadWarning`.
        head: key prefixes (e.g. ``("classifier.",)``) of the file's tensors that belong to a head the
            model was built without; they are dropped and logged (a WARNING record), not an error. Keys that match a
            model tensor are never dropped.

    Returns:
        A :class:`LoadedWeights` naming the loaded, missing, unexpected and dropped-head keys.

    Raises:
        DataError: the file is missing or cannot be loaded safely; no tensor in it matches the model; or,
            without ``partial``, a model tensor is missing from it or one of its tensors (outside ``head``)
            has no place in the model. The message names the file, the counts and a few keys of each.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    matched: dict[str, Tensor] = {}
    unexpected: list[str] = []
    dropped: list[str] = []
    for key, value in state.items():
        for candidate in (
            key,
            key.removeprefix("module."),
            key.removeprefix("model."),
            key.removeprefix("backbone."),
        ):
            if candidate in own and isinstance(value, Tensor) and own[candidate].shape == value.shape:
                matched[candidate] = value
                break
        else:
            (dropped if head and key.startswith(tuple(head)) else unexpected).append(key)
    if not matched:
        raise DataError(
            f"{path}: none of its {len(state)} tensors matches the model's parameters (wrong architecture?)"
        )
    missing = sorted(set(own) - set(matched))
    unexpected.sort()
    dropped.sort()
    if missing or unexpected:
        report = (
            f"{path}: {len(matched)} of the model's {len(own)} tensors loaded; "
            f"{len(missing)} missing from the file" + (f" (e.g. {some_of(missing, _EXAMPLES)})" if missing else "")
            + f"; {len(unexpected)} of the file's tensors unexpected (no such key or another shape)"
            + (f" (e.g. {some_of(unexpected, _EXAMPLES)})" if unexpected else "")
        )  # fmt: skip
        if not partial:
            raise DataError(f"{report}; to accept a partial load, ask for it (partial=True)")
        warnings.warn(f"partial weights load: {report}", PartialLoadWarning, stacklevel=2)
    if dropped:
        _log.warning("%s: ignored the %d tensors of the head the model was built without (%s)", path,
                     len(dropped), some_of(dropped, _EXAMPLES))  # fmt: skip
    model.load_state_dict(matched, strict=False)
    return LoadedWeights(tuple(sorted(matched)), tuple(missing), tuple(unexpected), tuple(dropped))
