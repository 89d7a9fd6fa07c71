"""Spec columns: the steps a run's spec asks for and its fusion group key, stored at submit.

Revision ID: 0006
Revises: 0005

Before this, the API validated a stored spec again to show a queued run's length, and a worker
claiming a fused group validated every queued candidate to compare group keys. Both are now
columns filled once when the spec is validated at submit: `planned_steps` and `group_key`
(indexed, so the group's candidates are a plain filtered query). Existing rows are filled here
from their spec; one that no longer validates gets 0 steps and a NULL key, which equals nothing
in SQL, so that run is never grouped (it fails alone on its invalid spec, as before).

The key is core.spec.group_key itself, not a copy frozen in this script: stored keys must equal
what submit computes now, or runs stored before and after the upgrade would never group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.spec import ExperimentSpec, group_key

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def spec_columns(raw: Any) -> dict[str, Any]:
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValueError:
        return {"planned_steps": 0, "group_key": None}
    return {"planned_steps": spec.total_steps, "group_key": group_key(spec)}


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column("planned_steps", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("group_key", sa.String(length=16), nullable=True))
    op.create_index("ix_experiments_group_key", "experiments", ["group_key"])

    experiments = sa.table(
        "experiments",
        sa.column("id", sa.String()),
        sa.column("spec", sa.JSON()),
        sa.column("planned_steps", sa.Integer()),
        sa.column("group_key", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(experiments.c.id, experiments.c.spec)).all()
    for row_id, spec in rows:
        connection.execute(
            experiments.update().where(experiments.c.id == row_id).values(**spec_columns(spec))
        )


def downgrade() -> None:
    op.drop_index("ix_experiments_group_key", table_name="experiments")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("group_key")
        batch.drop_column("planned_steps")
