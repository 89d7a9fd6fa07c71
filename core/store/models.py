"""SQLModel tables. Alembic (migrations/) owns the schema; the app never calls create_all.

Layout choices:
- loss points are one row each, keyed (experiment_id, step): a task delivered twice writes
  the same keys, and the insert ignores conflicts, so the series has no duplicates and no gaps.
- once an experiment ends, its series is also packed into one row of float32/int32 blobs
  (ExperimentSeries) so reading a finished 18,000-point curve is one row, not 18,000.
- per-record outputs are float32 blobs (10,000 x 10 = 400 kB), not 100,000 rows.
- a finished run's final weights are one safetensors blob (ExperimentModel): what the API
  downloads and predicts with (numpy only), while the checkpoint (weights plus optimizer state,
  torch's format) exists to resume a lost run and is pruned once the run has ended.
- what the experiment listing filters and sorts by (dataset, test accuracy, final and test
  loss) is copied out of the spec and metrics JSON into real columns, so the listing is a
  plain indexed query on both backends instead of a per-dialect JSON extraction.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, false
from sqlmodel import Field, SQLModel

from core.store.clock import utcnow


def new_id() -> str:
    return uuid.uuid4().hex


class Status(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = frozenset({Status.succeeded, Status.failed, Status.cancelled})
# The same as the column's values, in a stable order (SQL `IN` lists, reports).
TERMINAL_VALUES = tuple(sorted(s.value for s in TERMINAL))

# Metrics the listing sorts by, copied into columns of the same name when a run finishes.
SORTABLE_METRICS = ("test_accuracy", "final_loss", "test_loss")


def sortable_metric_columns(metrics: dict[str, Any] | None) -> dict[str, float | None]:
    """The SORTABLE_METRICS of `metrics` as column values: finite numbers, else None."""
    found = metrics or {}
    values: dict[str, float | None] = {}
    for name in SORTABLE_METRICS:
        value = found.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            values[name] = float(value)
        else:
            values[name] = None
    return values


class Experiment(SQLModel, table=True):
    __tablename__ = "experiments"
    __table_args__ = (
        Index("ix_experiments_created", "created_at"),
        Index("ix_experiments_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_experiments_delete_requested", "delete_requested"),
        Index("ix_experiments_preset", "preset"),
        Index("ix_experiments_dataset", "dataset"),
        Index("ix_experiments_test_accuracy", "test_accuracy"),
        Index("ix_experiments_final_loss", "final_loss"),
        Index("ix_experiments_test_loss", "test_loss"),
        Index("ix_experiments_group_key", "group_key"),
        # Every column core/store/census.py reads (/metrics, the change feed): an index-only
        # scan instead of reading every row's JSON (migration 0011).
        Index(
            "ix_experiments_census",
            *("status", "attempt", "step", "cancel_requested", "delete_requested"),
            *("created_at", "started_at", "heartbeat_at", "finished_at"),
        ),
        # The listing filtered by status and sorted by a metric walks one of these and stops
        # after a page, instead of sorting every run of that status (migration 0011).
        Index("ix_experiments_status_test_accuracy", "status", "test_accuracy"),
        Index("ix_experiments_status_final_loss", "status", "final_loss"),
        Index("ix_experiments_status_test_loss", "status", "test_loss"),
        # An account's latest start, which every claim's fairness rule reads for each account
        # with queued work (core/store/scheduling.py): one index seek each (migration 0014).
        Index("ix_experiments_owner_started", "owner", "started_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    preset: str | None = Field(default=None, max_length=64)
    # The validated spec (core.spec.ExperimentSpec) as JSON, and its hash for reuse lookups.
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    spec_hash: str = Field(index=True, max_length=16)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)

    status: str = Field(default=Status.queued, max_length=16, index=True)
    cancel_requested: bool = False
    # DELETE ?cancel=true on an unfinished run: it is deleted once it has ended (the API's
    # retention pass, core/store/retention.py). The server default fills existing rows.
    delete_requested: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Incremented by every claim; a worker writes only while its attempt is the current one.
    attempt: int = 0
    # Attempts a worker ended by handing the run back (a graceful shutdown, a deploy): they
    # lost nothing, so TRAINLAB_MAX_ATTEMPTS counts only `attempt - handbacks`, the lost ones.
    handbacks: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    step: int = 0
    # What the worker reported as the run's length (0 until it first beats).
    total_steps: int = 0
    # Copies of what the spec says, computed once when it was validated at submit, so readers
    # and the scheduler never validate a stored spec again: the steps it asks for (0 for a spec
    # that no longer validates) and core.spec.group_key, which runs train fused (NULL for a
    # spec that no longer validates: NULL equals nothing in SQL, so such a run joins no group).
    planned_steps: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    group_key: str | None = Field(default=None, max_length=16)

    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    # When the run message was last handed to the broker; NULL means the broker never got it
    # (it was down at submit time) and the reaper must send it.
    dispatched_at: datetime | None = None

    worker: str | None = Field(default=None, max_length=200)
    device: str | None = Field(default=None, max_length=64)
    error: str | None = None
    metrics: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    fingerprint: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))

    # Copies for the listing's filters and sorts (see the module docstring): the spec's
    # dataset, set at creation; the SORTABLE_METRICS, set when the run finishes.
    dataset: str | None = Field(default=None, max_length=32)
    test_accuracy: float | None = None
    final_loss: float | None = None
    test_loss: float | None = None
    # Who submitted it: the API key's account name (NULL: made before keys, or by an open
    # server), and the key itself, which its quotas are counted against.
    owner: str | None = Field(default=None, max_length=64, index=True)
    key_id: str | None = Field(default=None, max_length=32, index=True)
    # The spec's estimated cost (core/cost.py) when it was admitted: what its admission added
    # to the key's CPU ledger (CpuSpend), which the daily quota sums.
    cost: float = 0.0
    # What the run may keep in the store, as priced at submit (core/cost.py, stored_bytes):
    # the account's storage quota sums it over the runs it still has, so deleting one frees
    # it. Priced, not measured, so a queued run counts in full before it writes a byte.
    stored_bytes: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )


# The name of a run's one series for kinds that record one (the classifier); kinds with
# several name theirs (core/kinds: Kind.series), e.g. the GAN's discriminator and generator.
DEFAULT_SERIES = "loss"


class LossPoint(SQLModel, table=True):
    """A point of the classifier's one series (DEFAULT_SERIES) while the run trains. Keyed
    (experiment_id, step), as the previous release keeps inserting it with ON CONFLICT on
    that key while an upgrade is under way; other series are SeriesPoint rows."""

    __tablename__ = "loss_points"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    step: int = Field(primary_key=True)
    value: float


class SeriesPoint(SQLModel, table=True):
    """A point of a named series other than DEFAULT_SERIES (a GAN's discriminator and
    generator, recorded at the same steps) while the run trains."""

    __tablename__ = "series_points"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    series: str = Field(primary_key=True, max_length=32)
    step: int = Field(primary_key=True)
    value: float


class ExperimentSeries(SQLModel, table=True):
    """The whole loss series of a finished experiment, packed: steps int32, values float32."""

    __tablename__ = "experiment_series"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    series: str = Field(
        default=DEFAULT_SERIES,
        primary_key=True,
        max_length=32,
        sa_column_kwargs={"server_default": DEFAULT_SERIES},
    )
    points: int
    steps: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    values: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ExperimentPredictions(SQLModel, table=True):
    """Outputs for every test record: float32 [records, 10], labels and predictions uint8."""

    __tablename__ = "experiment_predictions"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    records: int
    outputs: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    labels: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    predicted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ExperimentSamples(SQLModel, table=True):
    """A GAN run's images of its fixed seeds at one step: uint8 pixels [count, 784] and, for a
    conditional GAN, the label of each (uint8 [count]; empty otherwise)."""

    __tablename__ = "experiment_samples"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    step: int = Field(primary_key=True)
    count: int
    labels: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    pixels: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ExperimentCheckpoint(SQLModel, table=True):
    """The latest checkpoint (model + optimizer state, spec, step) written by the worker."""

    __tablename__ = "experiment_checkpoints"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    step: int
    created_at: datetime = Field(default_factory=utcnow)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ExperimentModel(SQLModel, table=True):
    """The final weights of a run that ended with a usable model (succeeded, or cancelled after
    some training): a safetensors file whose metadata carries the spec (worker/artifacts.py)."""

    __tablename__ = "experiment_models"

    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, ondelete="CASCADE")
    step: int
    size: int
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CpuSpend(SQLModel, table=True):
    """The CPU-hours each admission added to a key's rolling day (core/store/quotas.py). Kept
    apart from the experiments, and not deleted with them, so that deleting runs does not give
    their CPU-hours back: a row only ages out, a day after it was written."""

    __tablename__ = "cpu_spend"
    __table_args__ = (Index("ix_cpu_spend_key_spent", "key_id", "spent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=32)
    spent_at: datetime = Field(default_factory=utcnow)
    cpu_hours: float


class DeletedTotal(SQLModel, table=True):
    """What deleted experiments had added to the store-derived counters of /metrics (runs
    started, finished by outcome): added when they are deleted, so the counters never go down."""

    __tablename__ = "deleted_totals"

    name: str = Field(primary_key=True, max_length=64)
    value: int = Field(sa_column=Column(BigInteger, nullable=False))


class Ablation(SQLModel, table=True):
    __tablename__ = "ablations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    design: str = Field(max_length=16)  # "grid", "variants" or "book"
    # The request as given (base, factors, seeds), kept so the ablation describes itself.
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # [{"index": 0, "label": "...", "overrides": {...}, "spec": {...}}, ...]
    arms: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    seeds: list[int] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    owner: str | None = Field(default=None, max_length=64, index=True)
    # Scoped to the owner as experiments' keys are (migration 0007).
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)


class AblationMember(SQLModel, table=True):
    """One (arm, seed) cell of an ablation and the experiment that answers it. Experiments
    are shared: an identical spec+seed already stored is reused, not rerun."""

    __tablename__ = "ablation_members"

    ablation_id: str = Field(foreign_key="ablations.id", primary_key=True, ondelete="CASCADE")
    arm: int = Field(primary_key=True)
    seed: int = Field(primary_key=True)
    experiment_id: str = Field(foreign_key="experiments.id", index=True)


class ApiKey(SQLModel, table=True):
    """An API key (core/keys.py): only the SHA-256 of its secret is kept. Several keys may
    share an account `name` (rotation: make a new one, revoke the old); experiments record
    the name as their owner, so they stay the account's after a rotation."""

    __tablename__ = "api_keys"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=64, index=True)
    role: str = Field(max_length=16)
    prefix: str = Field(max_length=16, unique=True)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


# The sweep tables, registered on the same metadata (Alembic's target).
import core.store.sweep_tables  # noqa: E402,F401
