"""Migration 0003 fills the new listing columns of experiments stored before it, from
their spec and metrics JSON, on SQLite and Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from core.store.migrate import alembic_config, upgrade_to_head
from core.store.session import make_engine
from tests.conftest import create_schema, drop_schema, postgres_schema_url, require_postgres

INSERT = text(
    "INSERT INTO experiments (id, tags, spec, spec_hash, status, cancel_requested, attempt, "
    "step, total_steps, created_at, metrics) VALUES (:id, '[]', :spec, 'h', :status, false, 0, "
    "0, 0, :created, :metrics)"
)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    require_postgres()
    schema = create_schema("trainlab_listing")
    try:
        yield postgres_schema_url(schema)
    finally:
        drop_schema(schema)


def test_upgrade_copies_dataset_and_metrics_into_columns(database: str) -> None:
    engine = make_engine(database)
    try:
        with engine.begin() as connection:
            config = alembic_config(database)
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            rows = [
                (
                    "a" * 32,
                    {"dataset": "fashion-mnist"},
                    "succeeded",
                    {"test_accuracy": 0.91, "final_loss": 0.12, "test_loss": 0.2},
                ),
                ("b" * 32, {}, "failed", {"test_accuracy": None, "final_loss": "x"}),
                ("c" * 32, {"dataset": "mnist"}, "queued", None),
            ]
            for row_id, spec, status, metrics in rows:
                connection.execute(
                    INSERT,
                    {
                        "id": row_id,
                        "spec": json.dumps(spec),
                        "status": status,
                        "created": "2026-01-01 00:00:00+00:00",
                        "metrics": None if metrics is None else json.dumps(metrics),
                    },
                )
        upgrade_to_head(database)
        with engine.connect() as connection:
            found = connection.execute(
                text(
                    "SELECT id, dataset, test_accuracy, final_loss, test_loss FROM experiments "
                    "ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in found] == [
        ("a" * 32, "fashion-mnist", 0.91, 0.12, 0.2),
        ("b" * 32, "mnist", None, None, None),  # the spec's default dataset; junk is no number
        ("c" * 32, "mnist", None, None, None),
    ]
