"""Schema upgrades (Alembic) from inside trainlab: `trainlab migrate`, the tests, and the
readiness check that tells an operator the database still needs `trainlab migrate`.

The app never creates tables itself: a schema that drifted from the migrations would be found
only in production, so the one way to a schema is the migration chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.store.session import make_engine


def migrations_dir() -> Path:
    """The migration scripts, found as the installed `migrations` package (package data), so
    an installed wheel migrates as well as a checkout does."""
    return Path(str(files("migrations")))


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config, built here rather than read from alembic.ini (which a wheel does not
    carry); `url` overrides the settings' database URL."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["keep_logging"] = True
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Bring the database at `url` to the latest schema."""
    _with_engine(url, lambda config: command.upgrade(config, "head"))


def downgrade_to_base(url: str) -> None:
    """Drop every table the migrations created (tests, and starting over)."""
    _with_engine(url, lambda config: command.downgrade(config, "base"))


def _with_engine(url: str, run: Any) -> None:
    config = alembic_config(url)
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


# Tables the migrations keep that no model describes: written by PostgreSQL triggers only
# (core/store/store_counts.py). Autogenerate leaves them alone.
OUTSIDE_MODELS = frozenset({"store_counts"})
# The trigger functions that write them (PostgreSQL), which dropping the tables leaves behind.
FUNCTIONS = ("trainlab_count_experiments",)


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    return not (type_ == "table" and name in OUTSIDE_MODELS)


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models: empty when the
    migrations and api/db/models.py agree."""
    with engine.connect() as connection:
        opts = {"compare_type": True, "include_name": include_name}
        context = MigrationContext.configure(connection, opts=opts)
        diffs: list[Any] = compare_metadata(context, SQLModel.metadata)
        return diffs
