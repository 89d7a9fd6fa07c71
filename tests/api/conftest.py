"""API and store tests run twice: against a migrated SQLite file and against a fresh schema in
the real PostgreSQL server. The broker is the real embedded one (kombu's SQLAlchemy transport
on a SQLite file), so a submitted experiment's message can be read back from it.

Each test gets the process settings pointed at that database and broker (TRAINLAB_* set, the
cached settings cleared), because the store, dispatch and reaper read the process settings.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlmodel import SQLModel

from core.store.migrate import upgrade_to_head
from core.store.session import dispose_engines, get_engine
from api.app import create_app
from core.settings import Settings, get_settings
from tests.api.app_client import AppClient, app_client
from tests.conftest import POSTGRES_URL, require_postgres
from worker.celery_app import RUN_EXPERIMENT_TASK

ADMIN_URL = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")


def postgres_schema_url(schema: str) -> str:
    """The test database with `schema` first on the search path: tables, alembic_version and
    every query land there, so this run never touches what other suites keep in `public`."""
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def create_schema(prefix: str) -> str:
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def drop_schema(schema: str) -> None:
    dispose_engines()  # pooled connections would keep the schema busy
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database migrated to head with Alembic, once per backend for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'trainlab.db'}"
        upgrade_to_head(url)
        yield url
        dispose_engines()
        return
    require_postgres()
    schema = create_schema("trainlab_api")
    url = postgres_schema_url(schema)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        drop_schema(schema)


@pytest.fixture(scope="session")
def broker_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("broker") / "broker.db"


@pytest.fixture
def settings(
    database_url: str, broker_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """The process settings for one test: its database, the embedded broker, a state dir."""
    monkeypatch.setenv("TRAINLAB_DATABASE_URL", database_url)
    monkeypatch.setenv("TRAINLAB_BROKER_URL", f"sqla+sqlite:///{broker_db}")
    monkeypatch.setenv("TRAINLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TRAINLAB_MAX_BODY_BYTES", str(64 * 1024))
    get_settings.cache_clear()
    _empty_tables(get_engine())
    yield get_settings()
    get_settings.cache_clear()


def _empty_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return get_engine()


@pytest.fixture
def client(settings: Settings) -> Iterator[AppClient]:
    # No lifespan hooks: a background reaper would race the tests' own state changes.
    with app_client(create_app(settings, lifespan_hooks=[])) as api:
        yield api


@dataclass(frozen=True)
class BrokerMessage:
    task: str
    args: list[str]
    queue: str


@pytest.fixture
def broker_messages(broker_db: Path) -> Iterator[BrokerMessageReader]:
    yield BrokerMessageReader(broker_db)


class BrokerMessageReader:
    """Reads what the embedded broker holds: the kombu_message rows of the SQLAlchemy
    transport, decoded as Celery's task protocol (task name and args in the headers)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[BrokerMessage]:
        if not self.path.exists():
            return []
        connection = sqlite3.connect(self.path)
        try:
            rows = connection.execute(
                "SELECT q.name, m.payload FROM kombu_message m "
                "JOIN kombu_queue q ON q.id = m.queue_id"
            ).fetchall()
        finally:
            connection.close()
        messages = []
        for queue, payload in rows:
            message = json.loads(payload)
            assert message["properties"]["body_encoding"] == "base64"
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            messages.append(BrokerMessage(task=message["headers"]["task"], args=args, queue=queue))
        return messages

    def runs_for(self, experiment_id: str) -> list[BrokerMessage]:
        return [
            m for m in self.all() if m.task == RUN_EXPERIMENT_TASK and m.args == [experiment_id]
        ]
