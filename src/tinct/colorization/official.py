"""The released PyTorch weights of the original colorization papers, converted into tinct colorizer files.

``tinct import-weights KIND FILE --out model.pt`` (:func:`import_weights`) reads a file the user names (nothing
is downloaded), checks its SHA-256 against the known releases (:data:`RELEASES`, :func:`check_release`), maps
the original parameter names onto tinct's networks (:mod:`tinct.colorization.official_convert`), and writes a
``tinct-colorizer-v1`` file (:mod:`tinct.colorization.pretrained`) that every tinct command loads, plus its
JSON card. Weights stay in float32, so the converted network computes what the original does.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tinct.colorization.official_convert import _BUFFERS, _check_file, _convert
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
