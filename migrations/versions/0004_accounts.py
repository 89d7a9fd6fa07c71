"""Accounts: API keys, and who owns each experiment and ablation.

Revision ID: 0004
Revises: 0003

Rows made before accounts existed keep a NULL owner ("no owner"): only an admin may change
them. `cost` is the spec's estimated cost at admission (0 for older rows, which no quota
counts any more: they are older than a day or already finished).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_index("ix_api_keys_name", "api_keys", ["name"])
    with op.batch_alter_table("ablations") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch.create_index("ix_ablations_owner", ["owner"])
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        # A default only to fill the rows already there; the application sets every new one.
        batch.add_column(sa.Column("cost", sa.Float(), nullable=False, server_default="0"))
        batch.create_index("ix_experiments_owner", ["owner"])
        batch.create_index("ix_experiments_key_id", ["key_id"])
    with op.batch_alter_table("experiments") as batch:
        batch.alter_column("cost", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_index("ix_experiments_key_id")
        batch.drop_index("ix_experiments_owner")
        batch.drop_column("cost")
        batch.drop_column("key_id")
        batch.drop_column("owner")
    with op.batch_alter_table("ablations") as batch:
        batch.drop_index("ix_ablations_owner")
        batch.drop_column("owner")
    op.drop_index("ix_api_keys_name", table_name="api_keys")
    op.drop_table("api_keys")
