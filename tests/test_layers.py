"""The layer contracts of pyproject.toml ([tool.importlinter]) hold: imports point down, domains are independent.

The README's test command runs ``lint-imports`` itself; this test makes a plain ``pytest`` catch an upward
import too, and checks that the contracts still name every package of ``src/tinct`` (a new package that no
contract names would escape them), and every top-level module (``tinct.api``) too.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_every_package_is_in_a_layer() -> None:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in layer.split("|")}
    src = ROOT / "src" / "tinct"
    packages = {f"tinct.{p.parent.name}" for p in src.glob("*/__init__.py")}
    modules = {f"tinct.{p.stem}" for p in src.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages | modules == named


def test_import_contracts_hold() -> None:
    import importlinter  # noqa: F401  (a test extra, tinct[test]: its absence fails here)

    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; c()"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
