"""How a training run talks to its caller: plain callables, no DB, Celery or HTTP here.

The engine calls these about every `flush_interval_s` seconds (and once at the end), never
per step, so a caller can persist live progress without slowing the loop down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt


def _noop(*_: Any) -> None:
    return None


def _never() -> bool:
    return False


def _no_model(_: str) -> bytes | None:
    return None


@dataclass
class RunCallbacks:
    # New loss points, in step order, never repeated within one run: (steps, values).
    on_loss: Callable[[list[int], list[float]], None] = _noop
    # Optimizer steps done so far, of the run's total.
    on_progress: Callable[[int, int], None] = _noop
    # Asked at every flush; True ends the run early with the series so far.
    should_stop: Callable[[], bool] = _never
    # A checkpoint (bytes from worker.engine.checkpoint) and the step it was taken at.
    on_checkpoint: Callable[[bytes, int], None] = _noop
    # At each of the spec's validation rungs: the step and {step, fraction,
    # validation_accuracy, validation_loss} on the held-out records.
    on_rung: Callable[[int, dict[str, float]], None] = _noop
    # New points of a named series, for kinds that record several (the GAN's discriminator
    # and generator): (series, steps, values), in step order within each series.
    on_series: Callable[[str, list[int], list[float]], None] = _noop
    # Another experiment's stored model file by id (a GAN's judge classifier); None if none.
    load_model: Callable[[str], bytes | None] = _no_model


@dataclass
class Predictions:
    """Outputs for every evaluated test record, in record order."""

    outputs: npt.NDArray[np.float32]  # [records, 10]
    labels: npt.NDArray[np.uint8]  # [records]
    predicted: npt.NDArray[np.uint8]  # [records]

    @classmethod
    def none(cls) -> Predictions:
        """No evaluated records: a GAN, or a run that skipped the test set."""
        return cls(np.zeros((0, 10), np.float32), np.zeros(0, np.uint8), np.zeros(0, np.uint8))


@dataclass
class RunResult:
    status: Literal["completed", "stopped"]
    steps: int
    total_steps: int
    # test_accuracy, test_loss, per_class_accuracy, confusion_matrix, train_seconds,
    # steps_per_second, final_loss, loss_points
    metrics: dict[str, Any]
    predictions: Predictions
    fingerprint: dict[str, Any]
    checkpoint: bytes
    device: str
    extra: dict[str, Any] = field(default_factory=dict)
    # Wall seconds of this process's part of the run, for the caller's phase timings:
    # load_s (dataset, model, resume, batches), train_s (the loop, the group's for a fused
    # run), evaluate_s (test metrics and outputs), save_s (the final checkpoint's bytes).
    timings: dict[str, float] = field(default_factory=dict)
    # The network's final state dict (CPU copies; the checkpoint's model state), so the
    # caller makes the weights file without reading the checkpoint back; None: read it there.
    final_state: dict[str, Any] | None = None
