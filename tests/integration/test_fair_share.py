"""Fair shares with a real worker: two members queue their runs, one after the other, and one
worker serves them alternately instead of draining the first member's queue (Postgres, Redis,
real `trainlab serve` and `trainlab worker` processes). Runs of one structure train fused in
groups (here of 2), so the turns are a group each: alice's two, bob's two, alice's two..."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_mnist, require_postgres, require_redis
from tests.integration.stack import TRAINLAB, start_production

pytestmark = pytest.mark.integration

TINY = {"preset": "seed-baseline", "overrides": {"epochs": 1, "train_limit": 60, "test_limit": 20}}
RUNS_EACH = 6


def test_one_worker_alternates_between_two_members(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    require_mnist()
    stack = start_production(tmp_path, workers=0)
    try:
        keys = {}
        for name in ("alice", "bob"):
            made = subprocess.run(
                [*TRAINLAB, "keys", "create", "--name", name, "--json"],
                cwd=tmp_path, env=stack.env, capture_output=True, text=True, timeout=60,
                check=True,
            )  # fmt: skip
            keys[name] = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
        ids = {
            name: [
                stack.submit({**TINY, "overrides": {**TINY["overrides"], "seed": i}}, **keys[name])[
                    "id"
                ]
                for i in range(RUNS_EACH)
            ]
            for name in ("alice", "bob")  # all of alice's first
        }
        stack.start_worker(TRAINLAB_MAX_FUSED_RUNS="2")
        finished = [stack.wait_terminal(i, timeout=240) for name in ids for i in ids[name]]
    finally:
        stack.stop()
    assert {e["status"] for e in finished} == {"succeeded"}
    order = [e["owner"] for e in sorted(finished, key=lambda e: e["started_at"])]
    assert order == ["alice", "alice", "bob", "bob"] * (RUNS_EACH // 2), order
    # Each turn is one fused group: its two runs trained together (a fused run's
    # train_seconds is its group's), different from the next turn's.
    by_start = sorted(finished, key=lambda e: e["started_at"])
    pairs = list(zip(by_start[::2], by_start[1::2], strict=True))
    for first, second in pairs:
        assert first["metrics"]["train_seconds"] == second["metrics"]["train_seconds"]
    assert len({first["metrics"]["train_seconds"] for first, _ in pairs}) == len(pairs)
