import pytest
import yaml

from tinct.constancy.task import IlluminantConfig
from tinct.core.config import apply_overrides, parse_overrides
from tinct.core.exceptions import ConfigError
from tinct.engine.config import load_config


def write(tmp_path, data) -> str:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_load_typed_with_overrides(tmp_path) -> None:
    path = write(tmp_path, {"task": "illuminant", "model": {"width": 8}})
    cfg = load_config(path, ["model.backbone=mobilenet_v2", "optim.lr=3e-4", "trainer.devices=[0, 1]"])
    assert isinstance(cfg, IlluminantConfig)
    assert cfg.model.backbone == "mobilenet_v2" and cfg.model.width == 8
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.trainer.devices == [0, 1]
    assert cfg.trainer.accelerator == "cpu"  # CPU by default


def test_errors_name_file_and_field(tmp_path) -> None:
    path = write(tmp_path, {"task": "illuminant", "model": {"widht": 8}})
    with pytest.raises(ConfigError, match=r"c\.yaml: invalid configuration\n  model\.widht: Extra inputs"):
        load_config(path)
    with pytest.raises(ConfigError, match="input_space"):
        load_config(write(tmp_path, {"task": "illuminant"}), ["model.input_space=logg"])
    with pytest.raises(ConfigError, match="valid choices: 'classification', 'colorization', 'illuminant'"):
        load_config(write(tmp_path, {"task": "nope"}))
    with pytest.raises(ConfigError, match="missing key 'task'"):
        load_config(write(tmp_path, {"name": "x"}))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        parse_overrides(["novalue"])


def test_apply_overrides_creates_sections_and_refuses_values() -> None:
    assert apply_overrides({"a": 1}, {"b.c": 2}) == {"a": 1, "b": {"c": 2}}
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"a": 1}, {"a.b": 2})


def test_folder_kind_needs_root(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"data: Value error, data.kind 'folder' needs data.root"):
        load_config(write(tmp_path, {"task": "illuminant", "data": {"kind": "folder"}}))


def test_trainer_choices_are_lightnings() -> None:
    import typing

    from lightning.fabric.connector import _PRECISION_INPUT
    from lightning.pytorch.accelerators import AcceleratorRegistry

    from tinct.core.config import ACCELERATORS, PRECISIONS

    assert set(ACCELERATORS) == set(AcceleratorRegistry.available_accelerators()) | {"gpu", "auto"}
    lightning = {str(v) for lit in typing.get_args(_PRECISION_INPUT) for v in typing.get_args(lit)}
    assert set(PRECISIONS) == lightning


def test_config_names_stay_one_folder_name(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"name: Value error, name '\.\./\.\./escaped' contains a path separator"
    ):
        load_config(write(tmp_path, {"task": "illuminant", "name": "../../escaped"}))
    with pytest.raises(ConfigError, match="name: Value error"):
        load_config(write(tmp_path, {"task": "illuminant"}), ["name=.."])
