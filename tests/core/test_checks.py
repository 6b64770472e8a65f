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
