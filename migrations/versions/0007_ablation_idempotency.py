"""Idempotency keys for ablations: a retried POST /ablations with the same key answers the
same ablation instead of making a second one.

Revision ID: 0007
Revises: 0005

Stored as experiments store theirs (core/store/experiments.py): the key as given on an open
server, else a digest of (account, key); unique, so two racing retries make one ablation.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ablations") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.create_unique_constraint("uq_ablations_idempotency_key", ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("ablations") as batch:
        batch.drop_constraint("uq_ablations_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")
