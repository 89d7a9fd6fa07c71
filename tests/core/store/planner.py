"""What the database's planner does with the store's own reads, for the index tests.

`filled_postgres` gives a migrated PostgreSQL schema holding enough experiments, each with
metrics JSON the size a finished run keeps (~2 kB), after VACUUM ANALYZE as autovacuum would
leave it: the planner then weighs real sizes, and reading the table is the expensive choice
an index must beat. `plans` runs a store read, captures its SQL and returns the JSON plan of
each statement on the experiments table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, event, insert
from sqlmodel import Session

from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from core.store.tables import EXPERIMENTS
from tests.conftest import (
    ADMIN_URL,
    create_schema,
    drop_schema,
    postgres_schema_url,
    require_postgres,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ("succeeded",) * 7 + ("failed", "cancelled", "running")
METRICS = {
    "confusion_matrix": [[n * 7 + k for k in range(10)] for n in range(10)],
    "per_class_accuracy": [0.9 + k / 1000 for k in range(10)],
    "note": "x" * 900,
}


def _row(n: int) -> dict[str, Any]:
    created = START + timedelta(minutes=n)
    status = STATUSES[n % len(STATUSES)]
    ended = status != "running"
    value = (n * 7919 % 1000) / 1000 if status == "succeeded" else None
    return {
        "id": f"{n:032x}", "tags": [], "spec": {"lr": 0.001}, "spec_hash": "h", "status": status,
        "cancel_requested": False, "attempt": 1, "step": n, "total_steps": n,
        "created_at": created, "started_at": created, "heartbeat_at": created,
        "finished_at": created if ended else None, "metrics": METRICS if ended else None,
        "preset": ("seed-adam", "seed-bce")[n % 2], "test_accuracy": value,
        "final_loss": None if value is None else 1 - value, "test_loss": value,
    }  # fmt: skip


@contextmanager
def filled_postgres(rows: int = 4_000) -> Iterator[Engine]:
    require_postgres()
    schema = create_schema("trainlab_planner")
    url = postgres_schema_url(schema)
    engine = make_engine(url)
    try:
        upgrade_to_head(url)
        with engine.begin() as connection:
            connection.execute(insert(EXPERIMENTS), [_row(n) for n in range(rows)])
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'VACUUM ANALYZE "{schema}".experiments')
        yield engine
    finally:
        engine.dispose()
        drop_schema(schema)


def plans(engine: Engine, read: Callable[[Session], Any]) -> list[str]:
    """The JSON plan of every statement on experiments that `read(session)` runs."""
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            read(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    found = []
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for statement, parameters in statements:
            if "experiments" in statement:
                cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
                found.append(json.dumps(cursor.fetchone()[0]))
    return found
