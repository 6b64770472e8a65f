"""Inputs and output names of commands that work file by file (``tinct predict``, ``tinct colorize``).

:func:`collect_inputs` expands the command's arguments (files as given, folders searched recursively) and
keeps the ones that do not exist, so a command can skip them by name and go on. The output-name scheme, deterministic given the list of inputs:

- an input found under a folder argument keeps its sub-folder relative to that folder; a file given as
  an argument goes to the top of the output folder;
- its name is the input's stem when no other input lands in the same output folder with the same stem;
- otherwise ``<stem>_<ext>`` (extension lowercased): ``a.png`` and ``a.npy`` become ``a_png`` and
  ``a_npy``;
- a name that is still taken (the same file given twice, ``a.PNG`` beside ``a.png``, a file called
  ``a_png.jpg`` beside them) stays with the first input asking for it, and the others get ``-2``, ``-3``
  ... in the order of the inputs, skipping names that another input asks for by itself.

Names are compared case-insensitively (macOS and Windows file systems are), and each command adds its
own suffix: ``<name>_balanced.png``, ``<name>_color.png``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath

__all__ = ["collect_inputs", "key_matches", "unique_output_names"]


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
    # The name each input asks for: its stem, or <stem>_<ext> (extension lowercased) when the stem is shared.
    wanted = [
        p.stem if counts[key] == 1 or not p.suffix else f"{p.stem}_{p.suffix[1:].lower()}"
        for key, p in zip(keys, paths, strict=True)
    ]
    reserved = {(key[0], w.casefold()) for key, w in zip(keys, wanted, strict=True)}
    taken: set[tuple[str, str]] = set()
    names: list[str] = [""] * len(paths)
    # Inputs with a stem of their own first (they keep it, whatever the order), then the others in input
    # order: the first asker keeps a wanted name, later ones number it, never taking a name that another
    # input asks for by itself (a_jpg-2.png beside a.jpg and a.JPG keeps its own name).
    order = [i for i, key in enumerate(keys) if counts[key] == 1]
    order += [i for i, key in enumerate(keys) if counts[key] > 1]
    for i in order:
        folder, base = keys[i][0], wanted[i]
        name, k = base, 1
        while (folder, name.casefold()) in taken or (k > 1 and (folder, name.casefold()) in reserved):
            k += 1
            name = f"{base}-{k}"
        taken.add((folder, name.casefold()))
        names[i] = name
    return [folder / str(name) for folder, name in zip(folders, names, strict=True)]


def collect_inputs(
    inputs: Iterable[str | os.PathLike[str]], suffixes: Iterable[str]
) -> tuple[list[Path], list[Path | None], list[str]]:
    """The files of a command's arguments: ``(paths, roots, missing)``.

    A file is taken as given; a folder is searched recursively for files whose suffix (any case) is one of
    ``suffixes`` (sorted); ``roots[i]`` is the folder argument ``paths[i]`` was found under (None: given as
    a file), as :func:`unique_output_names` takes it; ``missing`` lists the arguments that do not exist.
    """
    wanted = {s.lower() for s in suffixes}
    paths: list[Path] = []
    roots: list[Path | None] = []
    missing: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in wanted and q.is_file())
            paths += found
            roots += [p] * len(found)
        elif p.is_file():
            paths.append(p)
            roots.append(None)
        else:
            missing.append(str(item))
    return paths, roots, missing


def key_matches(key: str, path: Path) -> bool:
    """Whether a user's key names ``path``: its file name, its stem, or its last path parts
    (``"holiday/dog"``, ``"holiday/dog.jpg"``), as hint and box files key their photos.

    Example:
        >>> [key_matches(k, Path("trip/holiday/dog.jpg")) for k in ("dog", "dog.jpg", "holiday/dog", "x/dog")]
        [True, True, True, False]
    """
    parts = PurePath(key).parts
    if not parts or len(parts) > len(path.parts) or parts[-1] not in (path.name, path.stem):
        return False
    return tuple(parts[:-1]) == path.parts[len(path.parts) - len(parts) : -1]
