"""Weights, checkpoints and test outputs stored without PostgreSQL's compression.

Revision ID: 0015
Revises: 0014

A bytea value over about 2 kB is TOASTed, and by default (STORAGE EXTENDED) PostgreSQL first
tries to compress it with pglz. Trained float32 weights and optimizer state do not compress
(pglz gives up short of its 25 % saving, so the row is as big either way), but the attempt
runs over the whole value: measured on this project's store, a run's 0.64 MB model file took
11.7 ms to insert instead of 3.2 ms, and an Adam checkpoint of 1.9 MB 44 ms instead of 10 ms,
each time a run checkpoints. STORAGE EXTERNAL keeps the values out of line, uncompressed.
The test outputs (float32 probabilities) gain nothing either. The packed series' step column
(int64, ascending) does compress, and keeps the default. Values already stored are left as
they are; SQLite has no such setting. Expand-only: nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): float data that pglz spends time on and never shrinks.
UNCOMPRESSED = (
    ("experiment_models", "data"),
    ("experiment_checkpoints", "data"),
    ("experiment_predictions", "outputs"),
)


def _set_storage(storage: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in UNCOMPRESSED:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {storage}")


def upgrade() -> None:
    _set_storage("EXTERNAL")


def downgrade() -> None:
    _set_storage("EXTENDED")
