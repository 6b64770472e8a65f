"""Atomic writes: content replaced whole, no temporary left behind, ordinary file permissions."""

import os
from pathlib import Path

import pytest

from tinct.core.atomic import atomic_write_bytes, atomic_write_json


def test_atomic_write_replaces_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert target.read_text().strip().endswith("}") and '"x": 2' in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_atomic_write_uses_the_umask_not_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "f.bin", b"data")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "g.bin", object())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "h.bin"
    target.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_links_are_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    # A link at the destination is replaced by the new file; its target is left alone.
    (out / "a.json").symlink_to(victim)
    atomic_write_json(out / "a.json", {"x": 1})
    assert victim.read_text() == "precious" and not (out / "a.json").is_symlink()
    # Links planted at guessable temporary names are never opened (mkstemp: O_EXCL, random names).
    for i in range(20):
        (out / f".b.json.{i}.tmp").symlink_to(victim)
    atomic_write_json(out / "b.json", {"y": 2})
    assert victim.read_text() == "precious" and '"y": 2' in (out / "b.json").read_text()


def test_long_file_name_leaves_room_for_the_temporary_suffix(tmp_path: Path) -> None:
    name = "n" * 250 + ".json"  # 255 bytes: the longest name most file systems allow
    assert atomic_write_json(tmp_path / name, {}).read_text() == "{}\n"
