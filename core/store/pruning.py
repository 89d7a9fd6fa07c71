"""Keeping the store small over months: the retention pass and `trainlab prune`.

The retention pass (`sweep`, run by the API every TRAINLAB_RETENTION_INTERVAL_S and by
`trainlab prune`) does what needs no decision:
- removes experiments whose deletion was asked for while they ran, once they have ended;
- drops the per-point loss rows of ended runs: `finish` packed them into one series row,
  which is all that is read from then on (a run the reaper failed, which was never packed,
  is packed first);
- drops the checkpoints of ended runs (weights plus optimizer state, only good for resuming),
  unless TRAINLAB_KEEP_CHECKPOINTS is set. A succeeding worker drops its own at once; this
  catches runs that failed or were ended by the reaper.

`prune_candidates` picks whole experiments an operator wants gone (finished before a cutoff,
optionally only some outcomes); members of an ablation are left alone and reported, as
DELETE /experiments refuses them. Each step works in bounded batches, so no transaction is long.
Functions take a Session and commit nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, Exists, delete, exists, func, select, union_all
from sqlmodel import Session

from core.store.models import TERMINAL_VALUES, AblationMember
from core.store.retention import LOSS_POINT_BYTES, footprints, remove_experiments
from core.store.series import pack_series
from core.store.session import session_scope
from core.store.tables import CHECKPOINTS, EXPERIMENTS, LOSS, NAMED, SERIES

_MEMBERS = AblationMember.__table__  # type: ignore[attr-defined]
_E = EXPERIMENTS.c
SWEEP_BATCH = 100


@dataclass
class SweepReport:
    deleted: list[str] = field(default_factory=list)
    compacted: list[str] = field(default_factory=list)
    checkpoints_dropped: list[str] = field(default_factory=list)
    freed_bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.deleted or self.compacted or self.checkpoints_dropped)


def _a_member() -> Exists:
    return exists(select(_MEMBERS.c.experiment_id).where(_MEMBERS.c.experiment_id == _E.id))


def sweep(
    session: Session, *, keep_checkpoints: bool, dry_run: bool = False, batch: int = SWEEP_BATCH
) -> SweepReport:
    """One retention pass over at most `batch` experiments of each kind (see the module)."""
    report = SweepReport()
    ended_deletions = session.execute(
        select(_E.id)
        .where(_E.delete_requested.is_(True), _E.status.in_(TERMINAL_VALUES), ~_a_member())
        .order_by(_E.id)
        .limit(batch)
    ).scalars()
    ids = [str(i) for i in ended_deletions]
    freed = footprints(session, ids) if dry_run else remove_experiments(session, ids)
    report.deleted = sorted(freed)
    report.freed_bytes += sum(f.bytes for f in freed.values())

    # Point rows of every series (core/store/series.py: two tables).
    points = union_all(select(LOSS.c.experiment_id), select(NAMED.c.experiment_id)).subquery()
    compactable = session.execute(
        select(points.c.experiment_id, func.count())
        .join(EXPERIMENTS, _E.id == points.c.experiment_id)
        .where(_E.status.in_(TERMINAL_VALUES))
        .group_by(points.c.experiment_id)
        .order_by(points.c.experiment_id)
        .limit(batch)
    ).all()
    for experiment_id, points in compactable:
        if dry_run or _compact(session, str(experiment_id)):
            report.compacted.append(str(experiment_id))
            report.freed_bytes += int(points) * LOSS_POINT_BYTES

    if not keep_checkpoints:
        stale = session.execute(
            select(CHECKPOINTS.c.experiment_id, func.length(CHECKPOINTS.c.data))
            .join(EXPERIMENTS, _E.id == CHECKPOINTS.c.experiment_id)
            .where(_E.status.in_(TERMINAL_VALUES))
            .order_by(CHECKPOINTS.c.experiment_id)
            .limit(batch)
        ).all()
        report.checkpoints_dropped = [str(i) for i, _ in stale]
        report.freed_bytes += sum(int(size or 0) for _, size in stale)
        if stale and not dry_run:
            session.execute(
                delete(CHECKPOINTS).where(
                    CHECKPOINTS.c.experiment_id.in_(report.checkpoints_dropped)
                )
            )
    return report


def sweep_until_done(
    engine: Engine, *, keep_checkpoints: bool, dry_run: bool = False
) -> SweepReport:
    """Retention passes, each in its own short transaction, until one finds nothing to do (a
    dry run changes nothing, so it makes one pass over everything instead)."""
    total = SweepReport()
    while True:
        with session_scope(engine) as session:
            report = sweep(
                session,
                keep_checkpoints=keep_checkpoints,
                dry_run=dry_run,
                batch=1_000_000 if dry_run else SWEEP_BATCH,
            )
        total.deleted += report.deleted
        total.compacted += report.compacted
        total.checkpoints_dropped += report.checkpoints_dropped
        total.freed_bytes += report.freed_bytes
        if dry_run or not report:
            return total


def _compact(session: Session, experiment_id: str) -> bool:
    """Pack the run's series if it has no packed row yet, and drop its per-point rows. False,
    doing nothing, when the run is gone or going: a DELETE (through any API process) committed
    since the pass listed it, or holds its row now. Packing the series of a run that is gone
    broke the foreign key, and with it the whole pass. On PostgreSQL the row is then locked
    against deletion (FOR KEY SHARE) until the pass commits, and a row that a deletion holds is
    passed by, not waited for (SKIP LOCKED: no lock order to keep). SQLite has one writer at a
    time: once the pass has written, no deletion commits before it does."""
    here = session.execute(
        select(_E.id)
        .where(_E.id == experiment_id)
        .with_for_update(read=True, key_share=True, skip_locked=True)
    ).first()
    if here is None:
        return False
    packed = session.execute(
        select(SERIES.c.experiment_id).where(SERIES.c.experiment_id == experiment_id)
    ).first()
    if packed is None:
        pack_series(session, experiment_id)
    for table in (LOSS, NAMED):
        session.execute(delete(table).where(table.c.experiment_id == experiment_id))
    return True


@dataclass(frozen=True)
class PruneCandidate:
    experiment_id: str
    status: str
    finished_at: datetime | None
    name: str | None


def prune_candidates(
    session: Session, *, finished_before: datetime, statuses: Collection[str]
) -> tuple[list[PruneCandidate], int]:
    """Ended experiments (of `statuses`) finished before the cutoff, oldest first, that no
    ablation counts as a member; and how many matched but were kept for being members."""
    wanted = sorted(set(statuses) & set(TERMINAL_VALUES))
    matching = (_E.status.in_(wanted), _E.finished_at < finished_before)
    rows = session.execute(
        select(_E.id, _E.status, _E.finished_at, _E.name)
        .where(*matching, ~_a_member())
        .order_by(_E.finished_at, _E.id)
    ).all()
    kept = session.execute(
        select(func.count()).select_from(EXPERIMENTS).where(*matching, _a_member())
    ).scalar_one()
    found = [PruneCandidate(str(r.id), str(r.status), r.finished_at, r.name) for r in rows]
    return found, int(kept)
