"""What the store holds right now, summed for /metrics and for the dashboard's change feed: a
few grouped reads, cheap enough to run on every scrape or poll (the status index answers the
counts; running experiments are few)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlmodel import Session, col

from core.store.clock import as_utc
from core.store.models import TERMINAL_VALUES, Ablation, Status
from core.store.tables import EXPERIMENTS

_E = EXPERIMENTS.c


@dataclass(frozen=True)
class StatusTotal:
    experiments: int
    attempts: int  # runs started: every claim adds one


@dataclass(frozen=True)
class RunningProgress:
    experiment_id: str
    attempt: int
    worker: str | None
    step: int
    started_at: datetime | None
    heartbeat_at: datetime | None


def status_totals(session: Session) -> dict[str, StatusTotal]:
    """Experiments and runs started per status (every status present, zeros included)."""
    rows = session.execute(
        select(_E.status, func.count(), func.coalesce(func.sum(_E.attempt), 0)).group_by(_E.status)
    ).all()
    found = {status.value: StatusTotal(0, 0) for status in Status}
    for status, count, attempts in rows:
        found[str(status)] = StatusTotal(int(count), int(attempts))
    return found


def running_progress(session: Session) -> list[RunningProgress]:
    rows = session.execute(
        select(_E.id, _E.attempt, _E.worker, _E.step, _E.started_at, _E.heartbeat_at).where(
            _E.status == Status.running.value
        )
    ).all()
    return [
        RunningProgress(
            experiment_id=str(r.id),
            attempt=int(r.attempt),
            worker=r.worker,
            step=int(r.step),
            started_at=as_utc(r.started_at),
            heartbeat_at=as_utc(r.heartbeat_at),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class ActivityMarks:
    """What moves when anything the dashboard lists changes (api/services/changes.py digests
    it): `experiments` is (count, newest created, started, heartbeat and finished times, sums
    of steps and attempts, how many ended, run, were asked to cancel, to be deleted);
    `ablations` is (count, newest created)."""

    experiments: tuple[Any, ...]
    ablations: tuple[Any, ...]

    @property
    def experiment_count(self) -> int:
        return int(self.experiments[0])

    @property
    def ended(self) -> int:
        return int(self.experiments[7])

    @property
    def ablation_count(self) -> int:
        return int(self.ablations[0])


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def activity_marks(session: Session) -> ActivityMarks:
    """One aggregate read over the experiments and one over the ablations: creating,
    claiming, training (every heartbeat moves a step or a time), requeueing, cancelling,
    finishing and deleting each move one of their figures."""
    experiments = select(
        func.count(),
        func.max(_E.created_at),
        func.max(_E.started_at),
        func.max(_E.heartbeat_at),
        func.max(_E.finished_at),
        func.coalesce(func.sum(_E.step), 0),
        func.coalesce(func.sum(_E.attempt), 0),
        _count_where(_E.status.in_(list(TERMINAL_VALUES))),
        _count_where(_E.status == Status.running.value),
        _count_where(_E.cancel_requested),
        _count_where(_E.delete_requested),
    ).select_from(EXPERIMENTS)
    ablations = select(func.count(), func.max(col(Ablation.created_at)))
    return ActivityMarks(
        tuple(session.execute(experiments).one()), tuple(session.execute(ablations).one())
    )
