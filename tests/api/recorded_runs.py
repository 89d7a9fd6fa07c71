"""Experiments written through the store's own functions, the way a worker writes them
(create, claim, append loss, heartbeat, finish), so API tests of summaries, curves and
predictions need no training run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine

from core.presets import build_spec
from core.spec import ExperimentSpec
from core.store import artifacts, experiments, runs, series_points
from core.store.models import Status
from core.store.session import session_scope


@dataclass(frozen=True)
class Recorded:
    id: str
    steps: list[int]
    values: list[float]
    outputs: np.ndarray


def default_series(spec: ExperimentSpec, seed_offset: float) -> tuple[list[int], list[float]]:
    steps = [spec.log_every * (i + 1) for i in range(spec.loss_points)]
    values = [1.0 / (1 + 0.01 * s) + seed_offset for s in steps]
    return steps, values


class RecordedRuns:
    """Writes runs into the store at `engine`, as a worker would."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(
        self,
        spec: ExperimentSpec,
        *,
        name: str | None = None,
        preset: str | None = None,
        owner: str | None = None,
    ) -> tuple[str, int]:
        """A created and claimed (running) experiment: returns (id, attempt)."""
        with session_scope(self.engine) as session:
            experiment, _ = experiments.create_experiment(
                session, spec, name=name, preset=preset, owner=owner
            )
            experiment_id = experiment.id
        with session_scope(self.engine) as session:
            attempt = runs.claim(session, experiment_id, worker="test", stale_after_s=3600)
        assert attempt is not None
        return experiment_id, attempt

    def write_points(
        self, experiment_id: str, attempt: int, steps: list[int], values: list[float], total: int
    ) -> None:
        with session_scope(self.engine) as session:
            series_points.append_loss(session, experiment_id, attempt, steps, values)
            runs.heartbeat(session, experiment_id, attempt, step=steps[-1], total_steps=total)

    def finished_run(
        self,
        spec: ExperimentSpec,
        *,
        accuracy: float,
        final_loss: float,
        series: tuple[list[int], list[float]] | None = None,
        predicted: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        name: str | None = None,
        preset: str | None = None,
        metrics: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> Recorded:
        """A succeeded experiment with the given metrics, loss series and predictions (labels
        default to record index mod 10; predictions default to the labels)."""
        experiment_id, attempt = self.start(spec, name=name, preset=preset, owner=owner)
        steps, values = series or default_series(spec, accuracy)
        self.write_points(experiment_id, attempt, steps, values, spec.total_steps)
        records = spec.test_records
        if labels is None:
            labels = (np.arange(records) % 10).astype(np.uint8)
        labels = labels[:records].astype(np.uint8)
        guess = labels.copy() if predicted is None else predicted.astype(np.uint8)
        outputs = np.full((records, 10), 0.05, dtype=np.float32)
        outputs[np.arange(records), guess] = 0.9
        with session_scope(self.engine) as session:
            done = runs.finish(
                session,
                experiment_id,
                attempt,
                status=Status.succeeded,
                metrics={"test_accuracy": accuracy, "final_loss": final_loss, **(metrics or {})},
                fingerprint={},
                outputs=outputs,
                labels=labels,
                predicted=guess,
                step=spec.total_steps,
            )
        assert done
        return Recorded(experiment_id, steps, values, outputs)


def small_spec(preset: str = "seed-baseline", **overrides: object) -> ExperimentSpec:
    return build_spec(preset, {"epochs": 1, "train_limit": 200, "test_limit": 50, **overrides})


def finished_judge(recorded: RecordedRuns, owner: str | None = None) -> str:
    """A finished MNIST classifier with a model file: what may judge a GAN."""
    experiment_id, attempt = recorded.start(small_spec("seed-layernorm"), owner=owner)
    with session_scope(recorded.engine) as session:
        assert artifacts.save_model(
            session, experiment_id, attempt, step=200, data=b"weights", keep_checkpoint=False
        )
        assert runs.finish(
            session, experiment_id, attempt, status=Status.succeeded, metrics={}, step=200
        )
    return experiment_id
