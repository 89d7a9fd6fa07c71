"""Putting experiments into given states through the store, as a worker would."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Engine

from core import store
from core.store.models import Status
from core.store.session import session_scope
from core.presets import build_spec

SMALL = {"epochs": 1, "train_limit": 2000, "test_limit": 500}


def queued(engine: Engine, **overrides: Any) -> str:
    with session_scope(engine) as session:
        experiment, _ = store.create_experiment(session, build_spec("seed-adam", SMALL | overrides))
        return experiment.id


def running(engine: Engine, **overrides: Any) -> tuple[str, int]:
    experiment_id = queued(engine, **overrides)
    with session_scope(engine) as session:
        attempt = store.claim(session, experiment_id, worker="test:1", stale_after_s=60)
    assert attempt is not None
    return experiment_id, attempt


def write_loss(engine: Engine, experiment_id: str, attempt: int, steps: Any, values: Any) -> int:
    with session_scope(engine) as session:
        return store.append_loss(session, experiment_id, attempt, list(steps), list(values))


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
        return store.finish(
            session,
            experiment_id,
            attempt,
            status=status,
            metrics=kwargs.pop("metrics", {"test_accuracy": 0.9}),
            fingerprint=kwargs.pop("fingerprint", {"torch": "test"}),
            **arrays,
            **kwargs,
        )
