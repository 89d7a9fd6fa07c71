"""Indexes for a store of 100,000 experiments: the census, and status-filtered metric sorts.

Revision ID: 0013
Revises: 0012

- ix_experiments_census: GET /metrics sums the experiments by status (count, attempts), and
  the change feed behind the dashboard (GET /changes) reads counts, sums and latest times over
  every experiment (core/store/census.py). Both read every row: with 100,000 experiments of a
  few kB each (specs and metrics JSON), a scan of the table is hundreds of MB. Every column
  they read is in this index, so both become an index-only scan of a few MB.
- ix_experiments_status_<metric>: the listing filtered by status and sorted by a metric
  ("succeeded runs, best first") walks this index from the top and stops after a page. With
  only the one-column indexes, SQLite (and PostgreSQL, for a rare status) read every row of
  that status and sorted them all.
Expand-only: nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_experiments_census": [
        "status", "attempt", "step", "cancel_requested", "delete_requested", "created_at",
        "started_at", "heartbeat_at", "finished_at",
    ],
    "ix_experiments_status_test_accuracy": ["status", "test_accuracy"],
    "ix_experiments_status_final_loss": ["status", "final_loss"],
    "ix_experiments_status_test_loss": ["status", "test_loss"],
}  # fmt: skip


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "experiments", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="experiments")
