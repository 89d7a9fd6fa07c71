"""Shared test setup: where MNIST is, the real services some tests need, and the store the
core, API and worker tests run against.

A test that needs PostgreSQL or Redis fails in CI (CI=true) when the service is down, so a
broken CI machine can't pass by skipping; on a developer's machine it skips with the reason.

Store-backed tests run twice: against a migrated SQLite file and against a fresh schema in the
real PostgreSQL server. Settings are built as objects (never through os.environ), and every
engine is made from them and handed on, as the application does.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy import Engine
from sqlmodel import SQLModel

from core.settings import Settings
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine

REPO = Path(__file__).resolve().parent.parent
# The processes the tests start (`python -m cli ...`, serve's embedded worker) import this
# checkout's packages by their top-level names, which no install provides (setup.py keeps
# them under trainlab._server, an editable install too): they find them on PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
# Tests never download: they read the MNIST files laid out beside the checkout.
TEST_DATA_DIR = Path(os.environ.get("TEST_DATA_DIR", REPO.parent / "shared" / "data"))
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Test stacks lease databases 1..15 of the same server (see lease_redis_database).


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _require(what: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{what} is not reachable at {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide it (see .ci/run)")
    pytest.skip(message)


def require_postgres() -> None:
    _require("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    _require("Redis", "127.0.0.1", 6379)


def require_mnist() -> Path:
    if not (TEST_DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        message = f"MNIST files not found under {TEST_DATA_DIR}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return TEST_DATA_DIR


def lease_redis_database() -> str:
    """A Redis database number no other live test stack on this machine uses: two stacks
    sharing a broker would take each other's messages."""
    base = REDIS_URL.rsplit("/", 1)[0]
    leases = redis.Redis.from_url(f"{base}/0")
    for number in range(1, 16):
        if leases.set(f"trainlab:test-lease:{number}", os.getpid(), nx=True, ex=3600):
            return f"{base}/{number}"
    raise RuntimeError("all Redis databases 1..15 are leased by other test stacks")


def release_redis_database(url: str) -> None:
    base, number = url.rsplit("/", 1)
    redis.Redis.from_url(f"{base}/0").delete(f"trainlab:test-lease:{number}")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return require_mnist()


def make_settings(**values: Any) -> Settings:
    """Settings for a test: the given values over the defaults, with no .env file read.
    Polled answers are read every time unless a test asks otherwise (poll_fresh_s): most
    tests change the store directly, as a worker would, and read the change back at once."""
    values.setdefault("poll_fresh_s", 0.0)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


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
        return
    require_postgres()
    schema = create_schema("trainlab_tests")
    url = postgres_schema_url(schema)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        drop_schema(schema)


@pytest.fixture(scope="session")
def _session_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(_session_engine: Engine) -> Engine:
    """The test database's engine, every table emptied first."""
    with _session_engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())
    return _session_engine


@pytest.fixture(scope="session")
def broker_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("broker") / "broker.db"


@pytest.fixture
def settings(database_url: str, broker_db: Path, tmp_path: Path, engine: Engine) -> Settings:
    """One test's settings: its database (emptied), the embedded broker, a state dir."""
    return make_settings(
        database_url=database_url,
        broker_url=f"sqla+sqlite:///{broker_db}",
        state_dir=tmp_path / "state",
        max_body_bytes=64 * 1024,
    )
