"""Reads and writes of sweeps (tables in core/store/sweep_tables.py). Nothing is committed here.

The driver's lease: a sweep is driven by one API process at a time. `take_lease` is one
conditional UPDATE that succeeds when the lease is free, expired, or already the caller's, so
two processes looking at the same sweep at the same moment cannot both drive it. `keep_lease`
fences each of the driver's commits: it renews the lease only while the caller is still its
owner, holding the sweep's row to the commit, so a driver that another has taken the sweep
from (it was paused past its lease) commits nothing more.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, case, delete, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.store.clock import utcnow
from core.store.cursor import decode_cursor, encode_cursor
from core.store.errors import IdempotencyConflict, StoreError
from core.store.experiments import scoped_key
from core.store.models import TERMINAL_VALUES, Experiment
from core.store.sweep_tables import ExperimentRung, Sweep, SweepRun, SweepTrial
from core.store.tables import rowcount

ACTIVE = ("running", "cancelling")


class SweepNotFound(StoreError):
    def __init__(self, sweep_id: str) -> None:
        super().__init__(f"sweep {sweep_id} not found")
        self.sweep_id = sweep_id


def require_sweep(session: Session, sweep_id: str) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFound(sweep_id)
    return sweep


def sweep_by_idempotency_key(
    session: Session, key: str, owner: str | None, request: dict[str, Any]
) -> Sweep | None:
    """The sweep an earlier POST with this Idempotency-Key (of this owner) made, or None;
    IdempotencyConflict when that POST asked for something else."""
    stored = scoped_key(key, owner)
    found = session.exec(select(Sweep).where(col(Sweep.idempotency_key) == stored)).first()
    if found is not None and found.request != request:
        raise IdempotencyConflict(key, found.id, "sweep")
    return found


def list_sweeps(
    session: Session,
    *,
    limit: int = 20,
    cursor: str | None = None,
    status: str | None = None,
    owner: str | None = None,
) -> tuple[list[Sweep], str | None]:
    """Newest first, keyset paging on (created_at, id) as for experiments."""
    query = select(Sweep)
    if status is not None:
        query = query.where(col(Sweep.status) == status)
    if owner is not None:
        query = query.where(col(Sweep.owner) == owner)
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                col(Sweep.created_at) < created,
                and_(col(Sweep.created_at) == created, col(Sweep.id) < last_id),
            )
        )
    query = query.order_by(col(Sweep.created_at).desc(), col(Sweep.id).desc())
    rows = list(session.exec(query.limit(limit + 1)).all())
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, encode_cursor(page[-1].created_at, page[-1].id)


def active_sweep_ids(session: Session) -> list[str]:
    query = select(Sweep.id).where(col(Sweep.status).in_(ACTIVE)).order_by(col(Sweep.created_at))
    return [str(i) for i in session.exec(query).all()]


def activity(session: Session) -> tuple[int, ...]:
    """A cheap signal of what a driver pass acts on, over the active sweeps: how many there
    are and are cancelling, the rung figures their runs stored, and their runs that ended.
    The same answer twice: nothing new for the driver since."""
    active = select(Sweep.id).where(col(Sweep.status).in_(ACTIVE))
    sweeps = session.exec(
        select(func.count(), func.count(case((col(Sweep.status) == "cancelling", 1))))
        .select_from(Sweep)
        .where(col(Sweep.status).in_(ACTIVE))
    ).one()
    rungs = session.exec(
        select(func.count())
        .select_from(ExperimentRung)
        .join(SweepRun, col(SweepRun.experiment_id) == col(ExperimentRung.experiment_id))
        .where(col(SweepRun.sweep_id).in_(active))
    ).one()
    ended = session.exec(
        select(func.count())
        .select_from(SweepRun)
        .join(Experiment, col(Experiment.id) == col(SweepRun.experiment_id))
        .where(col(SweepRun.sweep_id).in_(active), col(Experiment.status).in_(TERMINAL_VALUES))
    ).one()
    return int(sweeps[0]), int(sweeps[1]), int(rungs), int(ended)


def take_lease(session: Session, sweep_id: str, owner: str, seconds: float) -> bool:
    now = utcnow()
    taken = session.execute(
        update(Sweep)
        .where(
            col(Sweep.id) == sweep_id,
            col(Sweep.status).in_(ACTIVE),
            or_(
                col(Sweep.lease_owner).is_(None),
                col(Sweep.lease_owner) == owner,
                col(Sweep.lease_until) < now,
            ),
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
    )
    return rowcount(taken) == 1


def keep_lease(session: Session, sweep_id: str, owner: str, seconds: float) -> bool:
    """Renew the lease if `owner` still holds it, run out or not (no one has taken it since:
    only a take changes the owner); False when another process has taken the sweep over."""
    kept = session.execute(
        update(Sweep)
        .where(col(Sweep.id) == sweep_id, col(Sweep.lease_owner) == owner)
        .values(lease_until=utcnow() + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    return rowcount(kept) == 1


def lease_owner(session: Session, sweep_id: str) -> str | None:
    query = select(Sweep.lease_owner).where(col(Sweep.id) == sweep_id)
    found: str | None = session.exec(query).first()
    return found


def trials(session: Session, sweep_id: str) -> list[SweepTrial]:
    query = select(SweepTrial).where(col(SweepTrial.sweep_id) == sweep_id)
    return list(session.exec(query.order_by(col(SweepTrial.number))).all())


def runs_with_experiments(
    session: Session, sweep_id: str
) -> dict[int, list[tuple[SweepRun, Experiment]]]:
    """Each trial's runs with their experiments, in seed order."""
    rows = session.exec(
        select(SweepRun, Experiment)
        .join(Experiment, col(Experiment.id) == col(SweepRun.experiment_id))
        .where(col(SweepRun.sweep_id) == sweep_id)
        .order_by(col(SweepRun.number), col(SweepRun.seed))
    ).all()
    found: dict[int, list[tuple[SweepRun, Experiment]]] = {}
    for run, experiment in rows:
        found.setdefault(run.number, []).append((run, experiment))
    return found


class RunRow(NamedTuple):
    """What the sweep driver reads of a trial's run: not the whole experiment row (its spec,
    metrics and the rest), only what its pass decides on."""

    id: str
    status: str
    error: str | None
    objective: float | None  # the objective in its metrics (validation_accuracy or _loss)


class RunKey(NamedTuple):
    """A trial's run as the driver reads it: a plain tuple, not a SweepRun model (building
    one validates it, a pass's largest cost after Optuna's asks)."""

    sweep_id: str
    number: int
    seed: int
    experiment_id: str


def run_rows(
    session: Session, sweep_id: str, objective: str
) -> dict[int, list[tuple[RunKey, RunRow]]]:
    """Each trial's runs in seed order, as runs_with_experiments, with narrow columns."""
    metric = col(Experiment.metrics)[objective].as_float()
    rows = session.execute(
        sa_select(
            col(SweepRun.number),
            col(SweepRun.seed),
            col(Experiment.id),
            col(Experiment.status),
            col(Experiment.error),
            metric,
        )
        .join(Experiment, col(Experiment.id) == col(SweepRun.experiment_id))
        .where(col(SweepRun.sweep_id) == sweep_id)
        .order_by(col(SweepRun.number), col(SweepRun.seed))
    ).all()
    found: dict[int, list[tuple[RunKey, RunRow]]] = {}
    for number, seed, eid, status, error, value in rows:
        run = RunKey(sweep_id, number, seed, eid)
        found.setdefault(number, []).append((run, RunRow(eid, status, error, value)))
    return found


def add_trial(
    session: Session,
    sweep: Sweep,
    number: int,
    params: dict[str, Any],
    optuna_params: dict[str, Any],
    system_attrs: dict[str, Any],
    runs: list[tuple[int, str]],
) -> SweepTrial:
    trial = SweepTrial(
        sweep_id=sweep.id,
        number=number,
        params=params,
        optuna_params=optuna_params,
        system_attrs=system_attrs,
        decisions=[],
    )
    session.add(trial)
    session.flush()  # the (sweep, number) key: a number asked twice fails here
    for seed, experiment_id in runs:
        session.add(
            SweepRun(sweep_id=sweep.id, number=number, seed=seed, experiment_id=experiment_id)
        )
    session.flush()
    return trial


def delete_sweep(session: Session, sweep_id: str) -> list[str]:
    """Remove the sweep and its trials; returns its experiments' ids (the caller removes the
    ended ones with core/store/retention.py)."""
    ids = [
        str(i)
        for i in session.exec(
            select(SweepRun.experiment_id).where(col(SweepRun.sweep_id) == sweep_id)
        ).all()
    ]
    session.execute(delete(SweepRun).where(col(SweepRun.sweep_id) == sweep_id))
    session.execute(delete(SweepTrial).where(col(SweepTrial.sweep_id) == sweep_id))
    session.execute(delete(Sweep).where(col(Sweep.id) == sweep_id))
    return ids


def finish(session: Session, sweep: Sweep, status: str, note: str | None = None) -> None:
    sweep.status = status
    sweep.finished_at = utcnow()
    # The lease stays with the driver that ended the sweep (no one can take an ended sweep's):
    # its commit is fenced by keep_lease as every other.
    if note is not None:
        sweep.note = note
    session.add(sweep)
