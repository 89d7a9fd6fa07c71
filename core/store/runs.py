"""The run lifecycle as workers and the reaper drive it: claim, heartbeat, finish, fail,
requeue. Each is ONE conditional UPDATE naming the state (and, for a worker, the attempt) it
expects, so two API processes, the reaper and any number of workers can race on the same
experiment and exactly one of them wins; a superseded attempt's writes change nothing.
Functions take a Session and commit nothing.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from core.store import wake
from core.store.artifacts import save_predictions
from core.store.clock import utcnow
from core.store.models import TERMINAL, Experiment, Status, sortable_metric_columns
from core.store.series import pack_series
from core.store.tables import EXPERIMENTS, rowcount

_C = EXPERIMENTS.c
_NOT_TERMINAL = (Status.queued.value, Status.running.value)


def claim(session: Session, experiment_id: str, *, worker: str, stale_after_s: float) -> int | None:
    """Take the experiment for one run attempt: a queued one (not cancelled), or a running one
    whose worker went silent. One UPDATE, so of two racing deliveries exactly one gets it.
    Returns the new attempt number, or None when there is nothing to run."""
    now = utcnow()
    stale = _stale_condition(now - timedelta(seconds=stale_after_s))
    claimable = or_(
        and_(_C.status == Status.queued.value, _C.cancel_requested.is_(False)),
        and_(_C.status == Status.running.value, stale),
    )
    attempt = session.execute(
        update(EXPERIMENTS)
        .where(_C.id == experiment_id, claimable)
        .values(
            status=Status.running.value,
            attempt=_C.attempt + 1,
            started_at=func.coalesce(_C.started_at, literal(now, _C.started_at.type)),
            heartbeat_at=now,
            worker=worker,
        )
        .returning(_C.attempt)
    ).scalar_one_or_none()
    return None if attempt is None else int(attempt)


def heartbeat(
    session: Session,
    experiment_id: str,
    attempt: int,
    *,
    step: int,
    total_steps: int,
    device: str | None = None,
) -> tuple[bool, bool]:
    """Record progress for a live attempt. Returns (still_owner, cancel_requested); a worker
    that is no longer the owner must stop and write nothing more."""
    values: dict[str, Any] = {"step": step, "total_steps": total_steps, "heartbeat_at": utcnow()}
    if device is not None:
        values["device"] = device
    cancel = session.execute(
        update(EXPERIMENTS)
        .where(_owned(experiment_id, attempt))
        .values(**values)
        .returning(_C.cancel_requested)
    ).scalar_one_or_none()
    if cancel is not None:
        return True, bool(cancel)
    flag = session.execute(
        select(_C.cancel_requested).where(_C.id == experiment_id)
    ).scalar_one_or_none()
    return False, bool(flag)


def finish(
    session: Session,
    experiment_id: str,
    attempt: int,
    *,
    status: Status,
    metrics: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
    outputs: Any | None = None,
    labels: Any | None = None,
    predicted: Any | None = None,
    error: str | None = None,
    step: int | None = None,
) -> bool:
    """End the attempt's run with `status`: pack the loss series into one row, store the
    per-record outputs (when given) and the outcome. False when the attempt isn't current."""
    if status not in TERMINAL:
        raise ValueError(f"finish needs a terminal status, not {status!r}")
    now = utcnow()
    values: dict[str, Any] = {
        "status": status.value,
        "finished_at": now,
        "heartbeat_at": now,
        "metrics": json_safe(metrics),
        "fingerprint": json_safe(fingerprint),
        "error": error,
        # Copies the listing sorts by (core/store/models.py).
        **sortable_metric_columns(metrics),
    }
    if step is not None:
        values["step"] = step
    # The UPDATE also holds the row's write lock until commit, so no late append of this
    # attempt can slip in between packing the series and the commit.
    done = session.execute(
        update(EXPERIMENTS).where(_owned(experiment_id, attempt)).values(**values)
    )
    if rowcount(done) != 1:
        return False
    wake.announce(session)  # a sweep's driver starts the next trial at once
    pack_series(session, experiment_id)
    if outputs is not None and labels is not None and predicted is not None:
        save_predictions(session, experiment_id, outputs, labels, predicted)
    return True


def fail(session: Session, experiment_id: str, error: str) -> bool:
    """Mark any unfinished experiment failed, whoever runs it (reaper, error paths)."""
    now = utcnow()
    to_failed = (
        update(EXPERIMENTS)
        .where(_C.id == experiment_id, _C.status.in_(_NOT_TERMINAL))
        .values(status=Status.failed.value, error=error, finished_at=now)
    )
    return rowcount(session.execute(to_failed)) == 1


# The reaper's side -----------------------------------------------------------------------


def stale_running(session: Session, *, stale_after_s: float) -> list[Experiment]:
    """Running experiments whose worker has been silent longer than `stale_after_s`."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    query = (
        select(Experiment)
        .where(_C.status == Status.running.value, _stale_condition(cutoff))
        .order_by(_C.heartbeat_at)
    )
    return list(session.execute(query).scalars())


def requeue(
    session: Session,
    experiment_id: str,
    *,
    expected_attempt: int,
    stale_after_s: float | None = None,
    handed_back: bool = False,
) -> bool:
    """Put a running experiment back to `queued`, keeping its attempt count and checkpoint:
    its worker was lost, or (`handed_back`) gave it back on shutdown, which then doesn't count
    towards the attempts it may lose. Refused (False) if another attempt took over, if a cancel
    was asked for (finish it as cancelled instead), or, given `stale_after_s`, if it beat
    again since."""
    conditions = [
        _C.id == experiment_id,
        _C.status == Status.running.value,
        _C.attempt == expected_attempt,
        _C.cancel_requested.is_(False),
    ]
    if stale_after_s is not None:
        conditions.append(_stale_condition(utcnow() - timedelta(seconds=stale_after_s)))
    # dispatched_at cleared in the same UPDATE: the requeued run needs a new broker message.
    to_queued = (
        update(EXPERIMENTS)
        .where(*conditions)
        .values(
            status=Status.queued.value,
            dispatched_at=None,
            handbacks=_C.handbacks + int(handed_back),
        )
    )
    return rowcount(session.execute(to_queued)) == 1


# Broker messages ---------------------------------------------------------------------------


def mark_dispatched(session: Session, experiment_id: str) -> None:
    """Record that the run message reached the broker."""
    session.execute(
        update(EXPERIMENTS).where(_C.id == experiment_id).values(dispatched_at=utcnow())
    )


def undispatched(session: Session, *, older_than_s: float, limit: int = 500) -> list[str]:
    """Queued experiments whose message never reached the broker (oldest first)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    rows = session.execute(
        select(_C.id)
        .where(_C.status == Status.queued.value, _C.dispatched_at.is_(None))
        .where(_C.created_at < cutoff)
        .order_by(_C.created_at)
        .limit(limit)
    ).scalars()
    return [str(row) for row in rows]


def waiting_since(session: Session, *, sent_before_s: float, limit: int = 1000) -> list[str]:
    """Queued experiments whose last message went to the broker more than `sent_before_s`
    ago (oldest first): a long queue, or a message the broker lost. The reaper asks the
    broker which of them it still holds."""
    cutoff = utcnow() - timedelta(seconds=sent_before_s)
    rows = session.execute(
        select(_C.id)
        .where(_C.status == Status.queued.value, _C.cancel_requested.is_(False))
        .where(_C.dispatched_at.is_not(None), _C.dispatched_at < cutoff)
        .order_by(_C.dispatched_at)
        .limit(limit)
    ).scalars()
    return [str(row) for row in rows]


def attempt_held_by(session: Session, experiment_id: str, worker: str) -> int | None:
    """The running attempt if `worker` holds it: a claim whose commit went through although
    its answer was lost with the connection is recognised, not taken as someone else's."""
    row = session.execute(
        select(_C.attempt).where(
            _C.id == experiment_id, _C.status == Status.running.value, _C.worker == worker
        )
    ).scalar_one_or_none()
    return None if row is None else int(row)


def claimed_by_since(session: Session, worker: str, since: datetime) -> tuple[str, int] | None:
    """The run `worker` claimed at or after `since` and still holds, if any: for a claim that
    picked its run itself (core/store/scheduling.py) and lost the commit's answer."""
    row = session.execute(
        select(_C.id, _C.attempt)
        .where(_C.status == Status.running.value, _C.worker == worker, _C.heartbeat_at >= since)
        .order_by(_C.heartbeat_at.desc())
        .limit(1)
    ).first()
    return None if row is None else (str(row[0]), int(row[1]))


def _owned(experiment_id: str, attempt: int) -> ColumnElement[bool]:
    return and_(_C.id == experiment_id, _C.attempt == attempt, _C.status == Status.running.value)


def _stale_condition(cutoff: datetime) -> ColumnElement[bool]:
    return or_(_C.heartbeat_at.is_(None), _C.heartbeat_at < cutoff)


def json_safe(value: Any) -> Any:
    """JSON columns take no NaN or infinity (PostgreSQL refuses them): those become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    return value
