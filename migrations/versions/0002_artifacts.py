"""Final weights as an artifact, deletion after a run ends, and totals of deleted runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

- experiment_models: the final weights of a run (safetensors, spec in its metadata), cascading
  from the experiment like the other per-run rows.
- experiments.delete_requested: DELETE ?cancel=true on an unfinished run marks it; it is
  deleted once it has ended. Existing rows get false from the server default.
- deleted_totals: what deleted experiments had added to the store-derived counters of /metrics,
  so those counters never go down.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_models",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id"),
    )
    op.create_table(
        "deleted_totals",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column(
                "delete_requested", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch.create_index("ix_experiments_delete_requested", ["delete_requested"])


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_index("ix_experiments_delete_requested")
        batch.drop_column("delete_requested")
    op.drop_table("deleted_totals")
    op.drop_table("experiment_models")
