"""Initial schema.

Experiments, their loss points, packed series, predictions and checkpoints, and ablations
with their members (api/db/models.py).

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written for both backends: plain SQLAlchemy types (JSON is JSON on PostgreSQL and text on
SQLite, LargeBinary is BYTEA / BLOB, DateTime(timezone=True) is TIMESTAMPTZ / ISO text), no
server defaults (the application fills every column), and foreign keys that cascade from an
experiment to the rows that only exist for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _experiment_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("preset", sa.String(length=64), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("fingerprint", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_experiments_created", "experiments", ["created_at"])
    op.create_index("ix_experiments_spec_hash", "experiments", ["spec_hash"])
    op.create_index("ix_experiments_status", "experiments", ["status"])
    # The reaper's question: which running experiments have a heartbeat older than T?
    op.create_index("ix_experiments_status_heartbeat", "experiments", ["status", "heartbeat_at"])

    op.create_table(
        "loss_points",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        _experiment_fk(),
        # The key that makes a repeated write of the same point a no-op.
        sa.PrimaryKeyConstraint("experiment_id", "step"),
    )
    op.create_table(
        "experiment_series",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("values", sa.LargeBinary(), nullable=False),
        _experiment_fk(),
        sa.PrimaryKeyConstraint("experiment_id"),
    )
    op.create_table(
        "experiment_predictions",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("outputs", sa.LargeBinary(), nullable=False),
        sa.Column("labels", sa.LargeBinary(), nullable=False),
        sa.Column("predicted", sa.LargeBinary(), nullable=False),
        _experiment_fk(),
        sa.PrimaryKeyConstraint("experiment_id"),
    )
    op.create_table(
        "experiment_checkpoints",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _experiment_fk(),
        sa.PrimaryKeyConstraint("experiment_id"),
    )

    op.create_table(
        "ablations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("design", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("seeds", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ablation_members",
        sa.Column("ablation_id", sa.String(), nullable=False),
        sa.Column("arm", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["ablation_id"], ["ablations.id"], ondelete="CASCADE"),
        # No cascade: an experiment may answer several ablations and outlives each of them.
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"]),
        sa.PrimaryKeyConstraint("ablation_id", "arm", "seed"),
    )
    op.create_index("ix_ablation_members_experiment_id", "ablation_members", ["experiment_id"])


def downgrade() -> None:
    op.drop_index("ix_ablation_members_experiment_id", table_name="ablation_members")
    op.drop_table("ablation_members")
    op.drop_table("ablations")
    op.drop_table("experiment_checkpoints")
    op.drop_table("experiment_predictions")
    op.drop_table("experiment_series")
    op.drop_table("loss_points")
    op.drop_index("ix_experiments_status_heartbeat", table_name="experiments")
    op.drop_index("ix_experiments_status", table_name="experiments")
    op.drop_index("ix_experiments_spec_hash", table_name="experiments")
    op.drop_index("ix_experiments_created", table_name="experiments")
    op.drop_table("experiments")
