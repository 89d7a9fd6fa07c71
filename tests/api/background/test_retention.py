"""The retention pass as the served app runs it (a lifespan hook beside the reaper): a run
whose deletion waited for its end is removed soon after it ends, and ended runs lose their
per-point loss rows and checkpoints while their curves still read the same."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from api.app import create_app, retention_hook
from core.settings import Settings
from core.store.models import Status
from tests.api.app_client import AppClient, app_client
from tests.core.store.helpers import finish, read, running
from tests.core.store.test_retention import full_run, rows_of


@pytest.fixture
def sweeping_client(settings: Settings) -> Iterator[AppClient]:
    fast = settings.model_copy(update={"retention_interval_s": 0.05})
    with app_client(create_app(fast, lifespan_hooks=[retention_hook])) as api:
        yield api


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_pass_deletes_waiting_runs_and_compacts_ended_ones(
    sweeping_client: AppClient, engine: Engine
) -> None:
    done = full_run(engine)
    curve = sweeping_client.get(f"/experiments/{done}/loss").json()
    assert wait_until(lambda: rows_of(engine, done)["loss_points"] == 0)
    assert rows_of(engine, done)["experiment_checkpoints"] == 0
    assert sweeping_client.get(f"/experiments/{done}/loss").json() == curve

    busy, attempt = running(engine, seed=1)
    answer = sweeping_client.request("DELETE", f"/experiments/{busy}", params={"cancel": True})
    assert answer.status_code == 202
    time.sleep(0.2)
    assert read(engine, busy).status == "running"  # still running: still there
    assert finish(engine, busy, attempt, status=Status.cancelled)
    assert wait_until(lambda: rows_of(engine, busy)["experiments"] == 0)
