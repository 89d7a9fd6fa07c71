"""The worker's half of the kinds: every kind core declares has an engine entry, the
classifier's is the engine's own, and a spec is trained by its kind's entry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import kinds
from core.spec import ExperimentSpec
from tests.fake_kind import FAKE, FakeSpec
from worker import kinds as worker_kinds
from worker.engine import Predictions, RunResult, run_training, run_training_group


def _result(steps: int) -> RunResult:
    empty = np.zeros(0, np.uint8)
    return RunResult(
        status="completed", steps=steps, total_steps=steps, metrics={},
        predictions=Predictions(np.zeros((0, 10), np.float32), empty, empty),
        fingerprint={}, checkpoint=b"", device="cpu",
    )  # fmt: skip


class FakeEngine:
    """Trains nothing; remembers what it was asked to train."""

    def __init__(self) -> None:
        self.trained: list[Any] = []

    def run(self, spec: Any, *, data_dir: Path, **_: Any) -> RunResult:
        self.trained.append(spec)
        return _result(spec.steps)

    def run_group(self, specs: Sequence[Any], *, data_dir: Path, **_: Any) -> list[RunResult]:
        return [self.run(spec, data_dir=data_dir) for spec in specs]


def test_every_kind_has_an_engine_entry() -> None:
    assert set(worker_kinds.engine_names()) == set(kinds.names())
    entry = worker_kinds.engine_for(ExperimentSpec())
    assert (entry.run, entry.run_group) == (run_training, run_training_group)


def test_a_spec_is_trained_by_its_kinds_entry(tmp_path: Path) -> None:
    engine = FakeEngine()
    entry = worker_kinds.EngineEntry(run=engine.run, run_group=engine.run_group)
    with kinds.registered(FAKE), worker_kinds.registered("fake", entry):
        spec = kinds.parse({"kind": "fake", "steps": 4})
        result = worker_kinds.engine_for(spec).run(spec, data_dir=tmp_path)
        results = worker_kinds.engine_for(spec).run_group([spec, spec], data_dir=tmp_path)
    assert result.steps == 4 and len(results) == 2
    assert engine.trained == [spec] * 3


def test_a_kind_without_an_engine_entry_is_refused() -> None:
    refused = pytest.raises(kinds.UnknownKindError, match=r"'fake' has no engine entry")
    with kinds.registered(FAKE), refused:
        worker_kinds.engine_for(FakeSpec(kind="fake"))
    with pytest.raises(kinds.UnknownKindError, match="spec model of no registered kind"):
        worker_kinds.engine_for(FakeSpec(kind="fake"))
