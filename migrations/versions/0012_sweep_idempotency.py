"""Idempotency keys for sweeps: a retried POST /sweeps with the same key answers the same
sweep instead of starting a second one.

Revision ID: 0012
Revises: 0011

As 0007 did for ablations: the key as given on an open server, else a digest of (account,
key); unique, so two racing retries make one sweep. Expand only: a nullable column, every
existing sweep without a key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.create_unique_constraint("uq_sweeps_idempotency_key", ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_constraint("uq_sweeps_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")
