"""A sweep end to end on real processes (uvicorn and a Celery worker on the embedded store):
the driver in the API process asks Optuna for trials, the worker trains them on MNIST with a
validation split held out, the paired pruner judges them at their rungs, and the sweep ends
with exactly max_trials trials; confirming it makes an ablation on fresh seeds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_mnist
from tests.integration.stack import Stack
from tests.integration.sweep_live import (
    SEEDS,
    assert_ended_whole,
    create_sweep,
    start_sqlite_stack,
    wait_sweep,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[Stack]:
    require_mnist()
    stack = start_sqlite_stack(tmp_path)
    yield stack
    stack.stop()


def test_a_tiny_sweep_runs_to_the_end_and_confirms(sqlite_stack: Stack) -> None:
    started = time.monotonic()
    created = create_sweep(sqlite_stack)
    view = wait_sweep(sqlite_stack, created["id"], timeout=150)
    assert_ended_whole(sqlite_stack, view)
    assert view["best"] is not None and view["best"]["validation_accuracy"]["n"] == SEEDS
    complete = [t for t in view["trials"] if t["state"] == "complete"]
    assert complete and all(len(r["rungs"]) == 3 for t in complete for r in t["runs"])
    with sqlite_stack.client() as client:
        # What the worker stored for a trial's run: validation figures, nothing of the test set.
        run_id = complete[0]["runs"][0]["experiment_id"]
        stored = client.get(f"/experiments/{run_id}").json()
        assert stored["metrics"]["validation_accuracy"] is not None, stored
        assert stored["metrics"].get("test_accuracy") is None, stored
        assert client.get(f"/experiments/{run_id}/predictions").status_code == 404
        confirm = client.post(f"/sweeps/{created['id']}/confirm", json={"top": 1, "seeds": 2})
        assert confirm.status_code == 201, confirm.text
        answer = confirm.json()
        assert answer["seeds"] == [SEEDS, SEEDS + 1] and answer["figures"] == "test"
        ablation = client.get(f"/ablations/{answer['ablation_id']}").json()
        assert [a["label"] for a in ablation["arms"]] == ["base", f"trial {view['best']['number']}"]
        assert len(ablation["members"]) == 4
        again = client.get(f"/sweeps/{created['id']}").json()
        assert again["confirm_ablation_id"] == answer["ablation_id"]
    print(f"tiny sweep ended in {time.monotonic() - started:.1f}s")
