"""What the store holds right now, summed for /metrics and for the dashboard's change feed:
reads whose cost does not grow with the store, cheap enough for every scrape or poll. Most
experiments have ended, and an ended row changes no more until it is deleted: the feed reads
only the queued and running ones (few) and counts, and /metrics keeps the ended ones' totals
until one ends or is deleted (status_totals). The counts are SQLite's own (it counts a table
without reading it) and, on PostgreSQL, the ones its writes keep (core/store/store_counts.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, case, func, select
from sqlmodel import Session, col

from core.store import store_counts
from core.store.clock import as_utc
from core.store.models import TERMINAL_VALUES, Ablation, DeletedTotal, Status
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
    """Experiments and runs started per status (every status present, zeros included).

    The queued and running ones are few and read each time (the census index, from their
    status). The ended ones are most of the store, and a row that has ended changes no more
    until it is deleted: their totals are kept per database in this process and read again
    only when an experiment has ended or been deleted since (`_ended_version`), which keeps
    a scrape of a quiet store of 100,000 experiments as cheap as one of 1,000."""
    rows = session.execute(_OPEN_TOTALS).all()
    found = {status.value: StatusTotal(0, 0) for status in Status}
    for status, count, attempts in rows:
        found[str(status)] = StatusTotal(int(count), int(attempts))
    return found | _ended_totals(session)


_OPEN = (Status.queued.value, Status.running.value)
_TOTALS = DeletedTotal.__table__  # type: ignore[attr-defined]
# Per database URL: (the version they were read at, the ended experiments' totals by status).
_ended: dict[str, tuple[tuple[int, int], dict[str, StatusTotal]]] = {}
_ended_lock = threading.Lock()


def _deleted_ended() -> ScalarSelect[Any]:
    """How many ended experiments were ever deleted: retention deletes only ended ones, and
    adds each to a runs_finished_<outcome> total in the same transaction."""
    return (
        select(func.coalesce(func.sum(_TOTALS.c.value), 0))
        .where(_TOTALS.c.name.like("runs_finished_%"))
        .scalar_subquery()
    )


def _totals_of(statuses: tuple[str, ...]) -> Select[Any]:
    return (
        select(_E.status, func.count(), func.coalesce(func.sum(_E.attempt), 0))
        .where(_E.status.in_(statuses))
        .group_by(_E.status)
    )


def _ended_version(session: Session) -> tuple[int, int]:
    """A pair that moves whenever an experiment has ended or an ended one has been deleted,
    and never comes back once it has moved; nothing else changes an ended row, so the ended
    totals are the same while it is. On PostgreSQL, the changes to the ended experiments its
    writes have counted (it only grows). On SQLite, which counts a table's rows without
    reading them: (ended experiments now, ended experiments ever deleted), in one statement
    (one snapshot); an end raises the first, a deletion the second, and neither goes down
    without the other going up."""
    if _dialect(session) == "postgresql":
        changes, rows = session.execute(store_counts.ENDED_VERSION).one()
        store_counts.fold_if_many(session, int(rows))
        return int(changes), 0
    ended, deleted = session.execute(_ENDED_VERSION).one()
    return int(ended), int(deleted)


def forget_ended_totals() -> None:
    """Drop every kept total of ended experiments: the next read sums them again."""
    with _ended_lock:
        _ended.clear()


def _ended_totals(session: Session) -> dict[str, StatusTotal]:
    url = str(session.get_bind().engine.url)
    version = _ended_version(session)
    with _ended_lock:
        kept = _ended.get(url)
    if kept is not None and kept[0] == version:
        return kept[1]
    rows = session.execute(_ENDED_TOTALS).all()
    totals = {status: StatusTotal(0, 0) for status in TERMINAL_VALUES}
    for status, count, attempts in rows:
        totals[str(status)] = StatusTotal(int(count), int(attempts))
    with _ended_lock:
        _ended[url] = (version, totals)
    return totals


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
    it): `experiments` is (count, newest created; of the queued and running ones: count,
    latest start and heartbeat, sums of steps and attempts, how many run, were asked to
    cancel, to be deleted; ended experiments ever deleted); `ablations` is (count, newest
    created)."""

    experiments: tuple[Any, ...]
    ablations: tuple[Any, ...]

    @property
    def experiment_count(self) -> int:
        return int(self.experiments[0])

    @property
    def ended(self) -> int:
        return int(self.experiments[0]) - int(self.experiments[2])

    @property
    def ablation_count(self) -> int:
        return int(self.ablations[0])


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def activity_marks(session: Session) -> ActivityMarks:
    """One statement over the experiments and one over the ablations, each reading only what
    can move: creating (count, newest), claiming, training (every heartbeat moves a step or a
    time), requeueing, cancelling and ending (the queued and running ones' figures: an end
    takes a run out of them) and deleting (count; ended ones ever deleted). An ended row
    changes no more, so none is read: the cost does not grow with the store (the count is
    SQLite's row count, the count PostgreSQL's writes keep; the rest are index seeks)."""
    dialect = _dialect(session)
    experiments = tuple(session.execute(_MARKS[dialect]).one())
    if dialect == "postgresql":  # the last figure is the store's count rows, no mark
        experiments, rows = experiments[:-1], experiments[-1]
        store_counts.fold_if_many(session, int(rows))
    return ActivityMarks(experiments, tuple(session.execute(_ABLATION_MARKS).one()))


def _every(dialect: str) -> Any:
    """How many experiments there are. SQLite counts a table's rows without reading them;
    PostgreSQL would read them all (an index-only scan at best), so there it is the sum its
    writes keep (core/store/store_counts.py)."""
    if dialect == "postgresql":
        return store_counts.experiments_total()
    return select(func.count()).select_from(EXPERIMENTS).scalar_subquery()


def _dialect(session: Session) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


def _marks(dialect: str) -> Select[Any]:
    every = _every(dialect)
    newest = select(func.max(_E.created_at)).scalar_subquery()
    still_open = (
        select(
            func.count().label("open"),
            func.max(_E.started_at).label("started"),
            func.max(_E.heartbeat_at).label("beat"),
            func.coalesce(func.sum(_E.step), 0).label("steps"),
            func.coalesce(func.sum(_E.attempt), 0).label("attempts"),
            _count_where(_E.status == Status.running.value).label("running"),
            _count_where(_E.cancel_requested).label("cancelling"),
            _count_where(_E.delete_requested).label("deleting"),
        )
        .where(_E.status.in_(_OPEN))
        .subquery()
    )
    marks = select(every, newest, *still_open.c, _deleted_ended())
    if dialect == "postgresql":
        marks = marks.add_columns(store_counts.ROWS)
    return marks


# Built once: the same statements every poll.
_DIALECTS = ("postgresql", "sqlite")
_MARKS = {d: _marks(d) for d in _DIALECTS}
_ABLATION_MARKS = select(func.count(), func.max(col(Ablation.created_at)))
_still_open = select(func.count()).where(_E.status.in_(_OPEN)).scalar_subquery()
# SQLite's: (ended experiments now, ended ones ever deleted); PostgreSQL's is the writes' own.
_ENDED_VERSION = select(_every("sqlite") - _still_open, _deleted_ended())
_ENDED_TOTALS = _totals_of(TERMINAL_VALUES)
_OPEN_TOTALS = _totals_of(_OPEN)
