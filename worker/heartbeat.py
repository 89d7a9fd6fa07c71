"""The worker's live link to the store while a run trains.

A background thread beats every flush interval: it records the step reached and the time, and
reads back whether a cancel was asked for. The beat comes from a thread rather than from the
training loop so that a long dataset load or evaluation doesn't look like a dead worker to the
reaper. The engine's callbacks (loss points, checkpoints) write from the training thread
through the job's StoreLink, each write naming this attempt so that a superseded attempt can
no longer change the experiment. While the store is away those writes wait (the run pauses);
a beat that fails is simply made again at the next interval.

The run is asked to stop (`should_stop`) when any of these holds, and `interruption` says
which, for the job to settle the run accordingly: another attempt owns the experiment, the
store stayed away past the patience, the store refused a write for good, a cancel was asked
for, or this worker is shutting down and hands the run back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import Enum

from core import store
from core.store.faults import describe, is_transient
from worker.store_link import StoreGone, StoreLink, StoreRefused

logger = logging.getLogger(__name__)


class Interruption(Enum):
    lost = "another attempt owns the experiment now"
    store_gone = "the store stayed unreachable"
    refused = "the store refused a write"
    cancelled = "a cancel was asked for"
    handed_back = "the worker is shutting down"


def _never() -> bool:
    return False


class Heartbeat:
    def __init__(
        self,
        link: StoreLink,
        experiment_id: str,
        attempt: int,
        interval_s: float,
        *,
        step: int,
        total_steps: int,
        shutting_down: Callable[[], bool] = _never,
    ) -> None:
        self.link = link
        self.experiment_id = experiment_id
        self.attempt = attempt
        self.interval_s = interval_s
        self.cancel_requested = False
        # Where the run trains, recorded with the next beat once the runner knows it.
        self.device: str | None = None
        # Set when the store no longer names this attempt as the owner (the reaper requeued
        # the experiment and another worker claimed it): stop, and write nothing more.
        self.lost = False
        # The store's fault that stopped the run, if any (the job must not fail the run for
        # StoreGone; it fails it with the reason for StoreRefused).
        self.store_error: StoreGone | StoreRefused | None = None
        self._shutting_down = shutting_down
        self._step = step
        self._total = total_steps
        self._beat_failing = False
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{experiment_id[:8]}", daemon=True
        )

    def start(self) -> None:
        try:
            self._beat()
        except Exception as exc:  # the thread beats again in a moment
            self._beat_failed(exc)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    @property
    def interruption(self) -> Interruption | None:
        if self.lost:
            return Interruption.lost
        if isinstance(self.store_error, StoreGone):
            return Interruption.store_gone
        if isinstance(self.store_error, StoreRefused):
            return Interruption.refused
        if self.cancel_requested:
            return Interruption.cancelled
        if self._shutting_down():
            return Interruption.handed_back
        return None

    # Engine callbacks -------------------------------------------------------------------

    def set_progress(self, step: int, total: int) -> None:
        self._step, self._total = step, total

    def should_stop(self) -> bool:
        return self.interruption is not None

    def write_loss(self, steps: list[int], values: list[float]) -> None:
        if not steps or not self._may_write():
            return
        self._write(
            f"loss points up to step {steps[-1]}",
            lambda session: store.append_loss(
                session, self.experiment_id, self.attempt, steps, values
            ),
        )

    def write_checkpoint(self, data: bytes, step: int) -> None:
        if not self._may_write():
            return
        owner = self._write(
            f"the checkpoint at step {step}",
            lambda session: store.save_checkpoint(
                session, self.experiment_id, self.attempt, step, data
            ),
        )
        if owner is False:
            self.lost = True

    def _may_write(self) -> bool:
        return not self.lost and self.store_error is None

    def _write(self, what: str, write: Callable[..., object]) -> object:
        try:
            return self.link.run(what, write)
        except (StoreGone, StoreRefused) as exc:
            logger.warning("experiment %s: %s; stopping the run", self.experiment_id, exc)
            self.store_error = exc
            return None

    # The beat -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                self._beat()
            except Exception as exc:  # a store hiccup must not kill the beat; the next one retries
                self._beat_failed(exc)

    def _beat_failed(self, exc: Exception) -> None:
        if not is_transient(exc):
            logger.exception("heartbeat for %s failed", self.experiment_id)
        elif not self._beat_failing:  # once per outage, not once a second
            logger.warning("heartbeat for %s failed: %s", self.experiment_id, describe(exc))
        self._beat_failing = True

    def _beat(self) -> None:
        with store.session_scope(self.link.engine) as session:
            owner, cancel = store.heartbeat(
                session,
                self.experiment_id,
                self.attempt,
                step=self._step,
                total_steps=self._total,
                device=self.device,
            )
        self._beat_failing = False
        if not owner:
            self.lost = True
        self.cancel_requested = cancel
