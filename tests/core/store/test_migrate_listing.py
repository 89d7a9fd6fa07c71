"""Migration 0003 fills the new listing columns of experiments stored before it, from
their spec and metrics JSON, on SQLite and Postgres."""

from __future__ import annotations

import json

from sqlalchemy import text

from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from tests.core.store.helpers import migrate_to

INSERT = text(
    "INSERT INTO experiments (id, tags, spec, spec_hash, status, cancel_requested, attempt, "
    "step, total_steps, created_at, metrics) VALUES (:id, '[]', :spec, 'h', :status, false, 0, "
    "0, 0, :created, :metrics)"
)


def test_upgrade_copies_dataset_and_metrics_into_columns(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            migrate_to(connection, empty_database, "0001")
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
        upgrade_to_head(empty_database)
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
