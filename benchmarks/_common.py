"""What every benchmark script shares: a rich table printer, the run's stamp (machine, versions, commit,
date, command) and the results file, where each section keeps the stamp of the run that produced it.

A results file is ``{"format": 2, "sections": {name: record}}``; a record is the stamp of one run plus that
section's ``results``. A run replaces the records of the sections it ran and leaves the others exactly as
they were (their own machine, date and command), so a section skipped this time can never pass for a
figure of this run. ``python benchmarks/_common.py FILE.json`` prints each section's record as the one line
the README quotes beside its figures.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "FORMAT",
    "STAMP_KEYS",
    "machine_info",
    "print_table",
    "read_results",
    "run_stamp",
    "write_results",
]

FORMAT = 2
STAMP_KEYS = ("machine", "versions", "commit", "dirty", "date", "command")
REPO = Path(__file__).resolve().parents[1]
# taken when a benchmark script starts (it imports this module first): the 1, 5 and 15 minute load averages
_STARTED = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
_LOAD_AT_START = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def print_table(title: str, header: list[str], rows: list[list[Any]], digits: int = 2) -> None:
    """Print ``rows`` under ``header`` (first column left-aligned, floats with ``digits`` decimals)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for h in header:
        t.add_column(h, justify="left" if h == header[0] else "right")
    for r in rows:
        t.add_row(*(f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in r))
    Console().print(t)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    cores, phys = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            phys = value.strip()
        elif key.strip() == "core id":
            cores.add((phys, value.strip()))
    return len(cores) or None


def machine_info() -> dict[str, Any]:
    """The machine a figure was measured on: CPU model, cores, torch threads, GPUs (``None`` without CUDA)
    and the load average when the run began."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else None
    )
    return {
        "cpu": _cpu_model(),
        "physical_cores": _physical_cores(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads": torch.get_num_threads(),
        "gpus": gpus,
        "platform": platform.platform(),
        # other processes' demand as the run began: timings from a loaded machine read differently
        "load_average_at_start": _LOAD_AT_START,
    }


def _versions() -> dict[str, str | None]:
    import numpy

    try:
        from importlib.metadata import version

        tinct = version("tinct")
    except Exception:  # not installed: the figure still says so
        tinct = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "tinct": tinct,
    }


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _git_state() -> dict[str, Any]:
    head = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=all", "--", ".", ":(exclude)benchmarks/results")
    changed = None if status is None else [line[3:] for line in status.splitlines() if line.strip()]
    return {
        "commit": head.strip() if head else None,
        "dirty": None if changed is None else bool(changed),
        "dirty_files": changed[:50] if changed else [],
    }


# the code a run imported is the code at its start: a commit made while it runs must not be credited with it
_GIT_AT_START = _git_state()


def run_stamp(argv: list[str] | None = None) -> dict[str, Any]:
    """The stamp of this run: machine, versions, git commit (and the changed files, if the tree was
    dirty) when the script started, UTC start and end (``date``) and the command line (``sys.argv`` by
    default).

    Results files under ``benchmarks/results/`` do not count as changes: a run that has just written one
    must not mark the next run dirty.
    """
    argv = list(sys.argv if argv is None else argv)
    return {
        "machine": machine_info(),
        "versions": _versions(),
        **_GIT_AT_START,
        "started": _STARTED,
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "command": shlex.join(["python", *argv]),
    }


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The section records of a results file (``{}`` if there is none).

    A file of the old, merged format (one machine stamp for all sections, whatever run produced them)
    cannot say which run measured which section: its sections are dropped with a message, never kept.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text())
    if doc.get("format") != FORMAT or not isinstance(doc.get("sections"), dict):
        print(f"{path}: old format without per-section stamps; its sections {sorted(doc)} are dropped")
        return {}
    return doc["sections"]


def write_results(
    out: Path, sections: Mapping[str, Any], stamp: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write each of ``sections`` (name -> results) into ``out`` under this run's stamp.

    Sections in ``out`` not run this time keep their own earlier record (machine, date, command) untouched.
    ``stamp`` defaults to :func:`run_stamp`; tests pass their own. Returns the document written.
    """
    from tinct.core.atomic import atomic_write_text

    records = read_results(Path(out))
    if not sections:
        print(f"no section was run: {out} left as it was")
        return {"format": FORMAT, "sections": records}
    stamp = dict(run_stamp() if stamp is None else stamp)
    missing = [k for k in STAMP_KEYS if k not in stamp]
    if missing:
        raise ValueError(f"stamp lacks {missing}; expected keys {list(STAMP_KEYS)}")
    kept = sorted(set(records) - set(sections))
    for name, results in sections.items():
        records[name] = {**stamp, "results": results}
    doc = {"format": FORMAT, "sections": dict(sorted(records.items()))}
    atomic_write_text(out, json.dumps(doc, indent=2, default=float) + "\n")
    print(f"wrote {out}: {', '.join(sections)} ({stamp['date']})")
    for name in kept:
        r = records[name]
        print(f"  kept {name} from its own run: {r['date']}, `{r['command']}`")
    return doc


def describe(record: Mapping[str, Any]) -> str:
    """One line for the README: command, date, commit and machine of a section record."""
    m, v = record["machine"], record["versions"]
    commit = (record["commit"] or "unknown")[:7] + (
        " with uncommitted changes" if record.get("dirty") else ""
    )
    gpus = ", ".join(m.get("gpus") or []) or "no GPU"
    load = m.get("load_average_at_start")
    load = f", load average {load[0]:.1f} at start" if load else ""
    return (
        f"`{record['command']}`, {record['date'][:10]}, commit {commit}; {m['cpu']}, {m.get('physical_cores')} cores, "
        f"{m['torch_threads']} torch threads, {gpus}{load}; torch {v['torch'].split('+')[0]}"
    )


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        for section, rec in read_results(Path(arg)).items():
            print(f"{arg} [{section}]: {describe(rec)}")
