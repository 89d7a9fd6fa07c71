"""Experiments in the store: create (with idempotency keys), read, list, cancel.

The listing itself (filters, sorts, keyset pages) is core/store/listing.py, named here too.

Functions take a Session and commit nothing: the caller's `session_scope` (or the request's
session) commits. The run lifecycle that workers and the reaper drive lives in
core/store/runs.py; what runs produce (loss series, predictions, checkpoints) in
core/store/series.py and core/store/artifacts.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import load_only
from sqlmodel import Session, col

from core.cost import estimate
from core.kinds.gan_spec import GanSpec
from core.spec import ExperimentSpec, group_key
from core.store.clock import utcnow
from core.store.errors import AlreadyFinished, ExperimentNotFound, IdempotencyConflict
from core.store.listing import DEFAULT_SORT as DEFAULT_SORT
from core.store.listing import SORT_KEYS as SORT_KEYS
from core.store.listing import SORTS as SORTS
from core.store.listing import ExperimentFilters as ExperimentFilters
from core.store.listing import list_experiments as list_experiments
from core.store.models import TERMINAL, Experiment, Status
from core.store.tables import EXPERIMENTS, rowcount

_C = EXPERIMENTS.c
_NAMES: tuple[Any, ...] = (
    col(Experiment.id),
    col(Experiment.name),
    col(Experiment.preset),
    col(Experiment.status),
)


# Creating and reading ---------------------------------------------------------------------


def create_experiment(
    session: Session,
    spec: ExperimentSpec | GanSpec,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    preset: str | None = None,
    idempotency_key: str | None = None,
    owner: str | None = None,
    key_id: str | None = None,
    cost: float = 0.0,
    stored_bytes: int | None = None,
) -> tuple[Experiment, bool]:
    """Add a queued experiment; returns (experiment, created). A reused idempotency key with
    the same request gives the existing experiment; with a different one, IdempotencyConflict.
    On a concurrent insert of the same key this rolls the session back (the other insert won).
    Keys are scoped to the owner: two accounts can't see or collide with each other's keys.
    `stored_bytes` is what the run may keep in the store (priced from the spec when not given:
    core/cost.py), which the owner's storage quota counts while the run exists."""
    stored_key = scoped_key(idempotency_key, owner)
    experiment = Experiment(
        name=name,
        tags=list(tags or []),
        preset=preset,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec.fingerprint(),
        idempotency_key=stored_key,
        created_at=utcnow(),
        dataset=spec.dataset,
        planned_steps=spec.total_steps,
        # A GAN never trains fused: no group key, which nothing else matches.
        group_key=group_key(spec) if isinstance(spec, ExperimentSpec) else None,
        owner=owner,
        key_id=key_id,
        cost=cost,
        stored_bytes=estimate(spec).stored_bytes if stored_bytes is None else stored_bytes,
    )
    if idempotency_key is not None and stored_key is not None:
        existing = _by_idempotency_key(session, stored_key)
        if existing is not None:
            return _same_request(existing, experiment, idempotency_key), False
    session.add(experiment)
    try:
        session.flush()
    except IntegrityError:
        if idempotency_key is None or stored_key is None:
            raise
        # Two retries raced and the other one committed first: answer with its experiment.
        session.rollback()
        existing = _by_idempotency_key(session, stored_key)
        if existing is None:
            raise
        return _same_request(existing, experiment, idempotency_key), False
    return experiment, True


def scoped_key(key: str | None, owner: str | None) -> str | None:
    """The stored form of an Idempotency-Key: as given when there are no accounts, else a
    digest of (owner, key), which fits the column whatever their lengths."""
    if key is None or owner is None:
        return key
    return "o:" + hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()[:48]


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


# Every column but the spec (which never changes): compared whole, a row's version.
_VERSION = select(*(c for c in EXPERIMENTS.c if c.name != "spec")).where(
    _C.id == bindparam("experiment_id")
)


def state_version(engine: Engine, experiment_id: str) -> tuple[object, ...] | None:
    """The experiment's row but its spec, as one tuple (None: no such experiment): equal
    while nothing about the experiment has changed, so an answer built from it can be reused.
    One Core read on a connection of its own, no ORM."""
    with engine.connect() as connection:
        row = connection.execute(_VERSION, {"experiment_id": experiment_id}).first()
    return None if row is None else tuple(row)


def get_status(session: Session, experiment_id: str) -> str | None:
    """Just the status (one column): for reads that need nothing else of the row."""
    status = session.execute(select(_C.status).where(_C.id == experiment_id)).scalar_one_or_none()
    return None if status is None else str(status)


# Cancelling ------------------------------------------------------------------


def request_cancel(session: Session, experiment_id: str) -> Experiment:
    """A queued experiment is cancelled at once; a running one is flagged and its worker stops
    at its next flush; a finished one raises AlreadyFinished, an unknown id ExperimentNotFound."""
    now = utcnow()
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


# Ids per IN (...) list: well under SQLite's bound on a statement's parameters.
_ID_BATCH = 500


def metrics_of(session: Session, experiment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored metrics of these experiments (those that have some), without the rest of
    their rows: reads that only need the figures skip the specs' JSON."""
    return _json_of(session, _C.metrics, experiment_ids)


def figure_of(session: Session, experiment_ids: Sequence[str], key: str) -> dict[str, float]:
    """One numeric figure of these experiments' metrics (those that have it), extracted by
    the database (JSON_EXTRACT, ->>): a run's metrics carry its confusion matrix and
    per-class figures, which a read of one figure need not decode."""
    found: dict[str, float] = {}
    figure = _C.metrics[key].as_float()
    ordered = sorted(set(experiment_ids))
    for start in range(0, len(ordered), _ID_BATCH):
        chunk = ordered[start : start + _ID_BATCH]
        rows = session.execute(select(_C.id, figure).where(_C.id.in_(chunk)))
        found.update({str(i): float(value) for i, value in rows if value is not None})
    return found


def specs_of(session: Session, experiment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored specs of these experiments, as stored (not validated)."""
    return _json_of(session, _C.spec, experiment_ids)


def _json_of(
    session: Session, column: ColumnElement[Any], experiment_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    ordered = sorted(set(experiment_ids))
    for start in range(0, len(ordered), _ID_BATCH):
        chunk = ordered[start : start + _ID_BATCH]
        rows = session.execute(select(_C.id, column).where(_C.id.in_(chunk)))
        found.update({str(i): value for i, value in rows if value is not None})
    return found


def expected_total_steps(experiment: Experiment) -> int:
    """The run's length: what its worker reported, or before that what its spec asks for
    (the `planned_steps` column, stored at submit: no stored spec is validated again here)."""
    if experiment.total_steps:
        return max(experiment.total_steps, experiment.step)
    return experiment.planned_steps or experiment.step


def require_experiments(
    session: Session, experiment_ids: Sequence[str], *, names_only: bool = False
) -> list[Experiment]:
    """The experiments in the order asked, read in one query; ExperimentNotFound naming the
    first of them (in that order) that does not exist. With `names_only`, only what names a
    run (id, name, preset, status) is read, the rest on first use: side-by-side reads of 20
    runs need no spec or metrics JSON."""
    query = select(Experiment).where(_C.id.in_(list(experiment_ids)))
    if names_only:
        query = query.options(load_only(*_NAMES))
    rows = session.execute(query)
    found = {e.id: e for e in rows.scalars()}
    for experiment_id in experiment_ids:
        if experiment_id not in found:
            raise ExperimentNotFound(experiment_id)
    return [found[i] for i in experiment_ids]


def require_experiment(session: Session, experiment_id: str) -> Experiment:
    experiment = get_experiment(session, experiment_id)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    return experiment
