"""The reference-data fixtures: skip on a user's clone, fail in CI (``TINCT_REQUIRE_DATA=1``)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


def _conftest(request: pytest.FixtureRequest) -> ModuleType:
    root = Path(__file__).resolve().parent / "conftest.py"
    return next(
        p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == str(root)
    )


@pytest.mark.parametrize("relative", ["", "spectra/nist_skin_reflectance_M38597.csv"])
def test_missing_data_fails_when_required(
    relative: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conftest = _conftest(request)
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "no-shared" / "data")
    monkeypatch.setenv("TINCT_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="TINCT_REQUIRE_DATA is set"):
        conftest.shared_path(relative)
    for unset in ("", "0"):
        monkeypatch.setenv("TINCT_REQUIRE_DATA", unset)
        with pytest.raises(pytest.skip.Exception, match="set TINCT_REQUIRE_DATA=1"):
            conftest.shared_path(relative)
    monkeypatch.delenv("TINCT_REQUIRE_DATA")
    with pytest.raises(pytest.skip.Exception, match="no-shared"):
        conftest.shared_path(relative)


def test_present_data_is_returned(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    conftest = _conftest(request)
    (tmp_path / "spectra").mkdir()
    (tmp_path / "spectra" / "x.csv").write_text("1\n")
    monkeypatch.setattr(conftest, "SHARED", tmp_path)
    monkeypatch.setenv("TINCT_REQUIRE_DATA", "1")
    assert conftest.shared_path() == tmp_path
    assert conftest.shared_path("spectra/x.csv") == tmp_path / "spectra" / "x.csv"
