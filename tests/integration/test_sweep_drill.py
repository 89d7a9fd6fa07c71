"""Fault drills of a sweep mid-way, each ending with the sweep succeeded with exactly
max_trials trials, no number used twice, no stray run, every run claimed once (once more
only after the reaper requeued it as lost: the runs a killed worker held), and every prune
decided again the same way from the stored rung figures (sweep_live.assert_ended_whole):

- kill -9 of the API process (its driver holds the sweep's lease and may be between storing a
  trial and sending its runs), then a new one: it takes the lease once the dead one's has
  lapsed, and the reaper sends any run stored but never sent (the embedded store);
- kill -9 of the worker mid-trial, then a new one: the lost runs resume from their
  checkpoints (a second claim each) and the trials go on (PostgreSQL and Redis);
- Redis restarted empty mid-sweep, with runs queued: the reaper sends them again, none runs
  twice (PostgreSQL and a Redis of the drill's own).

Small sweeps of runs a few seconds long, at the tuned intervals (tests/integration/stack.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_mnist, require_postgres, require_redis
from tests.integration.drills import report, wait_until
from tests.integration.services import DrillRedis, drill_redis
from tests.integration.stack import TERMINAL, Stack, start_production
from tests.integration.sweep_live import (
    TINY_SWEEP,
    assert_ended_whole,
    create_sweep,
    get_sweep,
    requeued_by_reaper,
    run_ids,
    start_sqlite_stack,
    wait_sweep,
)
from worker.shutdown import descendants

pytestmark = [pytest.mark.integration, pytest.mark.drill]
TRIALS = 6
# Runs of a few seconds (1,900 steps at batch size 1): long enough to be caught mid-way, past
# a checkpoint (every second, tuned).
LONGER = {**TINY_SWEEP["overrides"], "train_limit": 2000}


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[Stack]:
    require_mnist()
    stack = start_sqlite_stack(tmp_path)
    yield stack
    stack.stop()


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """make(broker_url=None, **settings) -> a production stack (one worker) on a fresh
    PostgreSQL database, and the shared Redis or the given one."""
    require_postgres()
    require_redis()
    require_mnist()
    made: list[Stack] = []

    def make(broker_url: str | None = None, **settings: str) -> Stack:
        stack = start_production(tmp_path, settings=settings, broker_url=broker_url)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()


def _mid_sweep(view: dict[str, Any]) -> bool:
    """Some trial's runs have ended, and trials are still to be asked for."""
    ended = any(r["status"] in TERMINAL for t in view["trials"] for r in t["runs"])
    return ended and len(view["trials"]) < view["max_trials"] and view["status"] == "running"


def test_api_kill_9_mid_sweep(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    sweep_id = create_sweep(stack, max_trials=TRIALS)["id"]
    wait_until("the sweep midway", lambda: _mid_sweep(get_sweep(stack, sweep_id)), timeout=90)
    before = len(get_sweep(stack, sweep_id)["trials"])
    fault = time.monotonic()
    assert stack.api is not None
    stack.kill(stack.api, signal.SIGKILL)
    stack.start_api()
    stack.wait_ready()
    back = time.monotonic()
    # The dead driver's lease (30 s, the default) lapses first.
    view = wait_sweep(stack, sweep_id, timeout=180)
    assert_ended_whole(stack, view)
    assert view["max_trials"] == TRIALS and before < TRIALS
    report(
        "API kill -9 mid-sweep",
        api_back=back - fault,
        sweep_ended=time.monotonic() - fault,
        trials_before_kill=str(before),
    )


def _mid_trial(view: dict[str, Any]) -> bool:
    """A run well into its training (past a checkpoint), and trials still to be asked for."""
    going = any(r["status"] == "running" and r["step"] > 600 for r in _runs(view))
    return going and len(view["trials"]) < view["max_trials"]


def _runs(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for t in view["trials"] for r in t["runs"]]


def _signal_tree(pid: int, sig: int) -> None:
    for target in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, sig)


def test_worker_kill_9_mid_trial(stacks: Callable[..., Stack]) -> None:
    stack = stacks(TRAINLAB_WORKER_CONCURRENCY="2")
    sweep_id = create_sweep(stack, max_trials=4, overrides=LONGER)["id"]
    wait_until("a trial mid-way", lambda: _mid_trial(get_sweep(stack, sweep_id)), timeout=90)
    # Stopped first, so the runs it holds are known before it dies (it claims no more).
    worker = stack.workers[0]
    _signal_tree(worker.pid, signal.SIGSTOP)
    lost = run_ids(get_sweep(stack, sweep_id), {"running"})
    fault = time.monotonic()
    stack.kill(worker, signal.SIGKILL)
    stack.start_worker()

    def moved_on() -> bool:
        found = [stack.get(run) for run in lost]
        return all(e["attempt"] == 2 or e["status"] in TERMINAL for e in found)

    resumed = wait_until("every lost run claimed again (or ended)", moved_on, timeout=120)
    view = wait_sweep(stack, sweep_id, timeout=150)
    claims = assert_ended_whole(stack, view)
    assert lost and any(claims[run] == 2 for run in lost)  # resumed, not started over elsewhere
    assert set(requeued_by_reaper(stack)) >= {run for run in lost if claims[run] == 2}
    report(
        "kill -9 worker mid-trial",
        resumed=resumed - fault,
        sweep_ended=time.monotonic() - fault,
        runs_lost=str(len(lost)),
    )


@pytest.fixture
def redis_server() -> Iterator[DrillRedis]:
    with drill_redis() as server:
        yield server


def _runs_waiting(view: dict[str, Any]) -> bool:
    """One run training, others queued behind it, and trials still to be asked for."""
    statuses = [r["status"] for r in _runs(view)]
    waiting = "running" in statuses and "queued" in statuses
    return waiting and len(view["trials"]) < view["max_trials"]


def test_redis_restarted_empty_mid_sweep(
    stacks: Callable[..., Stack], redis_server: DrillRedis
) -> None:
    # One run at a time (no fused groups): the others wait as messages on the broker.
    stack = stacks(redis_server.url, TRAINLAB_WORKER_CONCURRENCY="1", TRAINLAB_MAX_FUSED_RUNS="1")
    sweep_id = create_sweep(stack, max_trials=4, overrides=LONGER)["id"]
    wait_until("runs queued", lambda: _runs_waiting(get_sweep(stack, sweep_id)), timeout=90)
    queued = run_ids(get_sweep(stack, sweep_id), {"queued"})
    before = redis_server.client().info()["run_id"]
    fault = time.monotonic()
    redis_server.restart()  # every message gone
    assert redis_server.client().info()["run_id"] != before

    def claimed() -> bool:
        return all(stack.get(run)["status"] != "queued" for run in queued)

    moved = wait_until("every run queued at the restart claimed", claimed, timeout=120)
    view = wait_sweep(stack, sweep_id, timeout=150)
    assert_ended_whole(stack, view)  # every run claimed once: none ran twice
    assert "broker holds no message" in stack.full_logs()  # sent again by the reaper
    report(
        "Redis restarted empty mid-sweep",
        queued_runs_claimed=moved - fault,
        sweep_ended=time.monotonic() - fault,
        runs_queued=str(len(queued)),
    )
