"""The Optuna side of a sweep: the study, planning and claiming trials, stale workers, the results table.

Every trial of a sweep (see :mod:`tinct.engine.sweep`) is an Optuna trial: queued as WAITING with its axis
labels as fixed parameters and its point's key, overrides and slug as attributes; taken by one worker
through the storage's atomic WAITING -> RUNNING transition; finished with its metric and metrics, or
failed with its error. Any SQLAlchemy URL works as storage; SQLite waits for its lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinct.core.exceptions import TinctError
from tinct.engine.sweep_spec import SweepSpec, TrialPoint

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = [
    "SweepStudy",
    "claim_trial",
    "default_storage",
    "enqueue_point",
    "fail_trials_of_worker",
    "latest_by_key",
    "open_study",
    "plan_trials",
    "recover_stale",
    "sweep_results",
    "waiting_trials",
]


# -- storage -------------------------------------------------------------------------------------------------


def default_storage(sweep_dir: str | os.PathLike[str]) -> str:
    return f"sqlite:///{(Path(sweep_dir) / 'sweep.db').resolve()}"


@dataclass
class SweepStudy:
    """The sweep's Optuna study and the storage behind it (claiming a trial is a storage operation)."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage


def open_study(spec: SweepSpec, storage: str) -> SweepStudy:
    """Create (or load) the sweep's Optuna study in ``storage`` (a SQLAlchemy URL)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite"):
        # Several local workers share one SQLite file: wait for its lock instead of failing at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    try:
        rdb = optuna.storages.RDBStorage(storage, **kwargs)
    except Exception as err:
        raise TinctError(f"cannot open the sweep storage {_safe_url(storage)}: {err}") from err
    _, direction = spec.metric_and_direction()
    study = optuna.create_study(study_name=spec.name, storage=rdb, direction=direction, load_if_exists=True)
    return SweepStudy(study, rdb)


def _safe_url(url: str) -> str:
    # user:password@host -> user:***@host
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, cred = head.partition("//")
    return f"{scheme}//{cred.split(':', 1)[0]}:***@{tail}"


def latest_by_key(sw: SweepStudy) -> dict[str, optuna.trial.FrozenTrial]:
    latest: dict[str, Any] = {}
    for t in sw.study.get_trials(deepcopy=False):
        key = t.user_attrs.get("key")
        if key is not None and (key not in latest or t.number > latest[key].number):
            latest[key] = t
    return latest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale(sw: SweepStudy, stale_after: float) -> int:
    """Mark RUNNING trials whose worker is gone as interrupted (they are queued again by :func:`_plan`)."""
    from optuna.trial import TrialState

    storage, n = sw.storage, 0
    host = socket.gethostname()
    for t in sw.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        ua = t.user_attrs
        dead = ua.get("host") == host and not _pid_alive(int(ua.get("pid", -1)))
        beat = float(ua.get("heartbeat", 0) or 0)
        stale = beat and time.time() - beat > stale_after
        if dead or stale:
            why = "its worker process is gone" if dead else f"no heartbeat for {time.time() - beat:.0f} s"
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            storage.set_trial_user_attr(t._trial_id, "error", f"interrupted: {why}")
            with contextlib.suppress(Exception):
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            n += 1
    return n


def enqueue_point(sw: SweepStudy, point: TrialPoint, extra: Mapping[str, Any] | None = None) -> None:
    import optuna

    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING,
        params=None,
        distributions=None,
        user_attrs={
            "key": point.key,
            "index": point.index,
            "slug": point.slug,
            "optional": point.optional,
            "overrides": json.dumps(point.overrides, default=str),
            **(extra or {}),
        },
        system_attrs={"fixed_params": point.params},
    )
    sw.study.add_trial(trial)


def plan_trials(sw: SweepStudy, points: Sequence[TrialPoint], retry_failed: bool) -> dict[str, int]:
    """Queue every point without a trial; queue again interrupted trials (and failed ones if asked)."""
    from optuna.trial import TrialState

    latest = latest_by_key(sw)
    counts = {"queued": 0, "requeued": 0, "failed": 0, "done": 0, "elsewhere": 0}
    for p in points:
        t = latest.get(p.key)
        if t is not None and t.state == TrialState.COMPLETE:
            counts["done"] += 1
        elif t is not None and t.state == TrialState.RUNNING:
            counts["elsewhere"] += 1
        if t is None:
            enqueue_point(sw, p)
            counts["queued"] += 1
        elif t.state == TrialState.FAIL:
            if t.user_attrs.get("interrupted") or retry_failed:
                enqueue_point(sw, p, {"retry_of": t.number})
                counts["requeued"] += 1
            else:
                counts["failed"] += 1
    return counts


def waiting_trials(sw: SweepStudy, keys: set[str], only_full: bool) -> list[optuna.trial.FrozenTrial]:
    """The waiting trials of the plan ``keys`` (``only_full``: not the optional ones), lowest number first."""
    from optuna.trial import TrialState

    waiting = sw.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return sorted(
        (
            t
            for t in waiting
            if t.user_attrs.get("key") in keys and not (only_full and t.user_attrs.get("optional"))
        ),
        key=lambda t: t.number,
    )


def claim_trial(sw: SweepStudy, keys: set[str], only_full: bool) -> int | None:
    """Atomically take a waiting trial of this plan (lowest number first); None when none is left."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    for t in waiting_trials(sw, keys, only_full):
        try:
            if sw.storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                return t._trial_id
        except UpdateFinishedTrialError:
            continue
    return None


def fail_trials_of_worker(sw: SweepStudy, pid: int, error: str) -> list[int]:
    """Record the running trials of the dead worker process ``pid`` (this host) as failed; their numbers."""
    from optuna.trial import TrialState

    failed = []
    for t in sw.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("pid") == pid and t.user_attrs.get("host") == socket.gethostname():
            sw.storage.set_trial_user_attr(t._trial_id, "error", error[-2000:])
            sw.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed.append(t.number)
    return failed


# -- results ---------------------------------------------------------------------------------------------------


def sweep_results(spec: SweepSpec, sw: SweepStudy) -> pd.DataFrame:
    """One row per trial of the plan (its latest attempt): axes, state, metric, metrics, time, error."""
    import pandas as pd

    latest = latest_by_key(sw)
    metric, _ = spec.metric_and_direction()
    rows = []
    for p in spec.points():
        t = latest.get(p.key)
        ua = t.user_attrs if t is not None else {}
        row: dict[str, Any] = {
            "number": t.number if t is not None else None,
            "state": t.state.name if t is not None else "NOT_QUEUED",
            "optional": p.optional,
            **{k: v for k, v in p.params.items()},
            metric: t.value if t is not None and t.value is not None else ua.get(metric),
        }
        row.update({k: v for k, v in ua.items() if "/" in k and k != metric})
        row.update(
            {
                "epochs": ua.get("epochs"),
                "time_s": ua.get("time_s"),
                "run_dir": ua.get("run_dir", str(Path("runs") / p.slug)),
                "error": ua.get("error") if t is not None and t.state.name == "FAIL" else None,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)
