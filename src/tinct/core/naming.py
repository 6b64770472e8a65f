"""Output names of commands that write files per input file (``tinct predict``, ``tinct colorize``).

The scheme, deterministic given the list of inputs:

- an input found under a folder argument keeps its sub-folder relative to that folder; a file given as
  an argument goes to the top of the output folder;
- its name is the input's stem when no other input lands in the same output folder with the same stem;
- otherwise ``<stem>_<ext>``: ``a.png`` and ``a.npy`` become ``a_png`` and ``a_npy``;
- a name that is still taken (the same file given twice, ``a.PNG`` beside ``a.png``, a file called
  ``a_png.jpg`` beside them) gets ``-2``, ``-3`` ... in the order of the inputs.

Names are compared case-insensitively (macOS and Windows file systems are), and each command adds its
own suffix: ``<name>_balanced.png``, ``<name>_color.png``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

__all__ = ["unique_output_names"]


def unique_output_names(paths: Sequence[Path], roots: Sequence[Path | None] | None = None) -> list[Path]:
    """The output name of every input file, relative to the output folder (see the module docstring).

    Args:
        paths: the input files, in the order they are processed.
        roots: for each input, the folder argument it was found under (its sub-folder is kept), or None
            for a file given directly. Default: all None.

    Returns:
        One relative path without suffix per input, e.g. ``Path("sub/a_npy")``; unique among the inputs
        (case-insensitively). A command writes ``out / name.parent / f"{name.name}_color.png"``.

    Raises:
        ValueError: ``roots`` has another length than ``paths``, or a path is not inside its root.

    Example:
        >>> [str(n) for n in unique_output_names([Path("a.png"), Path("a.npy"), Path("b.png")])]
        ['a_png', 'a_npy', 'b']
    """
    paths = [Path(p) for p in paths]
    roots = [None] * len(paths) if roots is None else list(roots)
    if len(roots) != len(paths):
        raise ValueError(f"unique_output_names: {len(paths)} paths but {len(roots)} roots")
    folders = [Path() if r is None else p.parent.relative_to(r) for p, r in zip(paths, roots, strict=True)]
    keys = [(str(f).casefold(), p.stem.casefold()) for f, p in zip(folders, paths, strict=True)]
    counts = Counter(keys)
    names: list[str | None] = [None] * len(paths)
    taken: set[tuple[str, str]] = set()
    for i, key in enumerate(keys):  # a stem no other input shares keeps its name, whatever the order
        if counts[key] == 1:
            names[i] = paths[i].stem
            taken.add(key)
    for i, (folder, p) in enumerate(zip(folders, paths, strict=True)):
        if names[i] is not None:
            continue
        ext = p.suffix.lstrip(".")
        base = f"{p.stem}_{ext}" if ext else p.stem
        name, k = base, 2
        while (str(folder).casefold(), name.casefold()) in taken:
            name, k = f"{base}-{k}", k + 1
        taken.add((str(folder).casefold(), name.casefold()))
        names[i] = name
    return [folder / str(name) for folder, name in zip(folders, names, strict=True)]
