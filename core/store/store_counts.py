"""The experiments' counts that PostgreSQL's writes keep (migration 0017): triggers on
`experiments` append a row of deltas per change, and a figure is its column's sum.

`store_counts` is not among the models: it exists on PostgreSQL only, and no code writes it
but the triggers and `fold`, so it stays out of SQLModel's metadata (and so out of the tests'
emptying of every table, which the triggers count like any deletion). Rows pile up as runs are
created and end; a reader that finds more than FOLD_ROWS of them folds them into one, in one
statement, so every sum stays a read of a few rows and a concurrent reader sees the same sums
before and after.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Select,
    Table,
    delete,
    func,
    insert,
    select,
)
from sqlmodel import Session

STORE_COUNTS = Table(
    "store_counts",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("experiments", BigInteger, nullable=False),
    Column("ended", BigInteger, nullable=False),
    Column("ended_changes", BigInteger, nullable=False),
)
_C = STORE_COUNTS.c

# Rows a sum may read before a reader folds them (a sum of 1,000 rows takes ~0.1 ms).
FOLD_ROWS = 1_000


def _sum(column: Any) -> Any:
    return func.coalesce(func.sum(column), 0)


def experiments_total() -> Any:
    """How many experiments there are, as a scalar subquery."""
    return select(_sum(_C.experiments)).scalar_subquery()


# How many rows a sum reads now (a reader folds them past FOLD_ROWS).
ROWS = select(func.count()).select_from(STORE_COUNTS).scalar_subquery()
# (changes to the ended experiments ever: it only grows; rows)
ENDED_VERSION: Select[Any] = select(_sum(_C.ended_changes), func.count())


def fold_if_many(session: Session, rows: int) -> None:
    """Fold when a read found more than FOLD_ROWS rows, in a transaction of its own (the
    reader's may never commit)."""
    if rows > FOLD_ROWS:
        with session.get_bind().engine.begin() as connection:
            fold(connection)


def fold(connection: Connection) -> None:
    """Replace the rows by one row of their sums, in one statement: rows inserted meanwhile by
    transactions not yet committed are not seen, so they stay and still count."""
    gone = delete(STORE_COUNTS).returning(_C.experiments, _C.ended, _C.ended_changes).cte()
    summed = select(_sum(gone.c.experiments), _sum(gone.c.ended), _sum(gone.c.ended_changes))
    connection.execute(
        insert(STORE_COUNTS).from_select(["experiments", "ended", "ended_changes"], summed)
    )
