import pytest
import torch

from tinct.core import (
    Registry,
    ShapeError,
    TypeCheckError,
    UnknownNameError,
    check_channel_dim,
    check_choice,
    check_shape,
)


def test_check_shape_star_and_fixed() -> None:
    x = torch.zeros(2, 5, 3, 4, 4)
    assert check_shape(x, ["*", "3", "H", "W"]) is x
    check_shape(torch.zeros(3, 4, 4), ["*", "3", "H", "W"])
    with pytest.raises(ShapeError, match=r"expected shape \(\*, 3, H, W\), got \(2, 4, 4\)"):
        check_shape(torch.zeros(2, 4, 4), ["*", "3", "H", "W"])
    with pytest.raises(ShapeError):
        check_shape(torch.zeros(3, 4), ["3", "H", "W"])


def test_check_channel_dim_messages() -> None:
    assert check_channel_dim(torch.zeros(2, 3, 4, 4), -3) == 1
    assert check_channel_dim(torch.zeros(7, 3), -1) == 1
    with pytest.raises(ShapeError, match="dim=-1"):
        check_channel_dim(torch.zeros(7, 4), -1)
    with pytest.raises(ShapeError):
        check_channel_dim(torch.zeros(3), -3)
    with pytest.raises(TypeCheckError, match=r"x\.float"):
        check_channel_dim(torch.zeros(3, 2, 2, dtype=torch.uint8), -3)
    with pytest.raises(TypeCheckError):
        check_channel_dim([1.0, 2.0, 3.0], -1)


def test_errors_subclass_builtins() -> None:
    assert issubclass(ShapeError, ValueError)
    assert issubclass(TypeCheckError, TypeError)
    assert issubclass(UnknownNameError, ValueError)


def test_check_choice_lists_names() -> None:
    with pytest.raises(UnknownNameError, match="'a', 'b'"):
        check_choice("c", ["a", "b"])


def test_registry_duplicate_and_unknown() -> None:
    reg: Registry = Registry("widget")

    @reg.register("one")
    def one() -> int:
        return 1

    assert reg.build("one") == 1 and "one" in reg and len(reg) == 1
    with pytest.raises(ValueError, match="already registered"):
        reg.register("one")(lambda: 2)
    with pytest.raises(UnknownNameError, match="valid choices: 'one'"):
        reg.get("two")


def test_check_name_refuses_what_is_not_one_folder_name() -> None:
    from tinct.core.checks import check_name
    from tinct.core.exceptions import ConfigError

    for ok in ("run", "mondrian-small-cnn", "lr 0.1", "météo", "a.b", "x" * 200):
        assert check_name(ok) == ok
    for bad, why in [
        ("../x", "path separator"),
        ("a\\b", "path separator"),
        ("..", "starts with '.'"),
        ("", "is empty"),
        ("a\x00", "control character"),
        ("é" * 101, "202 bytes long"),
    ]:
        with pytest.raises(ConfigError, match=f"sweep name .*{why}.*use letters, digits"):
            check_name(bad, "sweep name")


def test_check_inside_is_lexical_and_strict(tmp_path) -> None:
    from tinct.core.checks import check_inside
    from tinct.core.exceptions import ConfigError

    assert check_inside(tmp_path, tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_inside("runs", "runs/x-1")
    for bad in (tmp_path / ".." / "x", tmp_path, tmp_path / "a" / ".." / ".."):
        with pytest.raises(ConfigError, match=r"trial folder .* is not inside"):
            check_inside(tmp_path, bad, "trial folder")


def test_check_fold_count() -> None:
    from tinct.core.checks import check_fold_count
    from tinct.core.exceptions import ConfigError

    assert check_fold_count(None, 3, "d") is None and check_fold_count(3, 3, "d") == 3
    for folds, message in [(1, "at least 2"), (0, "at least 2"), (-3, "at least 2"), (4, r"\(3 in d\)")]:
        with pytest.raises(ConfigError, match=f"folds={folds}: .*{message}"):
            check_fold_count(folds, 3, "d")


def test_unique_output_names_keep_stems_and_separate_collisions() -> None:
    from pathlib import Path

    from tinct.core.naming import unique_output_names

    names = unique_output_names([Path("a.png"), Path("a.npy"), Path("b.png"), Path("x/b.png")])
    assert [str(n) for n in names] == ["a_png", "a_npy", "b_png", "b_png-2"]  # files go to the top folder
    # a name still taken gets -2, -3 in input order; case-insensitive, as on macOS and Windows
    names = unique_output_names([Path("a.png"), Path("a.PNG"), Path("a_png.jpg"), Path("a.png")])
    assert [str(n) for n in names] == ["a_png-2", "a_png-3", "a_png", "a_png-4"]  # extension lowercased
    # under a folder argument, sub-folders are kept and only same-folder stems collide
    root = Path("d")
    paths = [root / "x.png", root / "s" / "x.png", root / "s" / "x.npy", Path("y.png")]
    names = unique_output_names(paths, [root, root, root, None])
    assert [str(n) for n in names] == ["x", "s/x_png", "s/x_npy", "y"]
    assert unique_output_names(paths, [root, root, root, None]) == names  # deterministic
    with pytest.raises(ValueError, match="2 paths but 1 roots"):
        unique_output_names([Path("a"), Path("b")], [None])
