"""The Alembic chain builds exactly the schema the models describe, on SQLite and Postgres,
and goes down again cleanly. `schema_differences` is what `alembic check` compares."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlmodel import SQLModel

from core.store.migrate import (
    OUTSIDE_MODELS,
    downgrade_to_base,
    head_revision,
    schema_differences,
    schema_state,
)
from core.store.session import make_engine


def test_upgrade_matches_models_and_downgrade_removes_all(empty_database: str) -> None:
    from core.store.migrate import upgrade_to_head

    engine = make_engine(empty_database)
    try:
        assert schema_state(engine).problem == "database not migrated: run `trainlab migrate`"
        upgrade_to_head(empty_database)
        upgrade_to_head(empty_database)  # a second run is a no-op
        state = schema_state(engine)
        assert state.ready and state.current == head_revision()
        tables = set(inspect(engine).get_table_names())
        # PostgreSQL also keeps the counts its triggers write (migration 0017).
        outside = OUTSIDE_MODELS if engine.dialect.name == "postgresql" else set()
        assert tables == set(SQLModel.metadata.tables) | {"alembic_version"} | outside
        assert {"ablations", "ablation_members"} <= tables
        assert schema_differences(engine) == []

        downgrade_to_base(empty_database)
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert schema_state(engine).current is None
    finally:
        engine.dispose()
