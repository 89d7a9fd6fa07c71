"""What GET /sweeps/{id} reads of a sweep's trials, runs and rung figures: only the columns
the view shows (api/services/sweep_views.py), as plain rows.

The view of a 200-trial sweep read every run's whole row through the ORM (its spec and
metrics JSON) and validated each stored spec again to price it; a run's price and length
were stored when it was made (`cost`, the cost model's CPU-hours; `planned_steps`), so these
reads leave the JSON out. The driver (api/background/sweeps.py) keeps the full reads of
core/store/sweeps.py: it needs the trials' sampler state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.store.sweep_tables import ExperimentRung, SweepRun, SweepTrial
from core.store.tables import EXPERIMENTS

_TRIALS = SweepTrial.__table__  # type: ignore[attr-defined]
_RUNS = SweepRun.__table__  # type: ignore[attr-defined]
_RUNGS = ExperimentRung.__table__  # type: ignore[attr-defined]
_E = EXPERIMENTS.c
# Ids per IN (...) list: well under SQLite's bound on a statement's parameters.
_ID_BATCH = 500


@dataclass(frozen=True)
class TrialRow:
    number: int
    params: dict[str, Any]
    state: str
    value: float | None
    rung: int | None
    reason: str | None
    decisions: list[dict[str, Any]]


@dataclass(frozen=True)
class RunRow:
    """One seed's run of a trial: its progress, and its price as stored when it was made."""

    number: int
    seed: int
    experiment_id: str
    status: str
    step: int
    total_steps: int  # what its worker reported (0 before it started)
    planned_steps: int  # what its spec asks for (0: a spec that no longer validates)
    cost_hours: float  # the cost model's estimate (0: made before runs were priced)


@dataclass(frozen=True)
class RungRow:
    step: int
    fraction: float
    validation_accuracy: float | None
    validation_loss: float | None
    figures: dict[str, float] | None  # another kind's (a GAN judge's) figures

    def value(self, name: str) -> float | None:
        """The rung's figure `name` (a sweep's objective), None where it has none."""
        if name in ("validation_accuracy", "validation_loss"):
            found = getattr(self, name)
        else:
            found = (self.figures or {}).get(name)
        return None if found is None else float(found)


def trials(session: Session, sweep_id: str) -> list[TrialRow]:
    t = _TRIALS.c
    rows = session.execute(
        select(t.number, t.params, t.state, t.value, t.rung, t.reason, t.decisions)
        .where(t.sweep_id == sweep_id)
        .order_by(t.number)
    ).all()
    return [TrialRow(*row) for row in rows]


def runs(session: Session, sweep_id: str) -> dict[int, list[RunRow]]:
    """Each trial's runs, in seed order."""
    r = _RUNS.c
    rows = session.execute(
        select(r.number, r.seed, r.experiment_id, _E.status, _E.step, _E.total_steps)
        .add_columns(_E.planned_steps, _E.cost)
        .join(EXPERIMENTS, _E.id == r.experiment_id)
        .where(r.sweep_id == sweep_id)
        .order_by(r.number, r.seed)
    ).all()
    found: dict[int, list[RunRow]] = {}
    for row in rows:
        found.setdefault(int(row[0]), []).append(RunRow(*row))
    return found


def rungs(session: Session, experiment_ids: Sequence[str]) -> dict[str, list[RungRow]]:
    """Each run's rung figures, in step order."""
    g = _RUNGS.c
    found: dict[str, list[RungRow]] = {e: [] for e in experiment_ids}
    ordered = sorted(found)
    for start in range(0, len(ordered), _ID_BATCH):
        rows = session.execute(
            select(
                g.experiment_id,
                g.step,
                g.fraction,
                g.validation_accuracy,
                g.validation_loss,
                g.figures,
            )
            .where(g.experiment_id.in_(ordered[start : start + _ID_BATCH]))
            .order_by(g.experiment_id, g.step)
        )
        for experiment_id, *figures in rows:
            found[experiment_id].append(RungRow(*figures))
    return found
