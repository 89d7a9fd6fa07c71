"""Core table handles for the store's set-based statements (conditional UPDATEs, bulk
inserts), which bypass the ORM unit of work on purpose: each is one statement, one round trip."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table
from sqlmodel import SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


EXPERIMENTS = _table("experiments")
LOSS = _table("loss_points")
SERIES = _table("experiment_series")
PREDICTIONS = _table("experiment_predictions")
CHECKPOINTS = _table("experiment_checkpoints")


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE/DELETE or written by an INSERT (never negative)."""
    return max(int(cast(CursorResult[Any], result).rowcount), 0)
