"""Migration 0006 fills `planned_steps` and `group_key` of experiments stored before it from
their spec, on SQLite and Postgres: the values submit would store now, and for a spec that no
longer validates 0 steps and a NULL key (which matches no other run's key)."""

from __future__ import annotations

import json

from sqlalchemy import text

from core.presets import build_spec
from core.spec import group_key
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine
from tests.core.store.helpers import migrate_to

INSERT = text(
    "INSERT INTO experiments (id, tags, spec, spec_hash, status, cancel_requested, attempt, "
    "step, total_steps, created_at, cost) VALUES (:id, '[]', :spec, 'h', 'queued', false, 0, "
    "0, 0, '2026-01-01 00:00:00+00:00', 0)"
)


def test_upgrade_fills_planned_steps_and_group_key_from_the_spec(empty_database: str) -> None:
    small = build_spec("seed-adam", {"epochs": 1, "train_limit": 100, "seed": 1})
    sibling = build_spec("seed-adam", {"epochs": 1, "train_limit": 100, "seed": 2})
    wider = build_spec("seed-adam", {"epochs": 2, "model": {"hidden": [100]}})
    specs = {
        "a" * 32: small.model_dump(mode="json"),
        "b" * 32: sibling.model_dump(mode="json"),
        "c" * 32: wider.model_dump(mode="json"),
        "d" * 32: {**small.model_dump(mode="json"), "epochs": -3},  # no longer validates
    }
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            migrate_to(connection, empty_database, "0005")
            for row_id, spec in specs.items():
                connection.execute(INSERT, {"id": row_id, "spec": json.dumps(spec)})
        upgrade_to_head(empty_database)
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT id, planned_steps, group_key FROM experiments ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert small.total_steps > 0 and wider.total_steps != small.total_steps
    assert group_key(small) == group_key(sibling) != group_key(wider)
    assert [tuple(r) for r in found] == [
        ("a" * 32, small.total_steps, group_key(small)),
        ("b" * 32, sibling.total_steps, group_key(sibling)),
        ("c" * 32, wider.total_steps, group_key(wider)),
        ("d" * 32, 0, None),
    ]
