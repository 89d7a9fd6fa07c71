"""Named loss series, and a GAN run's samples.

Revision ID: 0010
Revises: 0009

A kind of job may record several loss series (the GAN's discriminator and generator, at the
same steps). The classifier's one series, "loss", keeps its points in `loss_points`, keyed
(experiment_id, step) as before: the previous release's workers insert there with ON CONFLICT
on that key while an upgrade runs, so the key stays (README, "Upgrades"). Points of every other
series go to a new table, `series_points`, keyed (experiment_id, series, step). Packed series
are keyed by name: `experiment_series` gains `series` in its key, and its existing rows are the
classifier's, "loss", the column's default (the previous release replaces a run's packed row by
deleting and inserting it, naming no key, so the wider key suits it). Samples of a GAN's fixed
seeds get a table.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PACKED = "experiment_series"
PACKED_KEY = f"{PACKED}_pkey"


def _series_column() -> sa.Column[str]:
    return sa.Column("series", sa.String(length=32), nullable=False, server_default="loss")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        # SQLite can't change a primary key in place: batch mode copies the table. The copy
        # starts from the reflected key column, so SQLAlchemy warns that the key it is given
        # is wider, which is the point.
        with (
            warnings.catch_warnings(),
            op.batch_alter_table(PACKED, recreate="always") as batch,
        ):
            warnings.filterwarnings("ignore", "Table .* specifies columns", sa.exc.SAWarning)
            batch.add_column(_series_column())
            batch.create_primary_key(PACKED_KEY, ["experiment_id", "series"])
    else:
        # One transaction: no reader sees the table without its key.
        op.drop_constraint(PACKED_KEY, PACKED, type_="primary")
        op.add_column(PACKED, _series_column())
        op.create_primary_key(PACKED_KEY, PACKED, ["experiment_id", "series"])
    op.create_table(
        "series_points",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id", "series", "step"),
    )
    op.create_table(
        "experiment_samples",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("labels", sa.LargeBinary(), nullable=False),
        sa.Column("pixels", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id", "step"),
    )


def downgrade() -> None:
    op.drop_table("experiment_samples")
    op.drop_table("series_points")
    # Packed series other than the classifier's have no place in the old key.
    op.execute(sa.text(f"DELETE FROM {PACKED} WHERE series <> 'loss'"))
    if _sqlite():
        with op.batch_alter_table(PACKED, recreate="always") as batch:
            batch.drop_column("series")
        return
    op.drop_constraint(PACKED_KEY, PACKED, type_="primary")
    op.drop_column(PACKED, "series")
    op.create_primary_key(PACKED_KEY, PACKED, ["experiment_id"])
