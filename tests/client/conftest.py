"""Client tests: trainlab.Client against the real app under a real uvicorn (in a thread) on
a real store (SQLite and PostgreSQL, as tests/api); finished runs are written as a worker
writes them (RecordedRuns)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.app import create_app
from core.keys import Role
from core.settings import Settings
from core.store import keys
from core.store.session import session_scope
from tests.api.live_server import serving
from tests.api.recorded_runs import RecordedRuns
from tests.conftest import free_port
from trainlab import Client


def serve(settings: Settings, **updates: object) -> Iterator[str]:
    app = create_app(
        settings.model_copy(update={"trusted_hosts": ["127.0.0.1"], **updates}), lifespan_hooks=[]
    )
    with serving(app, free_port()) as url:
        yield url


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    yield from serve(settings)


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(base_url=server) as client:
        yield client


@pytest.fixture
def runs(engine: Engine) -> RecordedRuns:
    return RecordedRuns(engine)


def make_key(engine: Engine, name: str, role: Role) -> str:
    with session_scope(engine) as session:
        _, token = keys.create_key(session, name, role)
    return token


@pytest.fixture
def guarded_server(settings: Settings) -> Iterator[str]:
    """A server that requires a key on every request."""
    yield from serve(settings, auth="required")


@pytest.fixture
def state_dir(settings: Settings) -> Path:
    return Path(settings.state_dir)
