"""A delivery that trains a group, in this process against the real store and engine: the
queued seeds of one structure are claimed together, train fused, and each ends with exactly
the series it has alone; a fault of one member fails that member only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine

from core.presets import build_spec
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import artifacts, experiments, runs, series
from core.store.session import session_scope
from tests.core.store.helpers import read
from worker.fused_job import run_delivery

TINY = {"epochs": 1, "train_limit": 200, "test_limit": 50, "device": "cpu"}


@pytest.fixture
def worker_settings(settings: Settings, mnist_dir: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": mnist_dir,
            "allow_download": False,
            "torch_threads": 1,
            "flush_interval_s": 0.05,
            "max_fused_runs": 4,
        }
    )


def _queue(engine: Engine, preset: str, **overrides: object) -> str:
    with session_scope(engine) as session:
        spec = build_spec(preset, {**TINY, **overrides})
        return experiments.create_experiment(session, spec)[0].id


def _series(engine: Engine, experiment_id: str) -> list[float]:
    with session_scope(engine) as session:
        return series.read_series(session, experiment_id)[1].tolist()


def _alone(experiment_id: str, engine: Engine, mnist_dir: Path) -> list[float]:
    from worker.engine import RunCallbacks, run_training

    with session_scope(engine) as session:
        spec = ExperimentSpec.model_validate(
            experiments.require_experiment(session, experiment_id).spec
        )
    values: list[float] = []
    run_training(
        spec,
        data_dir=mnist_dir,
        threads=1,
        callbacks=RunCallbacks(on_loss=lambda _, v: values.extend(v)),
    )
    return values


def test_an_arms_seeds_train_fused_and_each_ends_as_it_would_alone(
    engine: Engine, worker_settings: Settings, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = [_queue(engine, "seed-baseline", seed=s) for s in range(3)]
    other = _queue(engine, "seed-adam", seed=9)  # another structure: not in this group
    validated: list[object] = []
    original = ExperimentSpec.model_validate
    with monkeypatch.context() as patched:
        patched.setattr(
            ExperimentSpec,
            "model_validate",
            lambda *a, **k: validated.append(a) or original(*a, **k),
        )
        outcome = run_delivery(seeds[0], engine, worker_settings)
    assert outcome.count("succeeded") == 3, outcome
    # Each member's stored spec is validated once, when it is claimed; candidates for the
    # group are chosen by their stored group key, not by validating their specs.
    assert len(validated) == 3, validated
    for experiment_id in seeds:
        done = read(engine, experiment_id)
        assert done.status == "succeeded" and done.attempt == 1
        assert _series(engine, experiment_id) == _alone(experiment_id, engine, mnist_dir)
    assert read(engine, other).status == "queued"
    # The seeds' own messages, delivered later, stand for the other run.
    assert run_delivery(seeds[1], engine, worker_settings) == "succeeded"
    assert read(engine, other).status == "succeeded"


def test_a_fault_of_one_member_fails_that_member_only(
    engine: Engine, worker_settings: Settings
) -> None:
    good, broken = (_queue(engine, "seed-baseline", seed=s) for s in (1, 2))
    # A checkpoint that isn't one: the engine refuses it when the group is prepared.
    with session_scope(engine) as session:
        attempt = runs.claim(session, broken, worker="w", stale_after_s=60)
        assert attempt is not None
        artifacts.save_checkpoint(session, broken, attempt, 10, b"not a checkpoint")
        assert runs.requeue(session, broken, expected_attempt=attempt)
    outcome = run_delivery(good, engine, worker_settings)
    assert read(engine, good).status == "succeeded", outcome
    failed = read(engine, broken)
    assert failed.status == "failed" and "checkpoint" in str(failed.error).lower()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_run_on_a_worker_without_cuda_fails_at_once(
    engine: Engine, worker_settings: Settings
) -> None:
    """Not a lost worker three times over: the first delivery ends it `failed`, saying why,
    and takes no sibling along (each fails on its own delivery the same way)."""
    first, second = (
        _queue(engine, "seed-adam", device="cuda"),
        _queue(engine, "seed-adam", device="cuda"),
    )
    assert run_delivery(first, engine, worker_settings) == "failed"
    failed = read(engine, first)
    assert failed.status == "failed" and failed.attempt == 1
    assert "this worker has no CUDA device" in str(failed.error)
    assert read(engine, second).status == "queued"
    assert run_delivery(second, engine, worker_settings) == "failed"
    assert "this worker has no CUDA device" in str(read(engine, second).error)
