"""The experiment store: every read and write of an experiment's lifecycle, shared by the API,
the reaper and the workers. Functions take a Session and commit nothing (`session_scope`
commits); the results side (loss series, predictions, checkpoints) lives in api/db/results.py
and is re-exported here so callers need one module.

The run lifecycle that workers and the reaper drive (claim, heartbeat, finish, fail,
requeue) lives in api/db/runs.py and is re-exported here too. State changes are conditional
UPDATEs naming the state they expect, so concurrent callers can't both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, literal, or_, select, update
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from api.db.cursor import decode_cursor, encode_cursor
from api.db.models import TERMINAL, Experiment, Status
from api.db.results import (
    FinishedSeries,
    PredictionsBlob,
    append_loss,
    cached_finished_series,
    get_checkpoint,
    read_finished_series,
    read_predictions,
    read_series,
    save_checkpoint,
    truncate_loss_after,
)
from api.db.runs import claim, fail, finish, heartbeat, requeue, stale_running
from api.db.session import db_now
from api.db.tables import EXPERIMENTS, rowcount
from worker.spec import ExperimentSpec

__all__ = [
    "AlreadyFinished",
    "ExperimentNotFound",
    "FinishedSeries",
    "IdempotencyConflict",
    "InvalidCursor",
    "PredictionsBlob",
    "StoreError",
    "append_loss",
    "cached_finished_series",
    "claim",
    "create_experiment",
    "fail",
    "finish",
    "get_checkpoint",
    "get_experiment",
    "get_status",
    "heartbeat",
    "list_experiments",
    "queued_older_than",
    "read_finished_series",
    "read_predictions",
    "read_series",
    "request_cancel",
    "requeue",
    "save_checkpoint",
    "stale_running",
    "truncate_loss_after",
]

_C = EXPERIMENTS.c
_NOT_TERMINAL = (Status.queued.value, Status.running.value)


class StoreError(Exception):
    """Base of the store's refusals; the API maps each to an HTTP status."""


class ExperimentNotFound(StoreError):
    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"no experiment with id {experiment_id!r}")
        self.experiment_id = experiment_id


class AlreadyFinished(StoreError):
    def __init__(self, experiment: Experiment) -> None:
        super().__init__(f"experiment {experiment.id} has already finished ({experiment.status})")
        self.experiment = experiment


class IdempotencyConflict(StoreError):
    def __init__(self, key: str, existing_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for experiment {existing_id} with a "
            "different request body; use a new key for a different experiment"
        )
        self.key = key
        self.existing_id = existing_id


class InvalidCursor(StoreError):
    def __init__(self) -> None:
        super().__init__("cursor is not one this server handed out")


# Creating and reading ---------------------------------------------------------------------


def create_experiment(
    session: Session,
    spec: ExperimentSpec,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    preset: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Experiment, bool]:
    """Add a queued experiment; returns (experiment, created). A reused idempotency key with
    the same request gives the existing experiment; with a different one, IdempotencyConflict.
    On a concurrent insert of the same key this rolls the session back (the other insert won)."""
    experiment = Experiment(
        name=name,
        tags=list(tags or []),
        preset=preset,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec.fingerprint(),
        idempotency_key=idempotency_key,
        created_at=db_now(),
    )
    if idempotency_key is not None:
        existing = _by_idempotency_key(session, idempotency_key)
        if existing is not None:
            return _same_request(existing, experiment, idempotency_key), False
    session.add(experiment)
    try:
        session.flush()
    except IntegrityError:
        if idempotency_key is None:
            raise
        # Two retries raced and the other one committed first: answer with its experiment.
        session.rollback()
        existing = _by_idempotency_key(session, idempotency_key)
        if existing is None:
            raise
        return _same_request(existing, experiment, idempotency_key), False
    return experiment, True


def _by_idempotency_key(session: Session, key: str) -> Experiment | None:
    query = select(Experiment).where(_C.idempotency_key == key)
    found: Experiment | None = session.execute(query).scalars().first()
    return found


def _same_request(existing: Experiment, new: Experiment, key: str) -> Experiment:
    if (existing.spec_hash, existing.name, list(existing.tags), existing.preset) != (
        new.spec_hash,
        new.name,
        list(new.tags),
        new.preset,
    ):
        raise IdempotencyConflict(key, existing.id)
    return existing


def get_experiment(session: Session, experiment_id: str) -> Experiment | None:
    return session.get(Experiment, experiment_id, populate_existing=True)


def get_status(session: Session, experiment_id: str) -> str | None:
    """Just the status (one column): for reads that need nothing else of the row."""
    status = session.execute(select(_C.status).where(_C.id == experiment_id)).scalar_one_or_none()
    return None if status is None else str(status)


def list_experiments(
    session: Session,
    *,
    status: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Experiment], str | None]:
    """Newest first. Keyset paging on (created_at, id): the opaque cursor names the last item
    of a page, so pages stay stable while new experiments arrive."""
    query = select(Experiment)
    if status is not None:
        query = query.where(_C.status == status)
    if tag is not None:
        query = query.where(_has_tag(session, tag))
    if cursor is not None:
        created, last_id = _decode_cursor(cursor)
        query = query.where(
            or_(_C.created_at < created, and_(_C.created_at == created, _C.id < last_id))
        )
    query = query.order_by(_C.created_at.desc(), _C.id.desc()).limit(limit + 1)
    rows = list(session.execute(query).scalars())
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(page[-1].created_at, page[-1].id)


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return sa_cast(_C.tags, JSONB).contains([tag])
    members = func.json_each(_C.tags).table_valued("value")
    return exists(select(literal(1)).select_from(members).where(members.c.value == tag))


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        when, last_id = decode_cursor(cursor)
    except ValueError:
        raise InvalidCursor() from None
    if when.tzinfo is None:
        raise InvalidCursor()
    return when, last_id


# Cancelling and waiting ------------------------------------------------------------------


def request_cancel(session: Session, experiment_id: str) -> Experiment:
    """A queued experiment is cancelled at once; a running one is flagged and its worker stops
    at its next flush; a finished one raises AlreadyFinished, an unknown id ExperimentNotFound."""
    now = db_now()
    cancel_queued = (
        update(EXPERIMENTS)
        .where(_C.id == experiment_id, _C.status == Status.queued.value)
        .values(status=Status.cancelled.value, cancel_requested=True, finished_at=now)
    )
    cancelled_now = rowcount(session.execute(cancel_queued)) == 1
    if not cancelled_now:
        session.execute(
            update(EXPERIMENTS)
            .where(_C.id == experiment_id, _C.status == Status.running.value)
            .values(cancel_requested=True)
        )
    experiment = get_experiment(session, experiment_id)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    if not cancelled_now and experiment.status in TERMINAL:
        raise AlreadyFinished(experiment)
    return experiment


def queued_older_than(session: Session, seconds: float) -> list[Experiment]:
    """Queued experiments created more than `seconds` ago, oldest first."""
    cutoff = db_now() - timedelta(seconds=seconds)
    query = (
        select(Experiment)
        .where(_C.status == Status.queued.value, _C.created_at < cutoff)
        .order_by(_C.created_at)
    )
    return list(session.execute(query).scalars())
