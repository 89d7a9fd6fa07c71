"""An index for the claim's fairness rule: each waiting account's latest start.

Revision ID: 0014
Revises: 0013

Every claim picks the queued run of the account with the fewest runs going, then the one served
longest ago (core/store/scheduling.py). It grouped every experiment ever run by account for
that, a scan of the whole table per claim (hundreds of MB at 100,000 experiments). It now
reads the figures only for the accounts with queued work, and an account's latest start
(max(started_at) for one owner) is one seek to the end of its part of this index.
Expand-only: nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_experiments_owner_started", "experiments", ["owner", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_experiments_owner_started", table_name="experiments")
