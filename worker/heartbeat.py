"""The worker's live link to the store while a run trains.

A background thread beats every flush interval: it records the step reached and the time, and
reads back whether a cancel was asked for. The beat comes from a thread rather than from the
training loop so that a long dataset load or evaluation doesn't look like a dead worker to the
reaper. The engine's callbacks (loss points, checkpoints) write from the training thread, each
write naming this attempt so that a superseded attempt can no longer change the experiment.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from core import store

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        engine: Engine,
        experiment_id: str,
        attempt: int,
        interval_s: float,
        *,
        step: int,
        total_steps: int,
    ) -> None:
        self.engine = engine
        self.experiment_id = experiment_id
        self.attempt = attempt
        self.interval_s = interval_s
        self.cancel_requested = False
        # Where the run trains, recorded with the next beat once the runner knows it.
        self.device: str | None = None
        # Set when the store no longer names this attempt as the owner (the reaper requeued
        # the experiment and another worker claimed it): stop, and write nothing more.
        self.lost = False
        self._step = step
        self._total = total_steps
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{experiment_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    # Engine callbacks -------------------------------------------------------------------

    def set_progress(self, step: int, total: int) -> None:
        self._step, self._total = step, total

    def should_stop(self) -> bool:
        return self.cancel_requested or self.lost

    def write_loss(self, steps: list[int], values: list[float]) -> None:
        if self.lost or not steps:
            return
        with store.session_scope(self.engine) as session:
            store.append_loss(session, self.experiment_id, self.attempt, steps, values)

    def write_checkpoint(self, data: bytes, step: int) -> None:
        if self.lost:
            return
        with store.session_scope(self.engine) as session:
            store.save_checkpoint(session, self.experiment_id, self.attempt, step, data)

    # The beat -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                self._beat()
            except Exception:  # a store hiccup must not kill the beat; the next one retries
                logger.exception("heartbeat for %s failed", self.experiment_id)

    def _beat(self) -> None:
        with store.session_scope(self.engine) as session:
            owner, cancel = store.heartbeat(
                session,
                self.experiment_id,
                self.attempt,
                step=self._step,
                total_steps=self._total,
                device=self.device,
            )
        if not owner:
            self.lost = True
        self.cancel_requested = cancel
