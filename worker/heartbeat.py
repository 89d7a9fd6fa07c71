"""The worker's live link to the store while a run trains: one thread per run.

The thread beats every flush interval: it records the step reached and the time, and reads
back whether a cancel was asked for. The beat comes from a thread rather than from the
training loop so that a long dataset load or evaluation doesn't look like a dead worker to the
reaper. The same thread writes the engine's loss points and checkpoints, which the training
thread only queues (worker/writer.py): training no longer waits for a transaction per flush,
and a flush that finds a beat due carries it in its own transaction (one round trip, not two).
Every write names this attempt so that a superseded attempt can no longer change the
experiment. While the store is away the writes wait (worker/store_link.py), the queue fills
and the training thread blocks on it: the run pauses. A beat that fails on its own is simply
made again at the next interval.

The run is asked to stop (`should_stop`) when any of these holds, and `interruption` says
which, for the job to settle the run accordingly: another attempt owns the experiment, the
store stayed away past the patience, the store refused a write for good, a cancel was asked
for, or this worker is shutting down and hands the run back. The job calls `drain` before it
writes the outcome, so that every queued write is in (or known to have failed) first.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum

from sqlmodel import Session

from core.store import artifacts, runs, series_points
from core.store.faults import describe, is_transient
from core.store.session import session_scope
from worker.store_link import StoreGone, StoreLink, StoreRefused
from worker.writer import (
    DEFAULT_CAPACITY,
    Checkpoint,
    LossBatch,
    LossPoints,
    RunQueue,
    Stop,
    Taken,
)

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
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.link = link
        self.experiment_id = experiment_id
        self.attempt = attempt
        self.interval_s = interval_s
        self.cancel_requested = False
        # Where the run trains, recorded with the next beat once the runner knows it.
        self.device: str | None = None
        # time.monotonic() when the engine was called for this run (the job's claim_s phase).
        self.engine_started: float | None = None
        # Seconds the training loop waited at rungs for a sweep's verdicts (worker/rungs.py):
        # part of the engine's train_s, but the service's time, not training.
        self.held_s = 0.0
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
        self._queue = RunQueue(capacity)
        self._next_beat = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{experiment_id[:8]}", daemon=True
        )

    def start(self, *, beat: bool = True) -> None:
        """Beat once (unless `beat` is false), then start the thread. A first attempt needs
        no beat here: its claim has just set heartbeat_at, and its step (0) and planned steps
        are stored already; the beat would only make a tiny run wait a round trip."""
        if beat:
            try:
                self._beat()
            except Exception as exc:  # the thread beats again in a moment
                self._beat_failed(exc)
        self._thread.start()

    def drain(self) -> None:
        """Wait until every loss point and checkpoint queued so far is written (or dropped,
        once the run may write nothing more): the outcome must come after them."""
        if self._thread.is_alive():
            self._queue.join()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        if self._thread.is_alive() and not self._done.is_set():
            self._done.set()
            self._queue.put(Stop())
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

    # Engine callbacks (the training thread) ----------------------------------------------

    def set_progress(self, step: int, total: int) -> None:
        self._step, self._total = step, total

    def should_stop(self) -> bool:
        return self.interruption is not None

    def write_loss(self, steps: list[int], values: list[float]) -> None:
        if steps and self._may_write():
            self._put(LossPoints(list(steps), list(values)))

    def write_series(self, series: str, steps: list[int], values: list[float]) -> None:
        """Points of a named series (a kind that records several: the GAN's)."""
        if steps and self._may_write():
            self._put(LossPoints(list(steps), list(values), series))

    def write_checkpoint(self, data: bytes, step: int) -> None:
        if self._may_write():
            self._put(Checkpoint(data, step))

    def _put(self, item: LossPoints | Checkpoint) -> None:
        if not self._thread.is_alive():  # not started (or stopped): write it here and now
            self._write(LossBatch([item]) if isinstance(item, LossPoints) else item)
            return
        self._queue.put(item)  # blocks while the queue is full: the run pauses

    def _may_write(self) -> bool:
        return not self.lost and self.store_error is None

    # The store thread ---------------------------------------------------------------------

    def _run(self) -> None:
        self._next_beat = time.monotonic() + self.interval_s
        while True:
            item, count = self._queue.take(timeout=self._next_beat - time.monotonic())
            try:
                if isinstance(item, Stop):
                    return
                if item is not None and self._may_write():  # else dropped: see _may_write
                    self._write(item)
            finally:  # every item done, whatever happened: the job's drain waits for them
                self._queue.done(count)
            if time.monotonic() >= self._next_beat:
                try:
                    self._beat()
                except Exception as exc:  # a store hiccup must not kill the thread
                    self._beat_failed(exc)

    def _write(self, item: Taken) -> None:
        if isinstance(item, LossBatch):
            beat = time.monotonic() >= self._next_beat
            what = f"loss points up to step {item.steps[-1]}"
            answer = self._try(what, lambda session: self._write_points(session, item, beat))
            if isinstance(answer, tuple):  # the beat went with the points
                self._beat_answered(*answer)
            if len(item.parts) > 1 and isinstance(self.store_error, StoreRefused):
                # Refused together: write part by part, up to the one the store refuses.
                self.store_error = None
                for part in item.parts:
                    if self._may_write():
                        self._write(LossBatch([part]))
        elif isinstance(item, Checkpoint):
            owner = self._try(
                f"the checkpoint at step {item.step}",
                lambda session: artifacts.save_checkpoint(
                    session, self.experiment_id, self.attempt, item.step, item.data
                ),
            )
            if owner is False:
                self.lost = True

    def _write_points(
        self, session: Session, item: LossBatch, beat: bool
    ) -> tuple[bool, bool] | None:
        # One insert per series (the classifier has one: one insert, as before).
        for name, parts in itertools.groupby(item.parts, key=lambda part: part.series):
            batch = LossBatch(list(parts))
            series_points.append_loss(
                session, self.experiment_id, self.attempt, batch.steps, batch.values, name
            )
        # The owner's row is locked already (append_loss checks the attempt under that lock),
        # so a beat due now costs one UPDATE more, not a transaction of its own.
        return self._beat_in(session) if beat else None

    def _try(self, what: str, write: Callable[[Session], object]) -> object:
        try:
            return self.link.run(what, write)
        except (StoreGone, StoreRefused) as exc:
            logger.warning("experiment %s: %s; stopping the run", self.experiment_id, exc)
            self.store_error = exc
        except Exception as exc:
            # Not the store's fault (a value the driver can't bind, say): on the training
            # thread it would have failed the run with its reason, and so it does from here.
            logger.exception("experiment %s: writing %s raised", self.experiment_id, what)
            self.store_error = StoreRefused(what, exc)
        return None

    # The beat -----------------------------------------------------------------------------

    def _beat_failed(self, exc: Exception) -> None:
        if not is_transient(exc):
            logger.exception("heartbeat for %s failed", self.experiment_id)
        elif not self._beat_failing:  # once per outage, not once a second
            logger.warning("heartbeat for %s failed: %s", self.experiment_id, describe(exc))
        self._beat_failing = True

    def _beat(self) -> None:
        with session_scope(self.link.engine) as session:
            answer = self._beat_in(session)
        self._beat_answered(*answer)

    def _beat_in(self, session: Session) -> tuple[bool, bool]:
        # The next one is due an interval from now, whether this one succeeds or not.
        self._next_beat = time.monotonic() + self.interval_s
        return runs.heartbeat(
            session,
            self.experiment_id,
            self.attempt,
            step=self._step,
            total_steps=self._total,
            device=self.device,
        )

    def _beat_answered(self, owner: bool, cancel: bool) -> None:
        self._beat_failing = False
        if not owner:
            self.lost = True
        self.cancel_requested = cancel
