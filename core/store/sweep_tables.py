"""The tables of sweeps (core/store/sweeps.py and sweep_rungs.py read and write them).

- sweeps: the request, its parsed parts, status, the driver's lease (one API process
  drives a sweep at a time: it takes the lease with a conditional UPDATE and renews it), and
  the Idempotency-Key of the POST that made it.
- sweep_trials: one row per asked trial, keyed (sweep, number): a number is asked once, so a
  sweep never has more than max_trials trials and never runs one twice.
- sweep_runs: the trial's experiments, one per seed (ordinary experiments, linked here).
- experiment_rungs: the figures a run reports at its rungs while it trains (a classifier's
  validation accuracy and loss, another kind's in `figures`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.store.clock import utcnow


def _new_id() -> str:
    return uuid.uuid4().hex


class Sweep(SQLModel, table=True):
    __tablename__ = "sweeps"

    id: str = Field(default_factory=_new_id, primary_key=True, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    status: str = Field(default="running", max_length=16, index=True)
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    base: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # spec, no seed
    preset: str | None = Field(default=None, max_length=64)
    space: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    seeds: list[int] = Field(sa_column=Column(JSON, nullable=False))
    sampler: str = Field(max_length=16)
    pruner: str = Field(max_length=16)
    objective: str = Field(max_length=32)
    max_trials: int
    parallel: int
    rungs: int
    sampler_seed: int
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    owner: str | None = Field(default=None, max_length=64, index=True)
    key_id: str | None = Field(default=None, max_length=32)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = None
    note: str | None = None  # why the driver waits (a quota), or why the sweep failed
    confirm_ablation_id: str | None = Field(default=None, max_length=32)
    # As experiments and ablations store theirs (core/store/experiments.py scoped_key): unique,
    # so two racing retries of one POST make one sweep.
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)


class SweepTrial(SQLModel, table=True):
    __tablename__ = "sweep_trials"

    sweep_id: str = Field(foreign_key="sweeps.id", primary_key=True, ondelete="CASCADE")
    number: int = Field(primary_key=True)
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # spec values
    optuna_params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    system_attrs: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default="queued", max_length=16)
    judged: int = 0  # rungs the pruner has looked at
    rung: int | None = None  # the rung it was pruned at
    reason: str | None = None
    decisions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    value: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class SweepRun(SQLModel, table=True):
    __tablename__ = "sweep_runs"

    sweep_id: str = Field(foreign_key="sweeps.id", primary_key=True, ondelete="CASCADE")
    number: int = Field(primary_key=True)
    seed: int = Field(primary_key=True)
    experiment_id: str = Field(foreign_key="experiments.id", index=True, ondelete="CASCADE")


class ExperimentRung(SQLModel, table=True):
    __tablename__ = "experiment_rungs"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    step: int = Field(primary_key=True)
    fraction: float
    # A classifier's rung: its validation figures. Another kind's (a GAN's judge): `figures`.
    validation_accuracy: float | None = None
    validation_loss: float | None = None
    figures: dict[str, float] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
