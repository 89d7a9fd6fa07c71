"""Named loss series, and a GAN run's samples.

Revision ID: 0010
Revises: 0009

A kind of job may record several loss series (the GAN's discriminator and generator): loss
points and packed series are keyed by a series name too. Existing rows are the classifier's
one series, "loss", the column's default. Samples of a GAN's fixed seeds get a table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = {
    "loss_points": ["experiment_id", "series", "step"],
    "experiment_series": ["experiment_id", "series"],
}


def _columns(table: str, named: bool) -> list[sa.Column[object]]:
    key: list[sa.Column[object]] = [sa.Column("experiment_id", sa.String(), nullable=False)]
    if named:
        key.append(
            sa.Column("series", sa.String(length=32), nullable=False, server_default="loss")
        )
    if table == "loss_points":
        rest = [
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("value", sa.Float(), nullable=False),
        ]
    else:
        rest = [
            sa.Column("points", sa.Integer(), nullable=False),
            sa.Column("steps", sa.LargeBinary(), nullable=False),
            sa.Column("values", sa.LargeBinary(), nullable=False),
        ]
    return key + rest


def _rekey(table: str, keys: list[str], named: bool) -> None:
    """Give `table` the primary key `keys`, with (named) or without the series column."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLite can't change a primary key in place: copy into a new table.
        columns = _columns(table, named)
        names = [column.name for column in columns]
        op.create_table(
            f"_new_{table}",
            *columns,
            sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint(*keys, name=f"{table}_pkey"),
        )
        copied = [name for name in names if name != "series"]
        listed = ", ".join(f'"{name}"' for name in copied)
        op.execute(sa.text(f'INSERT INTO "_new_{table}" ({listed}) SELECT {listed} FROM {table}'))
        op.drop_table(table)
        op.rename_table(f"_new_{table}", table)
        return
    op.drop_constraint(f"{table}_pkey", table, type_="primary")
    if named:
        op.add_column(
            table, sa.Column("series", sa.String(length=32), nullable=False, server_default="loss")
        )
    else:
        op.drop_column(table, "series")
    op.create_primary_key(f"{table}_pkey", table, keys)


def upgrade() -> None:
    for table, keys in _KEYS.items():
        _rekey(table, keys, named=True)
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
    # Points of series other than the classifier's have no place in the old key.
    for table in _KEYS:
        op.execute(sa.text(f"DELETE FROM {table} WHERE series <> 'loss'"))
    _rekey("loss_points", ["experiment_id", "step"], named=False)
    _rekey("experiment_series", ["experiment_id"], named=False)
