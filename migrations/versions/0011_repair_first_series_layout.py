"""A store that ran 0010's first version gets the layout 0010 gives now.

Revision ID: 0011
Revises: 0010

0010's first version keyed `loss_points` by (experiment_id, series, step) and kept every named
series' points there. 0010 as it stands leaves that table's key (experiment_id, step) alone,
because the previous release's workers insert with ON CONFLICT on it during an upgrade, and
puts the other series' points in `series_points`. A store that ran the first version carries
revision 0010 without that layout, and every insert of either release fails on it. Here such a
store gets it: the named series' points move to `series_points`, and `loss_points` gets its
key back without the series column (which no release's code reads). A store whose 0010 was
the present one is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POINTS = "loss_points"
NAMED = "series_points"


def _first_layout() -> bool:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(POINTS)}
    return "series" in columns


def _foreign_key() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE")


def upgrade() -> None:
    if not _first_layout():
        return
    if not sa.inspect(op.get_bind()).has_table(NAMED):
        op.create_table(
            NAMED,
            sa.Column("experiment_id", sa.String(), nullable=False),
            sa.Column("series", sa.String(length=32), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("value", sa.Float(), nullable=False),
            _foreign_key(),
            sa.PrimaryKeyConstraint("experiment_id", "series", "step"),
        )
    op.execute(
        sa.text(
            f"INSERT INTO {NAMED} (experiment_id, series, step, value) "
            f"SELECT experiment_id, series, step, value FROM {POINTS} WHERE series <> 'loss'"
        )
    )
    op.execute(sa.text(f"DELETE FROM {POINTS} WHERE series <> 'loss'"))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite can't change a primary key in place: copy into a table of 0001's shape.
        op.create_table(
            f"_new_{POINTS}",
            sa.Column("experiment_id", sa.String(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("value", sa.Float(), nullable=False),
            _foreign_key(),
            sa.PrimaryKeyConstraint("experiment_id", "step", name=f"{POINTS}_pkey"),
        )
        op.execute(
            sa.text(
                f'INSERT INTO "_new_{POINTS}" (experiment_id, step, value) '
                f"SELECT experiment_id, step, value FROM {POINTS}"
            )
        )
        op.drop_table(POINTS)
        op.rename_table(f"_new_{POINTS}", POINTS)
        return
    # One transaction: no reader sees the table without its key.
    op.drop_constraint(f"{POINTS}_pkey", POINTS, type_="primary")
    op.drop_column(POINTS, "series")
    op.create_primary_key(f"{POINTS}_pkey", POINTS, ["experiment_id", "step"])


def downgrade() -> None:
    """Nothing to undo: the layout it leaves is 0010's."""
