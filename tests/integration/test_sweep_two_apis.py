"""Two API processes on one PostgreSQL store and Redis, both driving sweeps, with a worker: one
sweep is driven by one of them at a time, under the lease (api/background/sweeps.py). The
process holding it is paused (SIGSTOP) past its lease mid-sweep, so the other takes the
sweep over, and then goes on; the sweep still ends with exactly max_trials trials, each run
in one trial and claimed once, its prunes decided again the same way from the store. The
lease, read from the store every few milliseconds throughout, never changed hands while the
holder's lease was still good."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import require_mnist, require_postgres, require_redis
from tests.integration.drills import wait_until
from tests.integration.stack import Stack, start_production
from tests.integration.sweep_live import (
    TINY_SWEEP,
    assert_ended_whole,
    create_sweep,
    wait_sweep,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEASE_S = 3.0
# (time read, by the database's clock; lease owner; lease until)
Seen = tuple[datetime, str | None, datetime | None]


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Stack]:
    require_postgres()
    require_redis()
    require_mnist()
    stack = start_production(
        tmp_path,
        settings={"TRAINLAB_SWEEP_LEASE_S": str(LEASE_S), "TRAINLAB_WORKER_CONCURRENCY": "2"},
    )
    try:
        stack.start_api_beside("api2")
        yield stack
    finally:
        stack.stop()


class LeaseWatch:
    """Reads the sweep's lease from the store every 10 ms, in a thread, until stopped."""

    def __init__(self, stack: Stack, sweep_id: str) -> None:
        url = stack.env["TRAINLAB_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
        self.connection = psycopg.connect(url, autocommit=True)
        self.sweep_id, self.seen, self.done = sweep_id, list[Seen](), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        query = "SELECT clock_timestamp(), lease_owner, lease_until FROM sweeps WHERE id = %s"
        while not self.done.is_set():
            row = self.connection.execute(query, [self.sweep_id]).fetchone()
            if row is not None:
                self.seen.append((row[0], row[1], row[2]))
            time.sleep(0.01)

    def owner(self) -> str | None:
        return self.seen[-1][1] if self.seen else None

    def stop(self) -> list[Seen]:
        self.done.set()
        self.thread.join(timeout=10)
        self.connection.close()
        return self.seen


def assert_one_holder_at_a_time(seen: list[Seen]) -> list[str]:
    """Each time the lease is seen with a new owner, the previous owner's lease (as last
    seen) had run out by then; returns the owners in the order they held it."""
    holders: list[str] = []
    until: datetime | None = None
    for at, owner, lease_until in seen:
        if owner is None:
            continue
        if holders and owner != holders[-1]:
            assert until is not None and until <= at, (holders[-1], until, owner, at)
        if not holders or owner != holders[-1]:
            holders.append(owner)
        until = lease_until
    return holders


def test_two_api_processes_drive_one_sweep_one_at_a_time(two: Stack) -> None:
    stack = two
    overrides = {**TINY_SWEEP["overrides"], "train_limit": 1500}
    sweep_id = create_sweep(stack, max_trials=4, overrides=overrides)["id"]
    watch = LeaseWatch(stack, sweep_id)
    try:
        wait_until("a driver", lambda: watch.owner() is not None, timeout=30)
        first = watch.owner()
        assert first is not None
        pid = int(first.rsplit(":", 1)[1])
        api_pids = {p.pid for p in stack.processes}
        assert pid in api_pids  # one of this stack's API processes drives it
        os.kill(pid, signal.SIGSTOP)  # paused past its lease: the other takes over
        paused = time.monotonic()
        try:
            taken = wait_until(
                "the other to take over", lambda: watch.owner() not in (None, first), timeout=60
            )
            time.sleep(LEASE_S)
        finally:
            os.kill(pid, signal.SIGCONT)
        view = wait_sweep(stack, sweep_id, timeout=240)
    finally:
        seen = watch.stop()
    assert_ended_whole(stack, view)  # max_trials trials, each run once, claimed once
    holders = assert_one_holder_at_a_time(seen)
    assert holders[0] == first and len(set(holders)) == 2, holders
    assert len(seen) > 100  # read throughout, not once or twice
    print(f"two API processes: taken over {taken - paused:.1f} s after the holder paused "
          f"(lease {LEASE_S} s); holders in turn: {len(holders)}")  # fmt: skip
