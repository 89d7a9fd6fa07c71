"""Schema upgrades (Alembic) from inside trainlab: `trainlab migrate`, the tests, and the
readiness check that tells an operator the database still needs `trainlab migrate`.

The app never creates tables itself: a schema that drifted from the migrations would be found
only in production, so the one way to a schema is the migration chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

import api.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from api.db.session import make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATIONS_DIR = REPO_ROOT / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config for this checkout; `url` overrides the settings' database URL."""
    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["keep_logging"] = True
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade_to_head(url: str | None = None) -> None:
    """Bring the database at `url` (default: the settings') to the latest schema."""
    _with_engine(url, lambda config: command.upgrade(config, "head"))


def downgrade_to_base(url: str | None = None) -> None:
    """Drop every table the migrations created (tests, and starting over)."""
    _with_engine(url, lambda config: command.downgrade(config, "base"))


def _with_engine(url: str | None, run: Any) -> None:
    config = alembic_config(url)
    if url is None:
        run(config)
        return
    # One connection for the whole run, so an in-memory SQLite database survives it.
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            run(config)
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def ready(self) -> bool:
        return self.current == self.head

    @property
    def problem(self) -> str | None:
        if self.ready:
            return None
        if self.current is None:
            return "database not migrated: run `trainlab migrate`"
        return (
            f"database schema is at revision {self.current}, this version needs {self.head}: "
            "run `trainlab migrate`"
        )


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        return SchemaState(current=current_revision(connection), head=head_revision())


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models: empty when the
    migrations and api/db/models.py agree."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs: list[Any] = compare_metadata(context, SQLModel.metadata)
        return diffs
