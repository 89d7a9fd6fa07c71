"""Liveness, readiness (database schema and broker), a broker that is down at submit time,
and the catch-all that keeps stack traces away from clients."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.app import create_app
from core.settings import Settings
from core.store import experiments
from core.store.session import session_scope
from tests.api.app_client import AppClient, app_client
from tests.core.store.helpers import SMALL


def test_healthz_and_readyz(client: AppClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok"},
        "auth": "open",
    }


def test_readyz_names_an_unmigrated_database(settings: Settings, tmp_path: Path) -> None:
    unmigrated = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    with app_client(create_app(unmigrated, lifespan_hooks=[])) as api:
        response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == (
        "database not migrated: run `trainlab migrate`"
    )
    assert response.json()["checks"]["broker"] == "ok"


def _broker_down(settings: Settings) -> Settings:
    # Nothing listens on port 1: connections are refused at once.
    return settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})


def test_readyz_names_an_unreachable_broker(settings: Settings) -> None:
    with app_client(create_app(_broker_down(settings), lifespan_hooks=[])) as api:
        response = api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")
    assert "broker" in body["detail"]


def test_submit_with_the_broker_down_keeps_the_experiment(
    settings: Settings, engine: Engine
) -> None:
    with app_client(create_app(_broker_down(settings), lifespan_hooks=[])) as api:
        response = api.post("/experiments", json={"preset": "seed-adam", "overrides": SMALL})
    assert response.status_code == 201, response.text
    with session_scope(engine) as session:
        stored = experiments.get_experiment(session, response.json()["id"])
        assert stored is not None and stored.status == "queued"
        # Never handed to the broker: the reaper finds it by this and sends it later.
        assert stored.dispatched_at is None


def test_unexpected_errors_are_a_plain_500_and_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, lifespan_hooks=[])

    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR), app_client(app) as api:
        response = api.get("/explode")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error; it has been logged on the server"}
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert any("RuntimeError on GET /explode" in r.getMessage() for r in caplog.records)


def test_openapi_documents_the_endpoints(client: AppClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/experiments",
        "/experiments/{experiment_id}",
        "/experiments/{experiment_id}/loss",
        "/experiments/{experiment_id}/predictions",
        "/experiments/{experiment_id}/cancel",
        "/healthz",
        "/readyz",
    ):
        assert path in paths
