"""Helpers for engine tests: small CPU runs that record everything the callbacks saw."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.presets import build_spec
from core.spec import ExperimentSpec

# Small enough for 2 cores: a few hundred batch-1 steps take well under a second.
SMALL: dict[str, Any] = {"epochs": 1, "train_limit": 600, "test_limit": 500, "device": "cpu"}


def small_spec(preset: str | None = None, **overrides: Any) -> ExperimentSpec:
    return build_spec(preset, {**SMALL, **overrides})


@dataclass
class Recorder:
    """Callbacks that keep what they were given; `stop_at` stops the run at that step."""

    stop_at: int | None = None
    chunks: list[tuple[list[int], list[float]]] = field(default_factory=list)
    progress: list[tuple[int, int]] = field(default_factory=list)
    checkpoints: list[tuple[bytes, int]] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        return [s for chunk, _ in self.chunks for s in chunk]

    @property
    def values(self) -> list[float]:
        return [v for _, chunk in self.chunks for v in chunk]

    def callbacks(self) -> Any:
        from worker.engine import RunCallbacks

        return RunCallbacks(
            on_loss=lambda steps, values: self.chunks.append((list(steps), list(values))),
            on_progress=lambda step, total: self.progress.append((step, total)),
            should_stop=self._should_stop,
            on_checkpoint=lambda data, step: self.checkpoints.append((data, step)),
        )

    def _should_stop(self) -> bool:
        done = self.progress[-1][0] if self.progress else 0
        return self.stop_at is not None and done >= self.stop_at


RunFn = Callable[..., tuple[Any, Recorder]]


@pytest.fixture
def run(mnist_dir: Path) -> RunFn:
    """run(spec, stop_at=None, **run_training kwargs) -> (RunResult, Recorder).

    With `stop_at`, callbacks fire after every step (flush_interval_s=0), so the run stops at
    exactly that step, whatever the machine's speed."""

    def _run(
        spec: ExperimentSpec, *, stop_at: int | None = None, **kwargs: Any
    ) -> tuple[Any, Recorder]:
        from worker.engine import run_training

        recorder = Recorder(stop_at=stop_at)
        if stop_at is not None:
            kwargs.setdefault("flush_interval_s", 0.0)
        kwargs.setdefault("threads", 1)
        result = run_training(spec, data_dir=mnist_dir, callbacks=recorder.callbacks(), **kwargs)
        return result, recorder

    return _run
