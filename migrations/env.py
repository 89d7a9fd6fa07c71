"""Alembic environment: the target schema is SQLModel's metadata (api/db/models.py), and the
URL comes from the trainlab settings unless the caller (api/db/migrate.py) passes one."""

from __future__ import annotations

import logging.config

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.settings import get_settings
from core.store.migrate import include_name
from core.store.session import make_engine

config = context.config
# Called from the command line: log as alembic.ini says. Called from trainlab (migrate.py):
# leave the application's logging alone.
if config.config_file_name and not config.attributes.get("keep_logging"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _url() -> str:
    url: str | None = config.attributes.get("url")
    return url or get_settings().effective_database_url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        include_name=include_name,
        # SQLite can't ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
