"""A worker killed mid-run (SIGKILL) doesn't lose the experiment: the reaper notices the
silent heartbeat, requeues it, a worker resumes from the last checkpoint, and the stored
series ends exact: every point once, none missing."""

from __future__ import annotations

import signal

import pytest

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def _exact_series(stack: Stack, experiment: dict[str, object]) -> None:
    total = experiment["progress"]["total"]  # type: ignore[index]
    with stack.client() as client:
        loss = client.get(f"/experiments/{experiment['id']}/loss").json()
    assert loss["steps"] == list(range(10, total + 1, 10))
    assert len(loss["values"]) == total // 10


def test_sigkill_of_worker_mid_run_still_ends_exact(production_stack: Stack) -> None:
    stack = production_stack
    created = stack.submit(
        {"preset": "seed-adam", "overrides": {"epochs": 1, "train_limit": 30000}}
    )
    stack.wait_for(
        created["id"], lambda e: e["status"] == "running" and e["progress"]["step"] > 4000
    )
    for worker in list(stack.workers):
        stack.kill(worker, signal.SIGKILL)
    stack.start_worker()
    finished = stack.wait_terminal(created["id"], timeout=240)
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["attempt"] == 2
    _exact_series(stack, finished)


def test_sigkill_of_embedded_pool_process(embedded_stack: Stack) -> None:
    stack = embedded_stack
    created = stack.submit(
        {"preset": "seed-adam", "overrides": {"epochs": 1, "train_limit": 30000}}
    )
    running = stack.wait_for(
        created["id"], lambda e: e["status"] == "running" and e["progress"]["step"] > 4000
    )
    # The worker field names host:pid of the process running the task.
    pid = int(str(running["worker"]).rsplit(":", 1)[1])
    import os

    os.kill(pid, signal.SIGKILL)
    finished = stack.wait_terminal(created["id"], timeout=240)
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["attempt"] >= 2
    _exact_series(stack, finished)
