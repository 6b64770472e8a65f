"""Benchmark figures carry their own provenance, and the ones the README quotes are committed and match it."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "_common.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stamp(date: str, command: str, cpu: str) -> dict:
    return {
        "machine": {"cpu": cpu, "torch_threads": 2, "gpus": None},
        "versions": {"torch": "2.0"},
        "commit": "0" * 40,
        "dirty": False,
        "dirty_files": [],
        "date": date,
        "command": command,
    }


def test_skipped_section_keeps_its_own_older_stamp(tmp_path: Path) -> None:
    c = _common()
    out = tmp_path / "bench.json"
    old = _stamp("2020-01-01T00:00:00+00:00", "python bench.py", "old CPU")
    new = _stamp("2024-06-01T00:00:00+00:00", "python bench.py --only b", "new CPU")
    c.write_results(out, {"a": {"x": 1.0}, "b": {"x": 2.0}}, stamp=old)
    c.write_results(out, {"b": {"x": 3.0}}, stamp=new)
    sections = json.loads(out.read_text())["sections"]
    assert sections["a"] == {**old, "results": {"x": 1.0}}  # not restamped with the new machine or date
    assert sections["b"] == {**new, "results": {"x": 3.0}}
    assert c.read_results(out) == sections
    assert "`python bench.py`, 2020-01-01" in c.describe(sections["a"])


def test_nothing_run_leaves_the_file_alone(tmp_path: Path) -> None:
    c = _common()
    out = tmp_path / "bench.json"
    c.write_results(out, {"a": 1}, stamp=_stamp("2020-01-01T00:00:00+00:00", "python bench.py", "cpu"))
    before = out.read_bytes()
    c.write_results(out, {})
    assert out.read_bytes() == before


def test_unstamped_old_format_is_dropped_not_restamped(tmp_path: Path) -> None:
    c = _common()
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"machine": {"cpu": "old"}, "stale": {"x": 1.0}}))
    c.write_results(out, {"fresh": {"x": 2.0}}, stamp=_stamp("2024-06-01T00:00:00+00:00", "python b.py", "c"))
    assert list(json.loads(out.read_text())["sections"]) == ["fresh"]


def test_stamp_incomplete_is_refused(tmp_path: Path) -> None:
    stamp = _stamp("2024-06-01T00:00:00+00:00", "python b.py", "c")
    del stamp["command"]
    with pytest.raises(ValueError, match="command"):
        _common().write_results(tmp_path / "b.json", {"a": 1}, stamp=stamp)


def test_run_stamp_describes_this_run() -> None:
    c = _common()
    stamp = c.run_stamp(["benchmarks/x.py", "--only", "a b"])
    assert set(c.STAMP_KEYS) <= set(stamp)
    assert stamp["command"] == "python benchmarks/x.py --only 'a b'"
    date = dt.datetime.fromisoformat(stamp["date"])
    assert date.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - date).total_seconds()) < 600
    assert stamp["machine"]["cpu"] and stamp["machine"]["torch_threads"] >= 1
    assert {"torch", "numpy", "tinct"} <= set(stamp["versions"])
    if (ROOT / ".git").exists() and shutil.which("git"):
        assert re.fullmatch(r"[0-9a-f]{40}", stamp["commit"])
        assert isinstance(stamp["dirty"], bool)


def _quoted_results() -> list[str]:
    return sorted(set(re.findall(r"benchmarks/results/[\w.-]+\.json", README.read_text())))


def test_readme_quotes_committed_stamped_results() -> None:
    """Every results file the README names exists (so is committed: CI runs on a checkout), is not
    git-ignored, has a complete stamp on every section, and the README gives each section's command, date and commit."""
    c = _common()
    text = README.read_text()
    quoted = _quoted_results()
    assert quoted, "the README names no benchmarks/results/*.json"
    problems = []
    for rel in quoted:
        path = ROOT / rel
        if not path.is_file():
            problems.append(f"{rel}: missing (run its benchmark and commit the JSON)")
            continue
        if shutil.which("git") and (ROOT / ".git").exists():
            ignored = subprocess.run(["git", "check-ignore", "-q", rel], cwd=ROOT).returncode == 0
            if ignored:
                problems.append(f"{rel}: git-ignored, so it cannot be committed")
        doc = json.loads(path.read_text())
        if doc.get("format") != c.FORMAT or not doc.get("sections"):
            problems.append(f"{rel}: not format {c.FORMAT} with per-section records")
            continue
        for name, record in doc["sections"].items():
            missing = [k for k in (*c.STAMP_KEYS, "results") if record.get(k) in (None, "")]
            if missing:
                problems.append(f"{rel} [{name}]: no {missing}")
                continue
            if f"`{record['command']}`" not in text:
                problems.append(
                    f"{rel} [{name}]: the README does not quote its command `{record['command']}`"
                )
            if record["date"][:10] not in text:
                problems.append(f"{rel} [{name}]: the README does not give its date {record['date'][:10]}")
            if record["commit"][:7] not in text:
                problems.append(f"{rel} [{name}]: the README does not give its commit {record['commit'][:7]}")
    assert not problems, "\n".join(problems)
