"""What the soak's clients know: every run they submitted and its fate (tests/integration/soak.py
acts on them), and every request they made, with its latency and any answer that was wrong.

A run's series is checked against the uninterrupted run of its spec and seed
(drills.reference_series) wherever it is read: a curve read or streamed while the run trains
is a prefix of it, a succeeded run's whole curve is exactly it, a cancelled run's a prefix.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.integration.drills import reference_series
from tests.integration.stack import TERMINAL

_RANK = {"queued": 0, "running": 1}  # every other status is an end


@dataclass
class Run:
    id: str
    body: dict[str, Any]
    # "keep" (kept to the end), "run" (left to finish, deleted some time after), "cancel", or
    # "delete" (deleted with cancel=true while unfinished).
    fate: str
    status: str = "queued"
    attempt: int = 0
    acted: bool = False  # its fate's request was sent
    gone: bool = False  # deleted, or being deleted: 404 is then a right answer
    removed: bool = False  # seen deleted (a 200 to DELETE, or a 404 since)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def series_problem(run: Run, steps: list[int], values: list[float], whole: bool) -> str | None:
    """What is wrong with a series read of `run` (None: nothing). `whole`: the run has ended
    and this is all of it, so a succeeded run's must be the reference itself."""
    want_steps, want_values = reference_series(run.body)
    got = np.asarray(values, dtype=np.float32).tolist()
    if steps != want_steps[: len(steps)] or got != want_values[: len(steps)]:
        return f"{run.id}: {len(steps)} points, not a prefix of the uninterrupted run's"
    if whole and run.status == "succeeded" and len(steps) != len(want_steps):
        return f"{run.id}: succeeded with {len(steps)} of {len(want_steps)} points"
    return None


@dataclass
class Ledger:
    runs: dict[str, Run] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, run: Run) -> None:
        with self.lock:
            self.runs[run.id] = run
            self.counts["submitted"] += 1

    def see(self, experiment: dict[str, Any]) -> None:
        """An answer's view of a run. Answers may come from either API process, one a little
        staler than the other: a status never goes back."""
        with self.lock:
            run = self.runs.get(experiment["id"])
            if run is None:
                return
            status = experiment["status"]
            if not run.finished and _RANK.get(status, 2) >= _RANK[run.status]:
                run.status = status
            run.attempt = max(run.attempt, int(experiment["attempt"]))

    def pick(self, rng: random.Random, wanted: Callable[[Run], bool]) -> Run | None:
        with self.lock:
            found = [run for run in self.runs.values() if not run.gone and wanted(run)]
        return rng.choice(found) if found else None

    def claim(self, rng: random.Random, wanted: Callable[[Run], bool]) -> Run | None:
        """Like pick, and marks the run acted on, so that no other client acts on it too."""
        with self.lock:
            found = [r for r in self.runs.values() if not r.gone and not r.acted and wanted(r)]
            if not found:
                return None
            run = rng.choice(found)
            run.acted = True
            return run

    def oldest_finished_beyond(self, keep: int) -> Run | None:
        """The oldest finished run while more than `keep` are kept (the keepers aside), marked
        gone (to delete)."""
        with self.lock:
            finished = [
                run
                for run in self.runs.values()
                if not run.gone and run.finished and run.fate != "keep"
            ]
            if len(finished) <= keep:
                return None
            finished[0].gone = True
            return finished[0]

    def unfinished(self) -> list[Run]:
        return self.runs_where(lambda run: not run.gone and not run.finished)

    def runs_where(self, wanted: Callable[[Run], bool]) -> list[Run]:
        with self.lock:
            return [run for run in self.runs.values() if wanted(run)]

    def count(self, what: str, by: int = 1) -> None:
        with self.lock:
            self.counts[what] += by


@dataclass
class Stats:
    """Latency per kind of request (ms), answers per kind and status, and every wrong one."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds * 1000)
            self.answers[(kind, status)] += 1

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)
