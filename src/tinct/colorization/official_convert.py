"""Reading the released weights of the original colorization papers and mapping them onto tinct's networks.

The conversion behind :func:`tinct.colorization.official.import_weights`: a ``torch.save`` file of a release
(read with ``weights_only``) gives a state dict in the original code's names, which is mapped onto the state
dict of tinct's network of width 1.0 (names, shapes and dtypes checked, float32):

- ``eccv16`` (richzhang/colorization ``ECCVGenerator``: ``model1`` ... ``model8``, ``model_out``) onto
  :class:`~tinct.colorization.networks.ColorizationNet` (``encoder.{b}`` <- ``model{b+1}``, ``decoder`` /
  ``classifier`` <- ``model8``), its 313 logits re-ordered into tinct's bins by the bin centres that
  ``model_out`` holds (:func:`tinct.color.quantize.ab_bins`);
- ``siggraph17`` (``SIGGRAPHGenerator``: ``model1`` ... ``model10``, ``model8up`` ..., ``model_out``,
  ``model_class``) onto :class:`~tinct.colorization.siggraph.SIGGRAPHNet` (``conv{k}`` <- ``model{k}``);
- ``instcolorization`` (ericsujw/InstColorization: two ``SIGGRAPHGenerator`` and a ``FusionGenerator``
  with its ``weight_layer*`` generators) onto :class:`~tinct.colorization.instance.InstanceFusionNet`
  (``instance.*``, ``plain.*``, ``full.*`` and ``fusion.{i}.*``).

A file of another architecture is refused with the keys that differ (and a guess of what it is), one of
another width with the shapes that differ.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from tinct.core.exceptions import DataError, some_of

# The buffers of tinct's networks, left out of the parameter count.
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


# -- reading ----------------------------------------------------------------------------------------------


def _check_file(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    return path


def _first_line(err: BaseException, most: int = 160) -> str:
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return text if len(text) <= most else text[: most - 3] + "..."


def _read_state(path: Path) -> dict[str, Tensor]:
    """A state dict from a ``torch.save`` file (``weights_only``), a leading ``module.`` of every key (saved
    from ``DataParallel``, as InstColorization's fusion network) removed."""
    _check_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:  # a pickle of other Python objects, which weights_only refuses to build
            raise DataError(
                f"{path}: holds Python objects besides tensors ({found.group(1)}), not a plain state dict "
                "(tinct loads weights with torch.load(weights_only=True) only)"
            ) from err
        raise DataError(
            f"{path}: not readable as PyTorch weights: truncated, corrupt or not a torch.save file"
        ) from err
    except Exception as err:  # zip or pickle errors of a truncated, corrupt or foreign file
        raise DataError(
            f"{path}: not readable as PyTorch weights: truncated, corrupt or not a torch.save file "
            f"({_first_line(err)})"
        ) from err
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    ):
        got = type(obj).__name__ if not isinstance(obj, Mapping) else "a mapping of other things"
        raise DataError(f"{path}: not a state dict (parameter names -> tensors), got {got}")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


# -- key maps: tinct's name -> the release's --------------------------------------------------------------

_SIGGRAPH_MODULES = {
    "up8": "model8up",
    "up9": "model9up",
    "up10": "model10up",
    "short3_8": "model3short8",
    "short2_9": "model2short9",
    "short1_10": "model1short10",
    "regressor": "model_out",
}
# The release's weight generators of the 13 fusion stages (tinct.colorization.siggraph.STAGES).
_WEIGHT_LAYERS = (
    "weight_layer", "weight_layer2", "weight_layer3", "weight_layer4", "weight_layer5", "weight_layer6",
    "weight_layer7", "weight_layer8_1", "weight_layer8_2", "weight_layer9_1", "weight_layer9_2",
    "weight_layer10_1", "weight_layer10_2",
)  # fmt: skip


def _eccv16_key(key: str) -> str:
    # encoder.{b}.{layer} -> model{b+1}.{layer}; decoder.{layer} -> model8.{layer}; classifier -> model8.6
    head, _, rest = key.partition(".")
    if head == "encoder":
        block, _, rest = rest.partition(".")
        return f"model{int(block) + 1}.{rest}"
    return f"model8.{rest}" if head == "decoder" else f"model8.6.{rest}"


def _siggraph_key(key: str) -> str:
    # conv{k} -> model{k} (same layer indices), up8 -> model8up ..., classifier -> model_class.0
    head, _, rest = key.partition(".")
    if head == "classifier":
        return f"model_class.0.{rest}"
    if head in _SIGGRAPH_MODULES:
        return f"{_SIGGRAPH_MODULES[head]}.{rest}"
    return f"model{head.removeprefix('conv')}.{rest}"


def _fusion_key(key: str) -> str:
    # full.* -> the SIGGRAPH17 names; fusion.{i}.full_weight / instance_weight -> weight_layer*.simple_bg_conv
    # / simple_instance_conv (same layer indices)
    head, _, rest = key.partition(".")
    if head == "full":
        return _siggraph_key(rest)
    stage, net, rest = rest.split(".", 2)
    conv = "simple_bg_conv" if net == "full_weight" else "simple_instance_conv"
    return f"{_WEIGHT_LAYERS[int(stage)]}.{conv}.{rest}"


def _guess(state: Mapping[str, Tensor]) -> str:
    if any(k.startswith("weight_layer") for k in state):
        return "; it looks like InstColorization's fusion network (latest_net_GF.pth)"
    if "model_out.weight" in state and "model8.6.weight" in state:
        return "; it looks like the eccv16 release"
    if "model8up.0.weight" in state:
        return "; it looks like a SIGGRAPH17 network (siggraph17, or InstColorization's G / GComp)"
    return ""


def _take(
    path: Path,
    state: Mapping[str, Tensor],
    target: Mapping[str, Tensor],
    key_of: Callable[[str], str],
    what: str,
    *,
    extra: Sequence[str] = (),
    strict: bool = True,
) -> tuple[dict[str, Tensor], list[str]]:
    """The tensors of ``target``'s keys (tinct's names) from ``state`` (the release's names), float32.

    ``extra``: keys of the release needed beside (read by the caller). With ``strict`` a key of ``state``
    that the network lacks is an error, else it is returned among the ignored keys. A missing
    ``num_batches_tracked`` (files saved by PyTorch < 0.4.1) is taken as 0.
    """
    names = {t: key_of(t) for t in target}
    wanted = set(names.values()) | set(extra)
    missing = [
        o for o in [*names.values(), *extra] if o not in state and not o.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in state if k not in wanted]
    if missing or (strict and unexpected):
        raise DataError(
            f"{path}: not {what}: {len(missing)} of its keys missing ({some_of(missing, 3) or 'none'}), "
            f"{len(unexpected)} unexpected ({some_of(unexpected, 3) or 'none'}){_guess(state)}"
        )
    wrong = [
        (o, tuple(state[o].shape), tuple(target[t].shape))
        for t, o in names.items()
        if o in state and state[o].shape != target[t].shape
    ]
    if wrong:
        o, got, want = wrong[0]
        hint = ""
        if len(got) == len(want) and got and want[0] and got[0] != want[0]:
            hint = f"; about width {got[0] / want[0]:g}, and only the released width 1.0 converts"
        raise DataError(
            f"{path}: {len(wrong)} tensor(s) of other shapes than {what} (width 1.0): {o} is {got}, "
            f"expected {want}{hint}"
        )
    out: dict[str, Tensor] = {}
    for t, o in names.items():
        if o not in state:  # num_batches_tracked only
            out[t] = torch.zeros((), dtype=torch.long)
            continue
        value = state[o]
        if value.is_floating_point():
            if not torch.isfinite(value).all():
                raise DataError(f"{path}: {o} holds NaN or infinite values")
            value = value.float()
        out[t] = value.clone() if value.dtype == target[t].dtype else value.to(target[t].dtype)
    return out, unexpected


def _bin_order(path: Path, weight: Tensor) -> Tensor:
    """For each of tinct's 313 bins, the index of the same bin in the release's order, read from the
    release's ``model_out.weight`` (2 x 313 x 1 x 1: the bin centres / 110)."""
    from tinct.color.quantize import NUM_BINS, ab_bins

    if tuple(weight.shape) not in ((2, NUM_BINS, 1, 1), (2, NUM_BINS)):
        raise DataError(
            f"{path}: model_out.weight is {tuple(weight.shape)}, expected (2, {NUM_BINS}, 1, 1) (the ab bins)"
        )
    centres = weight.reshape(2, NUM_BINS).t().double() * 110.0
    distance, nearest = torch.cdist(centres, ab_bins(dtype=torch.float64)).min(dim=1)
    if not torch.isfinite(distance).all() or distance.max() > 0.05 or len(set(nearest.tolist())) != NUM_BINS:
        raise DataError(
            f"{path}: model_out.weight x 110 is not a permutation of the {NUM_BINS} ab bin centres "
            f"(largest distance to a bin {distance.max().item():.3g}, "
            f"{NUM_BINS - len(set(nearest.tolist()))} bins doubled)"
        )
    order = torch.empty(NUM_BINS, dtype=torch.long)
    order[nearest] = torch.arange(NUM_BINS)
    return order


def _shapes(net_factory: Callable[[], torch.nn.Module]) -> dict[str, Tensor]:
    """The state dict of a network built on the meta device (names, shapes and dtypes, no memory)."""
    with torch.device("meta"):
        return net_factory().state_dict()


# -- conversion -------------------------------------------------------------------------------------------


def _convert(kind: str, paths: list[Path]) -> tuple[dict[str, Tensor], dict[str, list[str]]]:
    """tinct's state dict from the release's file(s), and the keys ignored per file."""
    if kind == "eccv16":
        from tinct.colorization.networks import ColorizationNet

        target = _shapes(lambda: ColorizationNet(1.0, "classification"))
        state = _read_state(paths[0])
        what = "the eccv16 release's network (ECCVGenerator)"
        out, _ = _take(paths[0], state, target, _eccv16_key, what, extra=["model_out.weight"])
        order = _bin_order(paths[0], state["model_out.weight"])
        out["classifier.weight"] = out["classifier.weight"][order].contiguous()
        out["classifier.bias"] = out["classifier.bias"][order].contiguous()
        return out, {}
    if kind == "siggraph17":
        from tinct.colorization.siggraph import SIGGRAPHNet

        target = _shapes(lambda: SIGGRAPHNet(1.0))
        what = "the siggraph17 release's network (SIGGRAPHGenerator)"
        return _take(paths[0], _read_state(paths[0]), target, _siggraph_key, what)[0], {}
    from tinct.colorization.instance import InstanceFusionNet

    target = _shapes(lambda: InstanceFusionNet(1.0, 256, 16, "instcolorization"))
    out: dict[str, Tensor] = {}
    ignored: dict[str, list[str]] = {}
    parts = {
        "G": ("instance.", "InstColorization's instance network (latest_net_G.pth, a SIGGRAPHGenerator)"),
        "GF": ("", "InstColorization's fusion network (latest_net_GF.pth, a FusionGenerator)"),
        "GComp": (
            "plain.",
            "InstColorization's full-image network (latest_net_GComp.pth, a SIGGRAPHGenerator)",
        ),
    }
    for (prefix, what), path in zip(parts.values(), paths, strict=True):
        if prefix:
            sub = {k.removeprefix(prefix): v for k, v in target.items() if k.startswith(prefix)}
            key_of = _siggraph_key
        else:
            sub = {k: v for k, v in target.items() if k.startswith(("full.", "fusion."))}
            key_of = _fusion_key
        state = _read_state(path)
        if prefix and any(k.startswith("weight_layer") for k in state):
            raise DataError(f"{path}: not {what}{_guess(state)}")
        # The release loads its checkpoints with strict=False: keys its networks do not use (such as the
        # fusion network's weight_layerout) are left out, and reported.
        taken, unused = _take(path, state, sub, key_of, what, strict=False)
        del state
        out.update({prefix + k: v for k, v in taken.items()})
        if unused:
            ignored[path.name] = unused
    return out, ignored
