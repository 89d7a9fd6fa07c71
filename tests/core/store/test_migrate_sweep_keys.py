"""Migration 0012 adds sweeps' Idempotency-Key column, expand only, on SQLite and Postgres: a
sweep stored before it keeps its row, without a key; keyless sweeps stay many, and a key is
stored once (a second sweep with it is refused, as two racing retries need)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from tests.core.store.helpers import migrate_to

INSERT = text(
    "INSERT INTO sweeps (id, status, request, base, space, seeds, sampler, pruner, objective, "
    "max_trials, parallel, rungs, sampler_seed, created_at) VALUES (:id, 'running', '{}', "
    "'{}', '{}', '[0, 1]', 'tpe', 'paired', 'validation_accuracy', 4, 2, 3, 7, "
    "'2026-01-01 00:00:00+00:00')"
)
KEYED = text(
    "INSERT INTO sweeps (id, status, request, base, space, seeds, sampler, pruner, objective, "
    "max_trials, parallel, rungs, sampler_seed, created_at, idempotency_key) VALUES (:id, "
    "'running', '{}', '{}', '{}', '[0]', 'tpe', 'paired', 'validation_accuracy', 1, 1, 1, 0, "
    "'2026-01-02 00:00:00+00:00', 'k-1')"
)


def test_upgrade_keeps_earlier_sweeps_and_keys_are_unique(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            migrate_to(connection, empty_database, "0011")
            connection.execute(INSERT, {"id": "a" * 32})
        upgrade_to_head(empty_database)
        with engine.begin() as connection:
            connection.execute(INSERT, {"id": "b" * 32})  # a second sweep without a key
            connection.execute(KEYED, {"id": "c" * 32})
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(KEYED, {"id": "d" * 32})
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT id, max_trials, idempotency_key FROM sweeps ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in found] == [
        ("a" * 32, 4, None),
        ("b" * 32, 4, None),
        ("c" * 32, 1, "k-1"),
    ]
