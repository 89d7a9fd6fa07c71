"""Stored bytes and the CPU ledger: what a run may keep in the store, and what each key spent.

Revision ID: 0009
Revises: 0008

`experiments.stored_bytes` is the bytes a run may keep (core/cost.py, priced at submit), which
the per-account storage quota sums over the runs that still exist. Existing rows are priced
here from their spec with core.cost itself (a spec that no longer validates: 0).

`cpu_spend` is the ledger the daily CPU quota sums: one row per admission, kept when its runs
are deleted, so that deleting runs does not hand their CPU-hours back. It starts with the
admissions of the last day, read from the experiments that still have a key and a cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.cost import estimate
from core.spec import ExperimentSpec

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def priced_bytes(raw: Any) -> int:
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValueError:
        return 0
    return estimate(spec).stored_bytes


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "cpu_spend",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_hours", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cpu_spend_key_spent", "cpu_spend", ["key_id", "spent_at"])

    experiments = sa.table(
        "experiments",
        sa.column("id", sa.String()),
        sa.column("spec", sa.JSON()),
        sa.column("stored_bytes", sa.BigInteger()),
        sa.column("key_id", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("cost", sa.Float()),
    )
    ledger = sa.table(
        "cpu_spend",
        sa.column("key_id", sa.String()),
        sa.column("spent_at", sa.DateTime(timezone=True)),
        sa.column("cpu_hours", sa.Float()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(experiments.c.id, experiments.c.spec)).all()
    for row_id, spec in rows:
        connection.execute(
            experiments.update()
            .where(experiments.c.id == row_id)
            .values(stored_bytes=priced_bytes(spec))
        )
    since = datetime.now(UTC) - timedelta(days=1)
    connection.execute(
        ledger.insert().from_select(
            ["key_id", "spent_at", "cpu_hours"],
            sa.select(experiments.c.key_id, experiments.c.created_at, experiments.c.cost).where(
                experiments.c.key_id.is_not(None),
                experiments.c.created_at >= since,
                experiments.c.cost > 0,
            ),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_cpu_spend_key_spent", table_name="cpu_spend")
    op.drop_table("cpu_spend")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("stored_bytes")
