"""Listing columns: the dataset and the sortable metrics as real, indexed columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

`GET /experiments` filters by dataset and preset and sorts by test accuracy, final loss or
test loss. Those live inside the `spec` and `metrics` JSON; extracting them per query is a
different expression on each backend and can't use a plain index, so they are copied into
columns: `dataset` when an experiment is created, the metrics when its run finishes. Existing
rows are filled here from their JSON (the logic is inlined, so this script keeps meaning what
it meant when later code changes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_METRICS = ("test_accuracy", "final_loss", "test_loss")
_INDEXES = {
    "ix_experiments_preset": "preset",
    "ix_experiments_dataset": "dataset",
    "ix_experiments_test_accuracy": "test_accuracy",
    "ix_experiments_final_loss": "final_loss",
    "ix_experiments_test_loss": "test_loss",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("dataset", sa.String(length=32), nullable=True))
        for name in _METRICS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
    for index, column in _INDEXES.items():
        op.create_index(index, "experiments", [column])

    experiments = sa.table(
        "experiments",
        sa.column("id", sa.String()),
        sa.column("spec", sa.JSON()),
        sa.column("metrics", sa.JSON()),
        sa.column("dataset", sa.String()),
        *(sa.column(name, sa.Float()) for name in _METRICS),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(experiments.c.id, experiments.c.spec, experiments.c.metrics)
    ).all()
    for row_id, spec, metrics in rows:
        values: dict[str, Any] = {"dataset": (spec or {}).get("dataset", "mnist")}
        for name in _METRICS:
            values[name] = _number((metrics or {}).get(name))
        connection.execute(
            experiments.update().where(experiments.c.id == row_id).values(**values)
        )


def downgrade() -> None:
    for index in _INDEXES:
        op.drop_index(index, table_name="experiments")
    with op.batch_alter_table("experiments") as batch:
        for name in (*_METRICS, "dataset"):
            batch.drop_column(name)
