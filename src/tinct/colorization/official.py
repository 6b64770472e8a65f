"""The released PyTorch weights of the original colorization papers, converted into tinct colorizer files.

``tinct import-weights KIND FILE --out model.pt`` (:func:`import_weights`) reads a file the user names (nothing
is downloaded), checks its SHA-256 against the known releases (:data:`RELEASES`, :func:`check_release`), maps
the original parameter names onto tinct's networks, and writes a ``tinct-colorizer-v1`` file
(:mod:`tinct.colorization.pretrained`) that every tinct command loads, plus its JSON card. Weights stay in
float32, so the converted network computes what the original does.

- ``eccv16``: ``colorization_release_v2-9b330a0b.pth`` of richzhang/colorization (``colorizers/eccv16.py``:
  ``model1`` ... ``model8``, ``model_out``). Its 313 logits are re-ordered into tinct's bins
  (:func:`tinct.color.quantize.ab_bins`), the order being read from ``model_out``, the 1x1 convolution that
  holds the bin centres / 110. The release decodes with the plain mean of the softmax (then x 4 bilinear
  upsampling), which is tinct's annealed mean at temperature 1: the file records ``temperature: 1.0``;
  ``--temperature 0.38`` gives the paper's annealed mean.
- ``siggraph17``: ``siggraph17-df00044c.pth`` (``colorizers/siggraph17.py``) onto
  :class:`~tinct.colorization.siggraph.SIGGRAPHNet`, both heads.
- ``instcolorization``: the three checkpoints of ericsujw/InstColorization (``latest_net_G.pth``: the instance
  network; ``latest_net_GF.pth``: the fusion network, a full-image network with 13 weight generators;
  ``latest_net_GComp.pth``: the full-image network for photos without boxes) onto an
  :class:`~tinct.colorization.instance.InstanceFusionNet` of style ``"instcolorization"`` (the release's
  fusion rules), crops of 256 x 256 as the release's.

Only the released width (1.0) converts; a file of another architecture or width is refused with the keys
or shapes that differ.

References:
    Zhang, Isola & Efros (2016), Colorful Image Colorization, ECCV; Zhang, Zhu, Isola et al. (2017), Real-Time
    User-Guided Image Colorization with Learned Deep Priors, SIGGRAPH (github.com/richzhang/colorization,
    ``colorizers/``). Su, Chu & Huang (2020), Instance-aware Image Colorization, CVPR
    (github.com/ericsujw/InstColorization, ``models/networks.py``, ``models/fusion_model.py``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from tinct.core.exceptions import ConfigError, DataError, some_of

__all__ = [
    "INSTCOLORIZATION_FILES",
    "KINDS",
    "RELEASES",
    "Release",
    "ReleaseCheck",
    "check_release",
    "file_sha256",
    "import_weights",
    "release_files",
]

#: The kinds of released weights :func:`import_weights` converts.
KINDS = ("eccv16", "siggraph17", "instcolorization")
#: InstColorization's checkpoints by role: instance network, fusion network, full-image network (no boxes).
INSTCOLORIZATION_FILES = {"G": "latest_net_G.pth", "GF": "latest_net_GF.pth", "GComp": "latest_net_GComp.pth"}


@dataclass(frozen=True)
class Release:
    """A published weights file: its kind, file name, SHA-256 (all 64 hex digits, or only the first 8 where
    only those are published, in the file name), size in bytes where known, and where it is published."""

    kind: str
    file: str
    sha256: str
    size: int | None
    source: str
    role: str = ""

    @property
    def full_hash(self) -> bool:
        """Whether the whole SHA-256 is known (else only its first 8 hex digits)."""
        return len(self.sha256) == 64


_S3 = "https://colorizers.s3.us-east-2.amazonaws.com/"
_LFS = "github.com/ericsujw/InstColorization, git-lfs pointers of checkpoints/{} at commit 13e6eec"

#: The known releases. ECCV16: the full hash and size given with the release; SIGGRAPH17: the 8 hex digits
#: of its file name (torch.hub's check_hash); InstColorization: the git-lfs pointers of the authors' two
#: checkpoint sets (``coco_finetuned_mask_256_ffs`` is the one their test_fusion.py loads).
RELEASES: tuple[Release, ...] = (
    Release(
        "eccv16", "colorization_release_v2-9b330a0b.pth",
        "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9", 128_976_165,
        _S3 + "colorization_release_v2-9b330a0b.pth (richzhang/colorization, colorizers/eccv16.py)",
    ),
    Release(
        "siggraph17", "siggraph17-df00044c.pth", "df00044c", None,
        _S3 + "siggraph17-df00044c.pth (richzhang/colorization, colorizers/siggraph17.py)",
    ),
    *(
        Release("instcolorization", INSTCOLORIZATION_FILES[role], sha, size, _LFS.format(folder), role)
        for folder, role, sha, size in (
            ("coco_finetuned_mask_256_ffs", "G",
             "91c2812f62095526612e85ed6eeafaab55f31bcec6b1e97e4d7299c442f490ab", 136_789_235),
            ("coco_finetuned_mask_256_ffs", "GF",
             "90011a980955ce3d26ebfe82a51a374f96d3908d1c5391f1ade0d99513d93c15", 141_173_736),
            ("coco_finetuned_mask_256_ffs", "GComp",
             "8b5d727597138615b40408d69f49f6917d900ae0f1d39c692b885c16d47e2e69", 136_789_235),
            ("coco_finetuned_mask_256", "G",
             "280f01187dbaa9199da89a40f08c68296d0995a77148f287378b54cc83f84933", 136_789_235),
            ("coco_finetuned_mask_256", "GF",
             "963ccb44316f188638e4dd7f43342477e54f7d1ab0645c3ca36e667cc904ebd1", 141_173_736),
            ("coco_finetuned_mask_256", "GComp",
             "38882fce5173aec899b0f2f2401ceb65eaeedd166808a89e268e09b79c2b038b", 136_789_235),
        )
    ),
)  # fmt: skip


@dataclass(frozen=True)
class ReleaseCheck:
    """How a file compares with the known releases of a kind.

    ``status``: ``matched`` (its SHA-256 is a release's), ``prefix-matched`` (it begins with the 8 published
    digits), ``mismatch`` (it carries a release's file name, or is another kind's release, but is not that
    file) or ``unknown`` (no release of that name: a fine-tuned or re-saved file). Only ``mismatch`` calls
    for a warning; every status converts if the contents fit.
    """

    path: Path
    sha256: str
    size: int
    status: Literal["matched", "prefix-matched", "unknown", "mismatch"]
    release: Release | None
    message: str


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown kind of released weights {kind!r}; valid choices: {', '.join(KINDS)}")
    return kind


def _check_file(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    return path


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks (remembered while the file's size and time are unchanged,
    so checking and importing a file reads it once).

    Raises:
        DataError: the file does not exist or is not a file.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "abc.txt"
        ...     _ = path.write_bytes(b"abc")
        ...     file_sha256(path)[:16]
        'ba7816bf8f01cfea'
    """
    p = _check_file(Path(path))
    stat = p.stat()
    return _sha256(str(p.resolve()), stat.st_size, stat.st_mtime_ns)


def check_release(path: str | os.PathLike[str], kind: str, role: str = "") -> ReleaseCheck:
    """Compare a file's SHA-256 (and size) with the known releases of ``kind`` (:data:`RELEASES`); for
    ``instcolorization``, ``role`` (``G``, ``GF`` or ``GComp``) says which of its checkpoints it is meant to
    be (:func:`release_files`).

    Raises:
        ConfigError: ``kind`` is not one of :data:`KINDS`.
        DataError: the file does not exist.
    """
    _check_kind(kind)
    p = Path(path)
    sha = file_sha256(p)
    size = p.stat().st_size
    for r in RELEASES:
        if r.full_hash and r.sha256 == sha:
            if r.kind != kind:
                message = f"this is the released {r.kind} file {r.file}, not a {kind} one"
                return ReleaseCheck(p, sha, size, "mismatch", r, message)
            if role and r.role and r.role != role:
                message = f"this is the released {r.file}, given as InstColorization's {role}"
                return ReleaseCheck(p, sha, size, "mismatch", r, message)
            what = f" ({r.role})" if r.role else ""
            return ReleaseCheck(p, sha, size, "matched", r, f"the released {r.file}{what}, {r.source}")
    known = [r for r in RELEASES if r.kind == kind and (not role or not r.role or r.role == role)]
    for r in known:
        if not r.full_hash and sha.startswith(r.sha256):
            return ReleaseCheck(
                p, sha, size, "prefix-matched", r,
                f"begins with {r.sha256} as the released {r.file} (only those 8 hex digits are published), "
                f"{r.source}",
            )  # fmt: skip
    named = [r for r in known if r.file == p.name]
    if named:
        r = named[0]
        expected = " or ".join(f"{n.sha256[:16]}..." if n.full_hash else f"{n.sha256}..." for n in named)
        sizes = {n.size for n in named if n.size is not None}
        note = ""
        if sizes and size not in sizes:
            note = f"; {size} bytes, the release has {some_of(sorted(sizes))}"
            note += " (a truncated download?)" if size < min(sizes) else ""
        return ReleaseCheck(
            p, sha, size, "mismatch", r,
            f"NOT the released {r.file}: its SHA-256 differs (the release's begins {expected}){note}; a "
            f"fine-tuned or re-saved file of the same network converts all the same",
        )  # fmt: skip
    released = some_of(list(dict.fromkeys(r.file for r in known)))
    return ReleaseCheck(
        p, sha, size, "unknown", None,
        f"not a known release of {kind} (released: {released}); a fine-tuned or re-saved file of the same "
        "network converts all the same",
    )  # fmt: skip


def release_files(kind: str, files: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files of one import: the one file of ``eccv16`` / ``siggraph17``; for ``instcolorization`` its
    three checkpoints in the order G, GF, GComp (:data:`INSTCOLORIZATION_FILES`), from their folder or named
    one by one (recognised by the ``net_G`` / ``net_GF`` / ``net_GComp`` ending of their names).

    Raises:
        ConfigError: an unknown kind, or the wrong number of files for it.
        DataError: a file or the folder is missing, or three files whose names do not tell their roles.
    """
    _check_kind(kind)
    paths = [Path(f) for f in files]
    if kind != "instcolorization":
        if len(paths) != 1:
            raise ConfigError(f"{kind} takes one weights file, got {len(paths)}: {some_of(paths)}")
        return [_check_file(paths[0])]
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        found = [folder / name for name in INSTCOLORIZATION_FILES.values()]
        missing = [p.name for p in found if not p.is_file()]
        if missing:
            raise DataError(
                f"{folder}: missing {', '.join(missing)} (InstColorization's checkpoint folder holds "
                f"{', '.join(INSTCOLORIZATION_FILES.values())})"
            )
        return found
    if len(paths) != 3:
        raise ConfigError(
            f"instcolorization takes the folder of its three checkpoints or the three files "
            f"({', '.join(INSTCOLORIZATION_FILES.values())}), got {len(paths)}: {some_of(paths)}"
        )
    by_role: dict[str, Path] = {}
    for p in paths:
        stem = p.name.removesuffix(".pth").removesuffix(".pt")
        role = next((r for r in ("GComp", "GF", "G") if stem.endswith(f"net_{r}")), None)
        if role is None or role in by_role:
            raise DataError(
                f"{p}: cannot tell which of InstColorization's checkpoints this is: name the files as "
                f"released ({', '.join(INSTCOLORIZATION_FILES.values())}, or <epoch>_net_G.pth ...)"
            )
        by_role[role] = _check_file(p)
    return [by_role[r] for r in INSTCOLORIZATION_FILES]


# -- reading ----------------------------------------------------------------------------------------------


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


def _config(kind: str) -> dict[str, Any]:
    """A complete config of the task (``tinct.engine.config.config_from_dict`` accepts it)."""
    if kind == "instcolorization":
        from tinct.colorization.instance_task import (
            InstanceColorizationConfig,
            InstanceDataConfig,
            InstanceModelConfig,
        )

        cfg: Any = InstanceColorizationConfig(
            name="instcolorization-release",
            # The release was trained on COCO-Stuff (train2017), which the import does not bring.
            data=InstanceDataConfig(root="coco-stuff-train2017-not-included", resize=256, eval_size=256),
            model=InstanceModelConfig(
                width=1.0, stage="fusion", crop_size=256, fusion_inner=16, fusion_style="instcolorization",
                prior="reference", infer_size=256,
            ),
        )  # fmt: skip
    else:
        from tinct.colorization.task import ColorizationConfig, ColorizationModelConfig

        if kind == "eccv16":
            model = ColorizationModelConfig(
                arch="eccv16", width=1.0, head="classification", prior="reference", temperature=1.0
            )
        else:
            model = ColorizationModelConfig(
                arch="siggraph17", width=1.0, head="regression", prior="reference"
            )
        cfg = ColorizationConfig(name=f"{kind}-release", model=model)
    return cfg.model_dump(mode="json")


_NOTES = {
    "eccv16": "decoded as the release: the mean of the softmax (temperature 1.0), upsampled x 4; "
    "--temperature 0.38 gives the paper's annealed mean. tinct resizes the short side to 256 (the "
    "release's demo: 256 x 256).",
    "siggraph17": "the regression head, as the release; without hints the mask channel is -0.5 (the "
    "network's training convention; the release's demo passes 0). tinct resizes the short side to 256.",
    "instcolorization": "the release's fusion (style instcolorization); crops of 256 x 256; photos without "
    "boxes go through latest_net_GComp. tinct colorize takes the boxes from --boxes DIR|FILE or --detector "
    "NAME. tinct resizes the short side to 256 (the release: 256 x 256).",
}


def import_weights(kind: str, files: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """Convert a release's weights (:data:`RELEASES`) into a tinct colorizer file, plus its JSON card.

    Args:
        kind: ``eccv16``, ``siggraph17`` or ``instcolorization`` (:data:`KINDS`).
        files: the one file; for ``instcolorization`` the folder of its three checkpoints or the three files
            (:func:`release_files`).
        out: the ``.pt`` file to write (atomically); the card goes beside it with ``.json``. It holds the
            source files' names, SHA-256, sizes and release comparison (:func:`check_release`), the
            parameter count and the config.

    Returns:
        ``out``, which :func:`tinct.colorization.pretrained.load_colorizer_file` (so ``--model`` of every
        tinct command) loads.

    Raises:
        ConfigError: an unknown kind, the wrong number of files, or ``out`` is a ``.json`` file, a folder or
            one of the inputs.
        DataError: a file is missing, truncated or corrupt, not a state dict, of another architecture
            (missing or unexpected keys named) or width (shapes named), or ``model_out`` of ECCV16 does not
            hold the 313 bins. Nothing is written then.
    """
    from tinct.colorization.pretrained import FORMAT
    from tinct.core.atomic import atomic_torch_save, atomic_write_json

    paths = release_files(kind, files)
    target = Path(out)
    if target.suffix == ".json" or target.is_dir():
        raise ConfigError(f"{target}: --out must be a file such as model.pt (its card is written beside it)")
    if any(target.resolve() == p.resolve() for p in paths):
        raise ConfigError(f"{target}: --out would overwrite an input file")
    roles = list(INSTCOLORIZATION_FILES) if kind == "instcolorization" else [""]
    checks = [check_release(p, kind, role) for p, role in zip(paths, roles, strict=True)]
    state, ignored = _convert(kind, paths)
    config = _config(kind)
    source = {
        "kind": kind,
        "files": [
            {
                "file": c.path.name,
                **({"role": role} if role else {}),
                "sha256": c.sha256,
                "bytes": c.size,
                "release": c.status,
                **({"release_file": c.release.file} if c.release else {}),
            }
            for c, role in zip(checks, roles, strict=True)
        ],
    }
    atomic_torch_save({"format": FORMAT, "config": config, "state_dict": state, "source": source}, target)
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith(_BUFFERS))
    card = {
        "format": FORMAT,
        "kind": kind,
        "source": source,
        "parameters": parameters,
        "dtype": "float32",
        "file_bytes": target.stat().st_size,
        "ignored_keys": ignored,
        "notes": _NOTES[kind],
        "config": config,
    }
    try:
        atomic_write_json(target.with_suffix(".json"), card)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
