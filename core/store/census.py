"""What the store holds right now, summed for /metrics: a few grouped reads, cheap enough to
run on every scrape (the status index answers the counts; running experiments are few)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from core.store.clock import as_utc
from core.store.models import Status
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
