"""Fault drill: kill -9 of the API process mid-sweep (its driver holds the sweep's lease and
may be between storing a trial and sending its runs), then a new API process. The new
driver takes the lease once the dead one's has lapsed, the reaper sends any run stored but
never sent, and the sweep still ends with exactly max_trials trials, no number used twice
and no stray run."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.background.sweeps import LEASE_S
from tests.conftest import require_mnist
from tests.integration.drills import report, wait_until
from tests.integration.stack import TERMINAL, Stack
from tests.integration.sweep_live import (
    assert_ended_whole,
    create_sweep,
    get_sweep,
    start_sqlite_stack,
    wait_sweep,
)

pytestmark = [pytest.mark.integration, pytest.mark.drill]
TRIALS = 6


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[Stack]:
    require_mnist()
    stack = start_sqlite_stack(tmp_path)
    yield stack
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
    view = wait_sweep(stack, sweep_id, timeout=LEASE_S + 150)
    assert_ended_whole(stack, view)
    assert view["max_trials"] == TRIALS and before < TRIALS
    report(
        "API kill -9 mid-sweep",
        api_back=back - fault,
        sweep_ended=time.monotonic() - fault,
        trials_before_kill=str(before),
    )
