"""Rungs of any kind of job: a figures column beside the classifier's two.

Revision ID: 0016
Revises: 0015

A classifier's rung reports validation accuracy and loss (its two columns, as before); a GAN's
reports its judge's figures (label entropy, confidence, Fréchet distance, correlation, share
as requested), which a GAN sweep's pruner reads. They go in `figures` (JSON), and the two
classifier columns become nullable. Expand-only: rows already stored keep their values.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiment_rungs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("figures", sa.JSON(), nullable=True))
        batch_op.alter_column("validation_accuracy", existing_type=sa.Float(), nullable=True)
        batch_op.alter_column("validation_loss", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # A GAN's rungs have no classifier figures: they cannot stay once the columns refuse NULL.
    op.execute("DELETE FROM experiment_rungs WHERE validation_accuracy IS NULL")
    with op.batch_alter_table("experiment_rungs", schema=None) as batch_op:
        batch_op.alter_column("validation_loss", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("validation_accuracy", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("figures")
