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
from tests.core.sweeps.decisions import assert_decisions_reproduce
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


def test_a_gan_sweep_is_judged_at_its_rungs_by_a_classifier(sqlite_stack: Stack) -> None:
    """The book's GAN searched on a real worker: every trial judged at its rungs by the
    account's classifier (Fréchet distance to training images, lower is better), the paired
    pruner's decisions reproducible from the stored figures."""
    started = time.monotonic()
    judge = sqlite_stack.submit(
        {"preset": "seed-layernorm", "overrides": {"epochs": 1, "train_limit": 300}}
    )
    assert sqlite_stack.wait_terminal(judge["id"])["status"] == "succeeded"
    with sqlite_stack.client() as client:
        response = client.post("/sweeps", json={
            "preset": "gan-mnist", "objective": "frechet", "seeds": SEEDS, "max_trials": 4,
            "parallel": 2, "sampler": "random", "sampler_seed": 3, "prune_after": 2,
            "overrides": {"epochs": 1, "train_limit": 270, "sample_every": 270,
                          "judge_samples": 60},
            "space": {"generator.lr": {"type": "log_uniform", "low": 1e-5, "high": 0.05}},
        })  # fmt: skip
        assert response.status_code == 201, response.text
    view = wait_sweep(sqlite_stack, response.json()["id"], timeout=180)
    assert view["status"] == "succeeded" and len(view["trials"]) == 4, view
    assert view["maximize"] is False and view["best"]["frechet"]["n"] == SEEDS
    complete = [t for t in view["trials"] if t["state"] == "complete"]
    assert complete and all(
        [r["step"] for r in run["rungs"]] == [30, 90, 270] for t in complete for run in t["runs"]
    )
    assert_decisions_reproduce(view)
    with sqlite_stack.client() as client:
        run_id = complete[0]["runs"][0]["experiment_id"]
        stored = client.get(f"/experiments/{run_id}").json()
        assert stored["spec"]["judge"] == judge["id"] and stored["spec"]["evaluate_test"] is False
        assert stored["metrics"]["frechet"] == complete[0]["runs"][0]["rungs"][-1]["frechet"]
    print(f"GAN sweep ended in {time.monotonic() - started:.1f}s")
