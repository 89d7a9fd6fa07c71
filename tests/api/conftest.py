"""API tests: the real app (routing, middleware, handlers, the database) through httpx, and
the real embedded broker (kombu's SQLAlchemy transport on a SQLite file), so a submitted
experiment's message can be read back from it."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.app import create_app
from core.broker import RUN_EXPERIMENT_TASK
from core.settings import Settings
from tests.api.app_client import AppClient, app_client
from tests.api.recorded_runs import RecordedRuns

# The Host httpx sends through its ASGI transport (tests/api/app_client.py). The server answers
# only to the names it is told, so the tests tell it this one, as a deployment would its own.
TEST_HOST = "testserver"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings, trusting the test client's host name."""
    return settings.model_copy(update={"trusted_hosts": [TEST_HOST]})


@pytest.fixture
def client(settings: Settings) -> Iterator[AppClient]:
    # No lifespan hooks: a background reaper would race the tests' own state changes.
    with app_client(create_app(settings, lifespan_hooks=[])) as api:
        yield api


@pytest.fixture
def guarded(settings: Settings) -> Iterator[AppClient]:
    """A client of the app as a shared server runs it: every request needs a key."""
    with app_client(
        create_app(settings.model_copy(update={"auth": "required"}), lifespan_hooks=[])
    ) as api:
        yield api


@pytest.fixture
def runs(engine: Engine) -> RecordedRuns:
    return RecordedRuns(engine)


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


@pytest.fixture
def big_body_client(settings: Settings) -> Iterator[AppClient]:
    """The test app with the default 1 MiB body limit (the shared settings lower it)."""
    roomy = settings.model_copy(update={"max_body_bytes": 4 * 1_048_576})
    with app_client(create_app(roomy, lifespan_hooks=[])) as api:
        yield api
