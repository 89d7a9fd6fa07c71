"""Experiments with a really trained network in the store: the engine trains a tiny spec on
the CPU (once per spec per test session), and the outcome is written as the job writes it
(final weights, predictions, finish), so model and predict endpoints answer from real weights."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import Engine

from core.presets import build_spec
from core.spec import ExperimentSpec
from core.store import artifacts, experiments, runs
from core.store.models import Status
from core.store.session import session_scope
from tests.conftest import require_mnist
from worker.artifacts import final_weights
from worker.engine import RunResult, run_training
from worker.engine.data import load_dataset

TINY: dict[str, Any] = {"epochs": 1, "train_limit": 400, "test_limit": 100, "device": "cpu"}


@dataclass(frozen=True)
class TrainedRun:
    id: str
    spec: ExperimentSpec
    result: RunResult
    test_x: np.ndarray  # the evaluated test records' pixels [records, 784]


@functools.cache
def _train(spec_json: str) -> RunResult:
    spec = ExperimentSpec.model_validate_json(spec_json)
    return run_training(spec, data_dir=require_mnist(), allow_download=False, threads=1)


def trained_run(engine: Engine, name: str | None = None, **overrides: Any) -> TrainedRun:
    spec = build_spec("seed-adam", TINY | overrides)
    result = _train(spec.canonical_json())
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(session, spec, name=name)
    with session_scope(engine) as session:
        attempt = runs.claim(session, experiment.id, worker="test", stale_after_s=3600)
        assert attempt is not None
    with session_scope(engine) as session:
        weights = final_weights(spec, result, experiment_id=experiment.id)
        assert artifacts.save_model(
            session, experiment.id, attempt, step=result.steps, data=weights, keep_checkpoint=False
        )
        assert runs.finish(
            session,
            experiment.id,
            attempt,
            status=Status.succeeded,
            metrics=result.metrics,
            outputs=result.predictions.outputs,
            labels=result.predictions.labels,
            predicted=result.predictions.predicted,
            step=result.steps,
        )
    data = load_dataset("mnist", Path(require_mnist()), torch.device("cpu"), allow_download=False)
    return TrainedRun(experiment.id, spec, result, data.test_x[: spec.test_records].numpy())
