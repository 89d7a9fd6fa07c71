"""A sweep's runs at their rungs: the figures a run reports there (written by the worker as it
trains), and what a run of a sweep waits for at a judged rung: its trial's verdict, or the
gate that lets it train on when too few trials are at that rung for its pruner to stop any
(core/sweeps/gate.py). worker/rungs.py calls these through its StoreLink."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.store import wake
from core.store.models import Experiment
from core.store.sweep_tables import ExperimentRung, Sweep, SweepRun, SweepTrial
from core.sweeps import gate

# Figures of a rung with a column of their own (the rest go in `figures`).
_OWN_COLUMNS = ("step", "fraction", "validation_accuracy", "validation_loss")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def save_rung(session: Session, experiment_id: str, figures: dict[str, Any]) -> None:
    """Store a run's figures at a rung; a repeat of the same step (a retried
    write, a resumed attempt) changes nothing."""
    step = int(figures["step"])
    if session.get(ExperimentRung, (experiment_id, step)) is not None:
        return
    session.add(
        ExperimentRung(
            experiment_id=experiment_id,
            step=step,
            fraction=float(figures["fraction"]),
            validation_accuracy=_float(figures.get("validation_accuracy")),
            validation_loss=_float(figures.get("validation_loss")),
            figures={k: float(v) for k, v in figures.items() if k not in _OWN_COLUMNS} or None,
        )
    )
    session.flush()
    wake.announce(session)  # a sweep's driver judges it at once


class RunOfSweep(NamedTuple):
    sweep_id: str
    number: int
    judged: int  # rungs its pruner judges: every rung but the last, none without a pruner
    least: int  # trials at a rung below which its pruner prunes none (core/sweeps/gate.py)


def judged_rungs(session: Session, experiment_id: str) -> RunOfSweep | None:
    """What a sweep's run needs to know to wait at its rungs, in one indexed read; None for a
    run of no sweep."""
    columns = (SweepRun.sweep_id, SweepRun.number, Sweep.pruner, Sweep.rungs, Sweep.request)
    row = session.execute(
        sa_select(*(col(c) for c in columns))
        .join(Sweep, col(Sweep.id) == col(SweepRun.sweep_id))
        .where(col(SweepRun.experiment_id) == experiment_id)
    ).first()
    if row is None:
        return None
    sweep_id, number, pruner, rungs, request = row
    judged = 0 if pruner == "none" else rungs - 1
    prune_after = (request or {}).get("prune_after")
    least = gate.least_at_rung(pruner, None if prune_after is None else int(prune_after))
    return RunOfSweep(sweep_id, number, judged, least)


def rung_verdict(
    session: Session, sweep_id: str, number: int, index: int, experiment_id: str
) -> bool | None:
    """The driver's word on trial `number` at rung `index` (0-based), for its run
    `experiment_id`: True to stop (pruned, or a cancel asked for), False to go on (judged
    past that rung), None while it has not looked yet."""
    row = session.exec(
        select(
            _cancel_requested(experiment_id),
            _trial_column(SweepTrial.state, sweep_id, number),
            _trial_column(SweepTrial.judged, sweep_id, number),
        )
    ).one()
    return _verdict(row[0], row[1], row[2], index)


def rung_gate(session: Session, run: RunOfSweep, index: int, experiment_id: str) -> bool | None:
    """At a run's judged rung `index`: True to stop, False to go on without waiting (the
    driver has said so, or too few trials are at that rung for its pruner to stop any, as
    core/sweeps/gate.py counts), None to wait for the verdict. One statement: the run's
    cancel, its trial's state, and how many of the sweep's trials have a run with more
    than `index` rungs stored (the primary keys of sweep_runs and experiment_rungs)."""
    per_run = (
        select(col(SweepRun.number))
        .join(ExperimentRung, col(ExperimentRung.experiment_id) == col(SweepRun.experiment_id))
        .where(col(SweepRun.sweep_id) == run.sweep_id)
        .group_by(col(SweepRun.number), col(SweepRun.experiment_id))
        .having(func.count() > index)
        .subquery()
    )
    at_rung = select(func.count(func.distinct(per_run.c.number))).scalar_subquery()
    row = session.exec(
        select(
            _cancel_requested(experiment_id),
            _trial_column(SweepTrial.state, run.sweep_id, run.number),
            _trial_column(SweepTrial.judged, run.sweep_id, run.number),
            at_rung,
        )
    ).one()
    verdict = _verdict(row[0], row[1], row[2], index)
    if verdict is None and int(row[3]) < run.least:
        return False
    return verdict


def _cancel_requested(experiment_id: str) -> Any:
    query = select(col(Experiment.cancel_requested)).where(col(Experiment.id) == experiment_id)
    return query.scalar_subquery()


def _trial_column(column: Any, sweep_id: str, number: int) -> Any:
    query = select(col(column)).where(
        col(SweepTrial.sweep_id) == sweep_id, col(SweepTrial.number) == number
    )
    return query.scalar_subquery()


def _verdict(cancel: bool | None, state: str | None, judged: int | None, index: int) -> bool | None:
    if cancel is None or state is None or judged is None or cancel:
        return True  # the run or its trial gone, or a cancel asked for
    if state in ("pruned", "failed"):
        return True
    if judged > index or state == "complete":
        return False
    return None
