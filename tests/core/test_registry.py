"""The registry's entry points: a name's module is imported only when that name is first looked up."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from tinct.core.exceptions import UnknownNameError
from tinct.core.registry import Registry

GROUP = "tinct.test_widgets"


def _plugin(tmp_path, monkeypatch, module: str, body: str) -> None:
    (tmp_path / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


def _entry_points(monkeypatch, **names: str) -> None:
    eps = metadata.EntryPoints(metadata.EntryPoint(n, v, GROUP) for n, v in names.items())
    real = metadata.entry_points
    monkeypatch.setattr(
        metadata, "entry_points", lambda **kw: eps if kw.get("group") == GROUP else real(**kw)
    )


def test_entry_point_modules_load_on_first_lookup(tmp_path, monkeypatch) -> None:
    reg: Registry = Registry("widget", entry_points=GROUP)
    _plugin(tmp_path, monkeypatch, "tinct_test_gear", "import tinct_test_reg\n"
            "@tinct_test_reg.REG.register('gear')\nclass Gear: pass\n")  # fmt: skip
    _plugin(tmp_path, monkeypatch, "tinct_test_bolt", "import tinct_test_reg\n"
            "@tinct_test_reg.REG.register('bolt')\nclass Bolt: pass\n")  # fmt: skip
    _plugin(tmp_path, monkeypatch, "tinct_test_reg", "")
    sys.modules.pop("tinct_test_reg", None)
    import tinct_test_reg

    tinct_test_reg.REG = reg
    _entry_points(monkeypatch, gear="tinct_test_gear", bolt="tinct_test_bolt")
    assert reg.get("gear").__name__ == "Gear"
    assert "tinct_test_gear" in sys.modules and "tinct_test_bolt" not in sys.modules  # lazy per name
    assert "bolt" in reg and "tinct_test_bolt" in sys.modules
    assert reg.names() == ["bolt", "gear"] and len(reg) == 2
    with pytest.raises(UnknownNameError, match="'bolt', 'gear'"):
        reg.get("nut")


def test_an_entry_point_that_registers_nothing_is_an_error(tmp_path, monkeypatch) -> None:
    reg: Registry = Registry("widget", entry_points=GROUP)
    _plugin(tmp_path, monkeypatch, "tinct_test_empty", "x = 1\n")
    _entry_points(monkeypatch, nut="tinct_test_empty")
    with pytest.raises(ValueError, match="registered no widget 'nut'"):
        reg.get("nut")


def test_tinct_tasks_come_from_entry_points() -> None:
    from tinct.engine.task import TASKS

    declared = {ep.name for ep in metadata.entry_points(group="tinct.tasks")}
    assert {"illuminant", "illuminant_embedding", "colorization", "patch"} <= declared
    assert set(TASKS.names()) >= declared
