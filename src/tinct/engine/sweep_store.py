"""The Optuna side of a sweep: the study, planning and claiming trials, stale workers, the results table.

Every trial of a sweep (see :mod:`tinct.engine.sweep`) is an Optuna trial: queued as WAITING with its axis
labels as fixed parameters and its point's key, overrides and slug as attributes; taken by one worker
through the storage's atomic WAITING -> RUNNING transition; finished with its metric and metrics, or
failed with its error. Any SQLAlchemy URL works as storage; SQLite waits for its lock. Dead workers are
found by Optuna's heartbeat (the storage's ``heartbeat_interval`` and ``grace_period``) and their trials
queued again by its retry callback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import warnings
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
    "fail_stale",
    "fail_trials_of_worker",
    "latest_by_key",
    "open_study",
    "plan_trials",
    "sweep_results",
    "waiting_trials",
]

STALE_RETRIES = 3  # how often Optuna queues again a trial whose machine was lost, before it stays failed
_LOST = f"its worker stopped sending heartbeats (a lost machine; retried {STALE_RETRIES} times)"


# -- storage -------------------------------------------------------------------------------------------------


def default_storage(sweep_dir: str | os.PathLike[str]) -> str:
    return f"sqlite:///{(Path(sweep_dir) / 'sweep.db').resolve()}"


@dataclass
class SweepStudy:
    """The sweep's Optuna study and the storage behind it (claiming a trial is a storage operation)."""

    study: optuna.Study
    storage: optuna.storages.RDBStorage


def open_study(spec: SweepSpec, storage: str, stale_after: float = 600.0) -> SweepStudy:
    """Create (or load) the sweep's Optuna study in ``storage`` (a SQLAlchemy URL).

    The storage records a heartbeat of every running trial; one without a heartbeat for ``stale_after``
    seconds (Optuna's ``grace_period``) is failed by :func:`fail_stale` and queued again by Optuna's retry
    callback, :data:`STALE_RETRIES` times at most.
    """
    import optuna
    from optuna import storages

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite"):
        # Several local workers share one SQLite file: wait for its lock instead of failing at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    grace = max(1, math.ceil(stale_after))
    new = hasattr(storages, "RetryHeartbeatStaleTrialCallback")  # optuna >= 4.9 renamed the callback
    retry_kw = "heartbeat_stale_trial_callback" if new else "failed_trial_callback"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = storages.RetryHeartbeatStaleTrialCallback if new else storages.RetryFailedTrialCallback
            kwargs[retry_kw] = retry(STALE_RETRIES)
            rdb = storages.RDBStorage(
                storage, heartbeat_interval=max(1, min(30, grace // 4)), grace_period=grace, **kwargs
            )
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


def fail_stale(sw: SweepStudy, local: bool = False) -> int:
    """Fail the running trials whose worker is gone; how many.

    Optuna's :func:`optuna.storages.fail_stale_trials` fails those without a heartbeat for the storage's
    grace period (a lost machine) and its retry callback queues them again. ``local`` (a sweep starting)
    also fails at once those of a dead process on this host, as ``interrupted``: :func:`plan_trials` queues
    them again.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage, host = sw.storage, socket.gethostname()
    running = sw.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in running:
        if local and t.user_attrs.get("host") == host and not _pid_alive(int(t.user_attrs.get("pid", -1))):
            with contextlib.suppress(UpdateFinishedTrialError):
                storage.set_trial_user_attr(t._trial_id, "interrupted", True)
                storage.set_trial_user_attr(t._trial_id, "error", "interrupted: its worker process is gone")
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    _fail_lost(sw)
    ids = {t._trial_id for t in running}
    return sum(t._trial_id in ids for t in sw.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))


def _fail_lost(sw: SweepStudy) -> None:
    """Optuna's stale-trial check: fail (and, by the retry callback, queue again) the trials of lost machines."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(sw.study)


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
    """Atomically take a waiting trial of this plan (lowest number first); None when none is left.

    As :meth:`optuna.Study.optimize` before each trial, the stale trials of lost machines are failed and
    queued again first.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    _fail_lost(sw)
    for t in waiting_trials(sw, keys, only_full):
        try:
            if sw.storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                sw.storage.record_heartbeat(t._trial_id)  # Optuna never finds a trial stale without one
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
                "error": ua.get("error", _LOST) if t is not None and t.state.name == "FAIL" else None,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)
