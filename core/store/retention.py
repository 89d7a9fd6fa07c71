"""Deleting experiments and ablations, with every row and blob they own.

Rules (README, "Retention"):
- A finished experiment is removed with its loss points, packed series, predictions,
  checkpoint and final weights. An unfinished one is refused (StillRunning) unless the caller
  asks to cancel it: a queued one is then cancelled and removed at once; a running one is
  flagged `cancel_requested` and `delete_requested`, and removed once it has ended, by the
  API's retention pass (core/store/pruning.py `sweep`) or `trainlab prune`.
- An experiment that an ablation counts among its members is refused (InAblations, naming
  them): removing it would silently change that ablation's statistics. Deleting the
  ablation removes the experiments it alone uses.
- Deleting an ablation removes it and its member experiments, except those another ablation
  shares (an identical spec and seed is one experiment), which stay and are reported.
- What the removed experiments had added to the counters of /metrics (runs started, finished
  by outcome) is added to `deleted_totals` in the same transaction, so counters never go down.

Functions take a Session and commit nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.store.ablations import members_with_experiments, require_ablation, shared_elsewhere
from core.store.artifacts import MODELS, _predictions_cache
from core.store.cache import cache_key
from core.store.errors import AlreadyFinished, StoreError
from core.store.experiments import request_cancel, require_experiment
from core.store.models import TERMINAL, TERMINAL_VALUES, Ablation, AblationMember, DeletedTotal
from core.store.samples import SAMPLES
from core.store.series import _series_cache
from core.store.tables import (
    CHECKPOINTS,
    EXPERIMENTS,
    LOSS,
    NAMED,
    PREDICTIONS,
    SERIES,
    rowcount,
)

_MEMBERS = AblationMember.__table__  # type: ignore[attr-defined]
_ABLATIONS = Ablation.__table__  # type: ignore[attr-defined]
_TOTALS = DeletedTotal.__table__  # type: ignore[attr-defined]
# A loss point's payload: its step (int32 in the packed form) and its value (float64 as a row).
LOSS_POINT_BYTES = 12


class StillRunning(StoreError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} has not finished; cancel it first, or pass cancel=true to cancel it and "
            "delete it once it has stopped"
        )


class InAblations(StoreError):
    def __init__(self, experiment_id: str, ablation_ids: Sequence[str]) -> None:
        listed = ", ".join(ablation_ids)
        super().__init__(
            f"experiment {experiment_id} is a member of ablation {listed}: deleting it would "
            f"change that ablation's results; delete the ablation instead (DELETE /ablations/"
            f"{ablation_ids[0]}), which removes the experiments no other ablation uses"
        )
        self.ablation_ids = list(ablation_ids)


@dataclass(frozen=True)
class Footprint:
    """What one experiment keeps in the store, in payload bytes (blob lengths, 12 bytes per
    loss point); the database's own per-row and index overhead comes on top."""

    loss_points: int = 0
    series_bytes: int = 0
    predictions_bytes: int = 0
    checkpoint_bytes: int = 0
    model_bytes: int = 0

    @property
    def bytes(self) -> int:
        return (
            self.loss_points * LOSS_POINT_BYTES
            + self.series_bytes
            + self.predictions_bytes
            + self.checkpoint_bytes
            + self.model_bytes
        )


@dataclass(frozen=True)
class ExperimentDeletion:
    experiment_id: str
    deleted: bool  # False: cancelled and scheduled, deleted once it has ended
    freed_bytes: int


@dataclass
class AblationDeletion:
    ablation_id: str
    deleted: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    kept_shared: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def footprints(session: Session, experiment_ids: Iterable[str]) -> dict[str, Footprint]:
    """Each experiment's stored payload: one grouped query per table."""
    ids = sorted(set(experiment_ids))
    found: dict[str, dict[str, int]] = {i: {} for i in ids}
    if not ids:
        return {}
    queries = {
        "loss_points": select(LOSS.c.experiment_id, func.count())
        .where(LOSS.c.experiment_id.in_(ids))
        .group_by(LOSS.c.experiment_id),
        "named_points": select(NAMED.c.experiment_id, func.count())
        .where(NAMED.c.experiment_id.in_(ids))
        .group_by(NAMED.c.experiment_id),
        "series_bytes": select(
            SERIES.c.experiment_id,
            func.length(SERIES.c.steps) + func.length(SERIES.c["values"]),
        ).where(SERIES.c.experiment_id.in_(ids)),
        "predictions_bytes": select(
            PREDICTIONS.c.experiment_id,
            func.length(PREDICTIONS.c.outputs)
            + func.length(PREDICTIONS.c.labels)
            + func.length(PREDICTIONS.c.predicted),
        ).where(PREDICTIONS.c.experiment_id.in_(ids)),
        "checkpoint_bytes": select(
            CHECKPOINTS.c.experiment_id, func.length(CHECKPOINTS.c.data)
        ).where(CHECKPOINTS.c.experiment_id.in_(ids)),
        "model_bytes": select(MODELS.c.experiment_id, MODELS.c.size).where(
            MODELS.c.experiment_id.in_(ids)
        ),
    }
    for name, query in queries.items():
        for experiment_id, amount in session.execute(query).all():
            found[str(experiment_id)][name] = int(amount or 0)
    for parts in found.values():  # a point is a point, whichever table holds its series
        parts["loss_points"] = parts.get("loss_points", 0) + parts.pop("named_points", 0)
    return {i: Footprint(**parts) for i, parts in found.items()}


def member_ablations(session: Session, experiment_id: str) -> list[str]:
    rows = session.execute(
        select(_MEMBERS.c.ablation_id)
        .where(_MEMBERS.c.experiment_id == experiment_id)
        .distinct()
        .order_by(_MEMBERS.c.ablation_id)
    ).scalars()
    return [str(r) for r in rows]


def delete_experiment(session: Session, experiment_id: str, *, cancel: bool) -> ExperimentDeletion:
    """Remove a finished experiment; see the module's rules for unfinished ones and members."""
    experiment = require_experiment(session, experiment_id)
    ablations = member_ablations(session, experiment_id)
    if ablations:
        raise InAblations(experiment_id, ablations)
    if experiment.status not in TERMINAL:
        if not cancel:
            raise StillRunning(f"experiment {experiment_id} ({experiment.status})")
        if schedule_deletion(session, experiment_id):
            return ExperimentDeletion(experiment_id, deleted=False, freed_bytes=0)
    freed = remove_experiments(session, [experiment_id])
    return ExperimentDeletion(experiment_id, deleted=True, freed_bytes=freed[experiment_id].bytes)


def delete_ablation(session: Session, ablation_id: str, *, cancel: bool) -> AblationDeletion:
    """Remove the ablation and the member experiments it alone uses: those no other ablation
    shares, and that its owner made (a run it reused from another account stays theirs)."""
    ablation = require_ablation(session, ablation_id)
    members = members_with_experiments(session, [ablation_id])[ablation_id]
    experiments = {e.id: e for _, e in members}
    shared = shared_elsewhere(session, ablation_id, set(experiments)) | {
        i for i, e in experiments.items() if e.owner != ablation.owner
    }
    own = sorted(set(experiments) - shared)
    unfinished = [i for i in own if experiments[i].status not in TERMINAL]
    if unfinished and not cancel:
        raise StillRunning(f"ablation {ablation_id} ({len(unfinished)} unfinished experiments)")
    session.execute(delete(_MEMBERS).where(_MEMBERS.c.ablation_id == ablation_id))
    session.execute(delete(_ABLATIONS).where(_ABLATIONS.c.id == ablation_id))
    outcome = AblationDeletion(ablation_id, kept_shared=sorted(shared))
    outcome.pending = [i for i in unfinished if schedule_deletion(session, i)]
    freed = remove_experiments(session, [i for i in own if i not in outcome.pending])
    outcome.deleted = sorted(freed)
    outcome.freed_bytes = sum(f.bytes for f in freed.values())
    return outcome


def schedule_deletion(session: Session, experiment_id: str) -> bool:
    """Cancel an unfinished experiment and mark it for deletion once it has ended. False when
    it has ended already (a queued one is cancelled at once): the caller removes it now."""
    try:
        request_cancel(session, experiment_id)
    except AlreadyFinished:
        return False
    marked = session.execute(
        update(EXPERIMENTS)
        .where(EXPERIMENTS.c.id == experiment_id, EXPERIMENTS.c.status.not_in(TERMINAL_VALUES))
        .values(delete_requested=True)
    )
    return rowcount(marked) == 1


def remove_experiments(session: Session, experiment_ids: Iterable[str]) -> dict[str, Footprint]:
    """Delete these experiments, those of them that have finished, with everything they own;
    returns what each freed. Their contribution to the /metrics counters goes to
    deleted_totals first. (A membership added meanwhile makes the delete fail: the foreign
    key from ablation_members has no cascade, on purpose.)"""
    wanted = sorted(set(experiment_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(EXPERIMENTS.c.id, EXPERIMENTS.c.status, EXPERIMENTS.c.attempt)
        .where(EXPERIMENTS.c.id.in_(wanted), EXPERIMENTS.c.status.in_(TERMINAL_VALUES))
        .with_for_update()
    ).all()
    ids = [str(r.id) for r in rows]
    if not ids:
        return {}
    freed = footprints(session, ids)
    totals: dict[str, int] = {"runs_started": sum(int(r.attempt) for r in rows)}
    for row in rows:
        key = f"runs_finished_{row.status}"
        totals[key] = totals.get(key, 0) + 1
    add_deleted_totals(session, totals)
    for table in (LOSS, NAMED, SERIES, PREDICTIONS, CHECKPOINTS, MODELS, SAMPLES):
        session.execute(delete(table).where(table.c.experiment_id.in_(ids)))
    session.execute(delete(EXPERIMENTS).where(EXPERIMENTS.c.id.in_(ids)))
    _forget_cached(session, ids)
    return freed


def add_deleted_totals(session: Session, amounts: dict[str, int]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for name, amount in amounts.items():
        if not amount:
            continue
        statement = insert(_TOTALS).values(name=name, value=amount)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[_TOTALS.c.name],
                set_={"value": _TOTALS.c.value + statement.excluded.value},
            )
        )


def deleted_totals(session: Session) -> dict[str, int]:
    rows = session.execute(select(_TOTALS.c.name, _TOTALS.c.value)).all()
    return {str(name): int(value) for name, value in rows}


def _forget_cached(session: Session, experiment_ids: Sequence[str]) -> None:
    """Drop this process's cached copies (finished series, predictions) of deleted runs.
    Other API processes keep theirs until evicted: ids are random and never reused, and
    every read of an experiment that is gone answers 404 from its status check (GET /loss
    too: it reads the status each freshness window, even for a curve it has cached)."""
    for experiment_id in experiment_ids:
        key = cache_key(session, experiment_id)
        _series_cache.discard(key)
        _predictions_cache.discard(key)
