"""What every fault drill checks, and how it measures recovery.

A drill submits small runs to a live stack, breaks something (a process, a server, one
connection), and then asserts that every experiment ended `succeeded`, that no experiment was
run by two attempts at once (each attempt is one claim; the counts are as the fault allows),
and that each stored series is exactly the one an uninterrupted run of the same spec and seed
gives on the CPU: the same steps, bit-identical float32 values. The uninterrupted run is
computed here, in the test process, by the engine alone.

Each drill prints the time from the fault to recovery (`DRILL <name>: ...`): run pytest with
`-s` (as `make drills` does) to see them.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from core.presets import build_spec
from tests.conftest import TEST_DATA_DIR
from tests.integration.stack import TERMINAL, Stack

# A few seconds of training at batch size 1 on one CPU thread.
DRILL_RUN: dict[str, Any] = {"epochs": 1, "train_limit": 6000, "test_limit": 500}


def drill_body(seed: int = 0, **overrides: Any) -> dict[str, Any]:
    return {"preset": "seed-adam", "overrides": {**DRILL_RUN, "seed": seed, **overrides}}


@functools.cache
def _reference(overrides_json: str) -> tuple[list[int], list[float]]:
    from worker.engine import RunCallbacks, run_training

    spec = build_spec("seed-adam", {**json.loads(overrides_json), "device": "cpu"})
    steps: list[int] = []
    values: list[float] = []

    def keep(new_steps: list[int], new_values: list[float]) -> None:
        steps.extend(new_steps)
        values.extend(new_values)

    run_training(spec, data_dir=TEST_DATA_DIR, callbacks=RunCallbacks(on_loss=keep), threads=1)
    return steps, np.asarray(values, dtype=np.float32).tolist()


def reference_series(body: dict[str, Any]) -> tuple[list[int], list[float]]:
    """The series an uninterrupted run of the body's spec gives (float32 values)."""
    return _reference(json.dumps(body["overrides"], sort_keys=True))


def assert_exact(stack: Stack, experiment: dict[str, Any], body: dict[str, Any]) -> None:
    with stack.client() as client:
        loss = client.get(f"/experiments/{experiment['id']}/loss").json()
    steps, values = reference_series(body)
    assert loss["steps"] == steps, f"{experiment['id']}: steps differ"
    got = np.asarray(loss["values"], dtype=np.float32)
    assert got.tolist() == values, f"{experiment['id']}: values differ from the uninterrupted run"


def assert_all_succeeded_exact(
    stack: Stack,
    runs: list[tuple[dict[str, Any], dict[str, Any]]],
    *,
    attempts: Callable[[dict[str, Any]], bool] = lambda e: e["attempt"] == 1,
    timeout: float = 300.0,
) -> list[dict[str, Any]]:
    """Every (created, body) ends succeeded with the expected attempts and an exact series."""
    finished = [stack.wait_terminal(created["id"], timeout=timeout) for created, _ in runs]
    for experiment, (_, body) in zip(finished, runs, strict=True):
        assert experiment["status"] in TERMINAL
        assert experiment["status"] == "succeeded", (experiment["error"], stack.logs())
        assert attempts(experiment), f"{experiment['id']} ran {experiment['attempt']} attempts"
        assert_exact(stack, experiment, body)
    return finished


def wait_until(what: str, done: Callable[[], bool], timeout: float = 120.0) -> float:
    """Poll `done` until true; returns the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def report(drill: str, **figures: float | str) -> None:
    shown = ", ".join(
        f"{name}={value:.1f}s" if isinstance(value, float) else f"{name}={value}"
        for name, value in figures.items()
    )
    print(f"DRILL {drill}: {shown}", file=sys.stderr, flush=True)
