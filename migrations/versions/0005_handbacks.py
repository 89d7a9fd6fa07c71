"""Hand-backs: attempts a worker ended by giving the run back on shutdown.

Revision ID: 0005
Revises: 0004

TRAINLAB_MAX_ATTEMPTS counts the attempts lost (a worker killed, a host gone), not those a
graceful shutdown handed back: three deploys during one long run must not fail it. Existing
rows start at 0, as before this column every attempt counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column("handbacks", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("handbacks")
