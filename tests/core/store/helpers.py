"""Putting experiments into given states through the store, as a worker would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from alembic import command
from sqlalchemy import Connection, Engine, update

from core.presets import build_spec
from core.store import experiments, runs, series_points
from core.store.clock import utcnow
from core.store.migrate import alembic_config
from core.store.models import Experiment, Status
from core.store.session import session_scope
from core.store.tables import EXPERIMENTS

SMALL = {"epochs": 1, "train_limit": 2000, "test_limit": 500}


def queued(engine: Engine, **overrides: Any) -> str:
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(
            session, build_spec("seed-adam", SMALL | overrides)
        )
        return experiment.id


def running(engine: Engine, **overrides: Any) -> tuple[str, int]:
    experiment_id = queued(engine, **overrides)
    with session_scope(engine) as session:
        attempt = runs.claim(session, experiment_id, worker="test:1", stale_after_s=60)
    assert attempt is not None
    return experiment_id, attempt


def write_loss(engine: Engine, experiment_id: str, attempt: int, steps: Any, values: Any) -> int:
    with session_scope(engine) as session:
        return series_points.append_loss(session, experiment_id, attempt, list(steps), list(values))


def predictions(records: int, seed: int = 0) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    outputs = rng.random((records, 10)).astype(np.float32)
    labels = rng.integers(0, 10, records).astype(np.uint8)
    return {
        "outputs": outputs,
        "labels": labels,
        "predicted": outputs.argmax(axis=1).astype(np.uint8),
    }


def finish(
    engine: Engine,
    experiment_id: str,
    attempt: int,
    status: Status = Status.succeeded,
    with_predictions: dict[str, Any] | None = None,
    **kwargs: Any,
) -> bool:
    arrays = with_predictions or {"outputs": None, "labels": None, "predicted": None}
    with session_scope(engine) as session:
        return runs.finish(
            session,
            experiment_id,
            attempt,
            status=status,
            metrics=kwargs.pop("metrics", {"test_accuracy": 0.9}),
            fingerprint=kwargs.pop("fingerprint", {"torch": "test"}),
            **arrays,
            **kwargs,
        )


def backdate(
    engine: Engine,
    experiment_id: str,
    *,
    heartbeat_s: float = 0,
    created_s: float = 0,
    dispatched_s: float = 0,
    finished_s: float = 0,
) -> None:
    """Move the experiment's last heartbeat, creation, last message and/or end `seconds` into
    the past, as if its worker had gone silent that long ago, it had been submitted that long
    ago, its message had gone to the broker that long ago, or it had ended that long ago."""
    values: dict[str, Any] = {}
    if heartbeat_s:
        values["heartbeat_at"] = utcnow() - timedelta(seconds=heartbeat_s)
    if created_s:
        values["created_at"] = utcnow() - timedelta(seconds=created_s)
    if dispatched_s:
        values["dispatched_at"] = utcnow() - timedelta(seconds=dispatched_s)
    if finished_s:
        values["finished_at"] = utcnow() - timedelta(seconds=finished_s)
    with session_scope(engine) as session:
        session.execute(update(EXPERIMENTS).where(EXPERIMENTS.c.id == experiment_id).values(values))


def read(engine: Engine, experiment_id: str) -> Experiment:
    with session_scope(engine) as session:
        return experiments.require_experiment(session, experiment_id)


def migrate_to(connection: Connection, url: str, revision: str) -> None:
    """Migrate the database at `url` to `revision` on `connection`, inside its transaction, so
    a test can write rows of that older schema in the same go before migrating on."""
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
