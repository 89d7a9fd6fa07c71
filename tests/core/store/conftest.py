"""Fixtures of the store tests: an empty database of either kind, for the migration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_schema, drop_schema, postgres_schema_url, require_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty SQLite file, or of an empty schema of the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    require_postgres()
    schema = create_schema("trainlab_migrations")
    try:
        yield postgres_schema_url(schema)
    finally:
        drop_schema(schema)
