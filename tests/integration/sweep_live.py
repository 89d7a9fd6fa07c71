"""What the live sweep tests and the sweep drills share: a stack of real processes on the
embedded store (`serve --no-worker` and a `trainlab worker` on SQLite and the SQLite broker,
so that the API process can be killed and restarted on its own), a tiny sweep, and the
checks every ended sweep must pass (tests/core/sweeps/decisions.py decides its prunes again
from the store)."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tests.core.sweeps.decisions import assert_decisions_reproduce
from tests.integration.stack import TERMINAL, Stack, start_services_stack

MAX_TRIALS = 4
SEEDS = 2
TINY_SWEEP: dict[str, Any] = {
    "name": "tiny",
    "preset": "seed-adam",
    "overrides": {"train_limit": 300, "test_limit": 50, "epochs": 1},
    "validation_records": 100,
    "space": {"lr": {"type": "log_uniform", "low": 1e-4, "high": 1e-1}},
    "seeds": SEEDS,
    "max_trials": MAX_TRIALS,
    "parallel": 2,
    "sampler": "random",
    "pruner": "paired",
    "sampler_seed": 7,
}


def start_sqlite_stack(workdir: Path) -> Stack:
    state = workdir / "state"
    state.mkdir(parents=True, exist_ok=True)
    return start_services_stack(
        workdir,
        database_url=f"sqlite:///{state / 'trainlab.db'}",
        broker_url=f"sqla+sqlite:///{state / 'broker.db'}",
        settings={"TRAINLAB_WORKER_CONCURRENCY": "2"},
    )


def create_sweep(stack: Stack, **changes: Any) -> dict[str, Any]:
    with stack.client() as client:
        response = client.post("/sweeps", json={**TINY_SWEEP, **changes})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def get_sweep(stack: Stack, sweep_id: str) -> dict[str, Any]:
    with stack.client() as client:
        response = client.get(f"/sweeps/{sweep_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def wait_sweep(stack: Stack, sweep_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view = get_sweep(stack, sweep_id)
    while view["status"] in ("running", "cancelling"):
        if time.monotonic() > deadline:
            raise AssertionError(f"sweep still {view['status']}: {view}\n{stack.logs()}")
        time.sleep(0.5)
        view = get_sweep(stack, sweep_id)
    return view


def run_ids(view: dict[str, Any], statuses: Collection[str] | None = None) -> set[str]:
    """The sweep's runs, or those in one of `statuses`."""
    return {
        r["experiment_id"]
        for t in view.get("trials", [])
        for r in t["runs"]
        if statuses is None or r["status"] in statuses
    }


def requeued_by_reaper(stack: Stack) -> Counter[str]:
    """How often the API processes' reapers requeued each run as lost (its worker silent past
    the heartbeat timeout), from their logs: the one way a run is claimed again."""
    found: Counter[str] = Counter()
    for listed in re.findall(r"ReapReport\(requeued=\[([^\]]*)\]", stack.full_logs()):
        found.update(re.findall(r"'([0-9a-f]{32})'", listed))
    return found


def assert_ended_whole(stack: Stack, view: dict[str, Any]) -> dict[str, int]:
    """Succeeded with exactly max_trials trials, numbered 0..max_trials-1 once each, every
    trial ended with one ended run per seed, no run outside its trials, every run claimed once
    (once more for each time the reaper requeued it as lost: a killed worker's, or one a
    loaded machine kept silent past the tuned 4 s heartbeat timeout; the lost attempt's
    writes are refused), and every prune decided again the same way from the stored figures.
    Returns each run's claims."""
    assert view["status"] == "succeeded", (view, stack.logs())
    numbers = [t["number"] for t in view["trials"]]
    assert sorted(numbers) == list(range(view["max_trials"])), numbers
    ids = []
    for trial in view["trials"]:
        assert trial["state"] in ("complete", "pruned"), trial
        assert sorted(r["seed"] for r in trial["runs"]) == view["seeds"], trial
        assert all(r["status"] in TERMINAL for r in trial["runs"]), trial
        ids += [r["experiment_id"] for r in trial["runs"]]
    assert len(set(ids)) == len(ids) == view["max_trials"] * len(view["seeds"])
    with stack.client() as client:
        listed = client.get("/experiments", params={"limit": 200}).json()["items"]
    assert sorted(e["id"] for e in listed) == sorted(ids)  # no stray run either
    claims = {e["id"]: e["attempt"] for e in listed}
    requeued = requeued_by_reaper(stack)
    for run, count in claims.items():
        assert count <= 1 + requeued[run], (run, count, stack.logs())
    assert view["budget"]["trials"] == view["max_trials"] and view["figures"] == "validation"
    assert_decisions_reproduce(view)
    return claims
