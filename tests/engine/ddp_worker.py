"""One process of the DDP test (``test_ddp.py``): runs ``tinct train`` and reports what this rank did.

Usage: ``python ddp_worker.py <tinct train arguments>``, directly (Lightning's subprocess launcher then
re-runs this same command line for the other ranks, as it does for ``tinct train --devices 2``) or under
torchrun (one copy per rank). The arguments are handed unchanged to ``tinct.cli.main.main``; the only
thing added is a callback, so the run goes through the same code path as a user's ``tinct train``.

Environment: ``TINCT_TEST_REPORT_DIR`` (required): each rank writes ``rank<global_rank>.json`` there;
``TINCT_TEST_WATCH_DIR`` (required): the folder whose writes are recorded (the config's ``output_dir``).

Write tracking uses a Python audit hook (:func:`sys.addaudithook`), installed before tinct, torch or
Lightning are imported. Every file operation done from Python raises an audit event (``open`` with its
mode and flags, ``os.rename`` for ``os.replace``, ``os.mkdir``, ``os.remove`` ...) whichever library
does it and however it is spelled (``open``, ``Path.write_text``, ``tempfile.mkstemp``, ``os.open``), so
the hook sees writes that bypass tinct's ``atomic_write_*`` helpers too. It cannot see files opened by
C/C++ code (``torch.save(obj, "path")`` writes through its own C++ file writer); the test therefore also
checks that every file found in the run directory was recorded as written by rank 0.

Nothing runs on import (pytest imports this module to collect doctests).
"""

from __future__ import annotations

import os
import sys
from typing import Any

# audit events that change the file system, and which of their arguments are paths
_PATH_EVENTS = {
    "os.rename": (0, 1),  # os.rename and os.replace
    "os.mkdir": (0,),
    "os.remove": (0,),  # os.remove and os.unlink
    "os.rmdir": (0,),
    "os.truncate": (0,),
    "os.symlink": (0, 1),
    "os.link": (0, 1),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
    "shutil.rmtree": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _install_write_tracker(watch: str, log: list[tuple[str, str]]) -> None:
    """Append ``(event, path relative to watch)`` to ``log`` for every write under ``watch``."""
    roots = {os.path.abspath(watch), os.path.realpath(watch)}  # as given, and with links resolved
    busy = [False]  # the hook must not recurse into itself

    def under(p: Any) -> str | None:
        if isinstance(p, int) or p is None:  # file descriptors: opened (and recorded) by path before
            return None
        try:
            p = os.path.abspath(os.fsdecode(p))
        except TypeError:
            return None
        for root in roots:
            if p == root or p.startswith(root + os.sep):
                return os.path.relpath(p, root)
        return None

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if busy[0]:
            return
        if event == "open":  # arguments: path, mode (str or None), flags (os.O_* or 0)
            _, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            idx: tuple[int, ...] = (0,) if writes else ()
        else:
            idx = _PATH_EVENTS.get(event, ())
        if not idx:
            return
        busy[0] = True
        try:
            for i in idx:
                if i < len(args) and (rel := under(args[i])) is not None:
                    log.append((event, rel))
        finally:
            busy[0] = False

    sys.addaudithook(hook)


def _main() -> int:
    report_dir = os.environ["TINCT_TEST_REPORT_DIR"]
    writes: list[tuple[str, str]] = []
    _install_write_tracker(os.environ["TINCT_TEST_WATCH_DIR"], writes)

    import hashlib
    import importlib
    import json

    import lightning as L

    from tinct.cli.main import main

    # the module, not the function of the same name that tinct.engine re-exports
    train_module = importlib.import_module("tinct.engine.train")

    def floats(metrics: dict[str, Any]) -> dict[str, float]:
        return {k: float(v) for k, v in sorted(metrics.items())}

    class Reporter(L.Callback):
        """What this rank computed: per-epoch metrics, final parameters, test metrics."""

        def __init__(self) -> None:
            self.report: dict[str, Any] = {"epochs": []}
            self.trainer: L.Trainer | None = None

        def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.trainer = trainer
            self.report.update(
                global_rank=trainer.global_rank,
                world_size=trainer.world_size,
                strategy=type(trainer.strategy).__name__,
                cluster_environment=type(trainer.strategy.cluster_environment).__name__,
                backend=getattr(trainer.strategy, "_process_group_backend", None),
                pid=os.getpid(),
            )

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.report["epochs"].append({"epoch": trainer.current_epoch, **floats(trainer.callback_metrics)})

        def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.report["state_sha256"] = {
                k: hashlib.sha256(v.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
                for k, v in pl_module.state_dict().items()
            }
            self.report["param_sum"] = float(sum(p.detach().double().sum() for p in pl_module.parameters()))
            self.report["fit_metrics"] = floats(trainer.callback_metrics)

        def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.report["test_metrics"] = floats(trainer.callback_metrics)

    reporter = Reporter()
    real_train = train_module.train

    def train_with_reporter(*args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), reporter]
        metrics = real_train(*args, **kwargs)
        reporter.report["returned"] = metrics
        return metrics

    train_module.train = train_with_reporter  # _cmd_train imports it when it runs
    rc = main(sys.argv[1:])

    report = reporter.report
    report.update(rc=rc, writes=writes, tinct_run_dir_env=os.environ.get("TINCT_RUN_DIR"))
    rank = report.get("global_rank", "unknown")
    with open(os.path.join(report_dir, f"rank{rank}.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)

    # Lightning's launcher does not wait for the ranks it started: wait here, so that the test sees
    # their reports (and their exit status) once this process has exited.
    procs = getattr(getattr(reporter.trainer, "strategy", None), "launcher", None)
    for proc in getattr(procs, "procs", []):
        if proc.wait(timeout=120) != 0:
            print(f"ddp_worker: rank process {proc.pid} exited with {proc.returncode}", file=sys.stderr)
            rc = rc or 1
    return rc


if __name__ == "__main__":
    sys.exit(_main())
