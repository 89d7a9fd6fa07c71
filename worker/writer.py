"""The queue between a run's training thread and its store thread (worker/heartbeat.py).

The engine hands over loss points and checkpoints about once a second; writing them on the
training thread made training wait for every transaction (tens of milliseconds each on
PostgreSQL, more while other runs write), and on a 2-core machine that is time taken from the
run. So the training thread only puts them here, and the run's one store thread writes them.

What the queue keeps:
- order: one FIFO, one consumer. A checkpoint at step S always follows the points up to S
  (the engine flushes points before it checkpoints), and a resumed attempt drops the points
  after its checkpoint, so the stored series has no gap even if the worker dies in between.
- a bound: `put` blocks when `capacity` items wait. While the store is away the store thread
  sits in a retried write, the queue fills and training pauses, instead of memory growing.
  Checkpoints (up to TRAINLAB_MAX_CHECKPOINT_BYTES each) come at most every checkpoint
  interval, so the bound in items also bounds the bytes held in practice.
- batching: consecutive loss items already waiting are taken together, for one transaction.
- drain: `join` returns once every item put so far has been written or thrown away.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

# Items waiting at most: ~half a minute of flushes at the default interval, a few MB of points.
DEFAULT_CAPACITY = 32
# Loss items merged into one transaction at most (bounds one INSERT's size after an outage).
MAX_BATCH = 64


@dataclass(frozen=True)
class LossPoints:
    steps: list[int]
    values: list[float]
    series: str = "loss"  # core.store.models.DEFAULT_SERIES: the classifier's one series


@dataclass(frozen=True)
class LossBatch:
    """Consecutive loss items, written in one transaction; `parts` are the items as queued
    (a batch the store refuses is written again part by part, so the points before the
    refused one still go in, as they would have unbatched)."""

    parts: list[LossPoints]

    @property
    def steps(self) -> list[int]:
        return [step for part in self.parts for step in part.steps]

    @property
    def values(self) -> list[float]:
        return [value for part in self.parts for value in part.values]


@dataclass(frozen=True)
class Checkpoint:
    data: bytes
    step: int


class Stop:
    """Put last by the owner: the store thread ends once everything before it is written."""


Item = LossPoints | Checkpoint | Stop
Taken = LossBatch | Checkpoint | Stop


class RunQueue:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=capacity)
        # An item taken out of the queue but not yet handed back through `take` (the first
        # item after a batch of loss points): kept in order for the next take.
        self._held: Item | None = None
        self._lock = threading.Lock()

    def put(self, item: Item) -> None:
        """Blocks while the queue is full (back-pressure on the training thread)."""
        self._queue.put(item)

    def join(self) -> None:
        """Wait until every item put so far has been taken and marked done."""
        self._queue.join()

    def take(self, timeout: float) -> tuple[Taken | None, int]:
        """The next item, consecutive loss points taken together as one batch: (None, 0)
        when nothing came within `timeout`. The count is how many queued items it stands
        for; the store thread hands it to `done` once they are written."""
        with self._lock:  # one consumer; the lock only documents it
            first = self._held
            self._held = None
            if first is None:
                try:
                    first = self._queue.get(timeout=max(timeout, 0.0))
                except queue.Empty:
                    return None, 0
            if not isinstance(first, LossPoints):
                return first, 1
            parts = [first]
            while len(parts) < MAX_BATCH:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(following, LossPoints):
                    self._held = following  # written after this batch, in order
                    break
                parts.append(following)
            return LossBatch(parts), len(parts)

    def done(self, count: int) -> None:
        for _ in range(count):
            self._queue.task_done()
