"""Ablations end to end on the production stack: real `trainlab serve`, a real `trainlab worker`,
PostgreSQL and Redis, everything over HTTP. A small book ablation with 2 seeds finishes; its
summary, paired differences and curves check out against the per-run numbers; an event stream
resumed with Last-Event-ID has no gap and no repeat; the dashboard renders it in Chromium."""

from __future__ import annotations

import json
import math
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.integration.browser import browser_errors, chromium, ink, screenshot, wait_until
from tests.integration.stack import TRAINLAB, Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.browser,
    pytest.mark.slow,
]

SUBSET = {"epochs": 1, "train_limit": 1000, "test_limit": 500}
BOOK = ["seed-baseline", "seed-bce", "seed-leakyrelu", "seed-adam", "seed-layernorm"]


def _wait_ablation(stack: Stack, ablation_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while time.monotonic() < deadline:
            ablation: dict[str, Any] = client.get(f"/ablations/{ablation_id}").json()
            progress = ablation["progress"]
            if progress["finished"] == progress["experiments"]:
                return ablation
            time.sleep(0.5)
    raise AssertionError(f"ablation {ablation_id} unfinished: {ablation}\n{stack.logs()}")


@pytest.fixture(scope="module")
def book(production_stack: Stack) -> dict[str, Any]:
    with production_stack.client() as client:
        response = client.post(
            "/ablations",
            json={"name": "book-live", "design": "book", "seeds": 2, "overrides": SUBSET},
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/ablations/{created['id']}"
    assert [a["label"] for a in created["arms"]] == BOOK
    assert len(created["members"]) == 10 and created["created_experiments"] == 10
    return _wait_ablation(production_stack, created["id"])


def test_book_ablation_finishes_with_paired_statistics(
    production_stack: Stack, book: dict[str, Any]
) -> None:
    assert book["status_counts"]["succeeded"] == 10, book
    assert book["status"] == "succeeded" and book["progress"]["fraction"] == 1.0
    runs = {
        (m["arm"], m["seed"]): production_stack.get(m["experiment_id"]) for m in book["members"]
    }
    accuracy = {cell: run["metrics"]["test_accuracy"] for cell, run in runs.items()}

    with production_stack.client() as client:
        summary = client.get(f"/ablations/{book['id']}/summary").json()
        other = client.get(f"/ablations/{book['id']}/summary", params={"reference": 4}).json()
        bad = client.get(f"/ablations/{book['id']}/summary", params={"reference": 5})
    assert summary["test"] == "paired t-test" and summary["reference"] == 0
    for arm in summary["arms"]:
        acc = arm["test_accuracy"]
        assert arm["n"] == 2 and acc["n"] == 2
        mine = [accuracy[(arm["arm"], s)] for s in (0, 1)]
        assert acc["mean"] == pytest.approx(sum(mine) / 2)
        assert acc["ci_low"] is None or acc["ci_low"] <= acc["mean"] <= acc["ci_high"]
        diff = arm["diff_to_reference"]
        per_seed = [accuracy[(arm["arm"], s)] - accuracy[(0, s)] for s in (0, 1)]
        assert diff["seeds"] == [0, 1] and diff["n_pairs"] == 2
        assert diff["mean_diff"] == pytest.approx(sum(per_seed) / 2, abs=1e-12)
        if diff["ci_low"] is not None:
            assert diff["ci_low"] <= diff["mean_diff"] <= diff["ci_high"]
    assert other["arms"][4]["diff_to_reference"]["mean_diff"] == 0.0
    assert bad.status_code == 422 and "reference" in bad.text
    # The book's ordering, loosely: the full recipe beats the baseline on this subset.
    assert summary["arms"][4]["test_accuracy"]["mean"] > summary["arms"][0]["test_accuracy"]["mean"]


def test_arm_curves_are_aligned_means_within_their_bands(
    production_stack: Stack, book: dict[str, Any]
) -> None:
    with production_stack.client() as client:
        curves = client.get(f"/ablations/{book['id']}/curves", params={"max_points": 500}).json()
        first = book["members"][0]["experiment_id"]
        loss = client.get(f"/experiments/{first}/loss").json()
    steps = curves["steps"]
    # 1000 steps logged every 10: 100 shared points per run, under max_points, so all of them.
    assert steps == loss["steps"] and len(steps) == 100
    for arm in curves["arms"]:
        assert arm["seeds"] == 2
        assert len(arm["mean"]) == len(arm["low"]) == len(arm["high"]) == len(steps)
        for lo, mean, hi in zip(arm["low"], arm["mean"], arm["high"], strict=True):
            assert lo <= mean + 1e-9 and mean <= hi + 1e-9


def test_compare_loss_and_predictions_across_arms(
    production_stack: Stack, book: dict[str, Any]
) -> None:
    ids = [m["experiment_id"] for m in book["members"] if m["seed"] == 0]
    with production_stack.client() as client:
        loss = client.get(
            "/compare/loss",
            params={"experiments": ",".join(ids), "max_points": 40, "smoothing": 0.6},
        ).json()
        predictions = client.get(
            "/compare/predictions", params={"experiments": f"{ids[0]},{ids[4]}", "records": "19"}
        ).json()
    assert len(loss["curves"]) == 5 and len(loss["steps"]) <= 40
    assert all(len(c["values"]) == len(loss["steps"]) for c in loss["curves"])
    record = predictions["records"][0]
    assert record["index"] == 19 and record["label"] == 4
    assert [len(e["outputs"]) for e in record["experiments"]] == [10, 10]
    disagreements = predictions["disagreements"]
    assert disagreements["compared_records"] == 500
    for row in disagreements["records"]:
        assert row["predicted"][0] != row["predicted"][1]


def test_an_identical_ablation_reuses_every_run(
    production_stack: Stack, book: dict[str, Any]
) -> None:
    with production_stack.client() as client:
        again = client.post(
            "/ablations", json={"design": "book", "seeds": [1, 0], "overrides": SUBSET}
        ).json()
    assert again["created_experiments"] == 0 and again["reused_experiments"] == 10
    old = {(m["arm"], m["seed"]): m["experiment_id"] for m in book["members"]}
    assert {(m["arm"], m["seed"]): m["experiment_id"] for m in again["members"]} == old


def _read_events(
    stack: Stack, experiment_id: str, *, last_event_id: str | None, stop_after: int | None
) -> tuple[list[tuple[str, str, dict[str, Any]]], bool]:
    """Parse the stream; return its events and whether it ended by itself."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    events: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    url = f"{stack.base_url}/experiments/{experiment_id}/events"
    with httpx.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
                continue
            if "event" in fields:
                events.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
                loss_events = sum(1 for _, kind, _ in events if kind == "loss")
                if stop_after is not None and loss_events >= stop_after:
                    return events, False
            fields = {}
    return events, True


def test_event_stream_resumes_without_gaps_or_repeats(production_stack: Stack) -> None:
    experiment = production_stack.submit(
        {"preset": "seed-adam", "overrides": {"epochs": 1, "train_limit": 20_000}}
    )
    first, ended = _read_events(
        production_stack, experiment["id"], last_event_id=None, stop_after=2
    )
    assert not ended
    steps = [s for _, kind, data in first if kind == "loss" for s in data["steps"]]
    resume_at = first[-1][0]
    assert int(resume_at) == steps[-1]
    rest, ended = _read_events(
        production_stack, experiment["id"], last_event_id=resume_at, stop_after=None
    )
    assert ended and rest[-1][1] == "end" and rest[-1][2]["status"] == "succeeded"
    steps += [s for _, kind, data in rest if kind == "loss" for s in data["steps"]]
    with production_stack.client() as client:
        stored = client.get(f"/experiments/{experiment['id']}/loss").json()
    assert steps == stored["steps"] == list(range(10, 20_001, 10))
    ids = [int(i) for i, _, _ in first + rest]
    assert ids == sorted(ids)


def test_dashboard_renders_finished_and_running_experiments(
    production_stack: Stack, book: dict[str, Any]
) -> None:
    running = production_stack.submit(
        {"preset": "seed-layernorm", "name": "live-run", "overrides": {"epochs": 2}}
    )
    production_stack.wait_for(running["id"], lambda e: e["progress"]["step"] > 200, timeout=120)
    try:
        with chromium() as driver:
            driver.get(production_stack.base_url + "/")
            wait_until(lambda: ink(driver, "#curves") > 500, 30, "loss curves drawn")
            wait_until(lambda: ink(driver, "#arm-curves") > 500, 30, "ablation curves drawn")
            wait_until(lambda: ink(driver, "#digit") > 100, 30, "record 19 drawn")
            wait_until(
                lambda: (
                    driver.execute_script("return document.querySelectorAll('#bars canvas').length")
                    > 0
                ),
                30,
                "output bars",
            )
            wait_until(lambda: ink(driver, "#bars-0") > 50, 30, "output bars drawn")
            rows = driver.execute_script(
                "return document.querySelectorAll('#summary tbody tr').length"
            )
            assert rows == 5
            row = f'tr[data-id="{running["id"]}"] .status'
            status = driver.execute_script(f"return document.querySelector('{row}').textContent")
            assert status == "running"
            # Live: the running curve keeps being redrawn from its event stream.
            renders = driver.execute_script("return window.trainlab.renders")
            wait_until(
                lambda: driver.execute_script("return window.trainlab.renders") > renders + 1,
                30,
                "live redraws",
            )
            screenshot(driver, "dashboard-live.png")
            assert not browser_errors(driver)
    finally:
        with production_stack.client() as client:
            client.post(f"/experiments/{running['id']}/cancel", json={})


def test_cli_ablate_prints_the_summary_table(production_stack: Stack, book: dict[str, Any]) -> None:
    """`trainlab ablate --wait` against the live server: every run is reused, so it returns at
    once with the same table the API summarizes."""
    result = subprocess.run(
        [
            *TRAINLAB,
            "ablate",
            "--design",
            "book",
            "--seeds",
            "2",
            *[f"--set={k}={v}" for k, v in SUBSET.items()],
            "--wait",
            "--server",
            production_stack.base_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=production_stack.env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = [line for line in lines if line.split(" ", 1)[0].isdigit()]
    assert [line.split()[1] for line in table] == BOOK
    assert all(line.split()[2] == "2" for line in table)
    assert "paired t-test" in lines[-1]
    assert not math.isnan(float(table[0].split()[3]))


def _trainlab(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRAINLAB, *args, "--server", stack.base_url],
        capture_output=True,
        text=True,
        timeout=300,
        env=stack.env,
    )


def test_cli_submit_waits_and_prints_the_result(production_stack: Stack) -> None:
    result = _trainlab(
        production_stack,
        "submit",
        "--preset",
        "seed-adam",
        "--set",
        "epochs=1",
        "--set",
        "train_limit=1000",
        "--set",
        "test_limit=500",
        "--set",
        "seed=77",
        "--wait",
    )
    assert result.returncode == 0, result.stderr
    experiment_id = result.stdout.split()[1]
    assert f"experiment {experiment_id}: succeeded" in result.stdout
    accuracy = production_stack.get(experiment_id)["metrics"]["test_accuracy"]
    assert f"test accuracy  {accuracy:.4f}" in result.stdout
    assert "1000 of 1000" in result.stdout
    # The progress bar goes to stderr, so stdout stays parseable.
    assert "step/s" in result.stderr or "s/step" in result.stderr
    refused = _trainlab(production_stack, "submit", "--preset", "no-such-preset")
    assert refused.returncode == 2 and "no-such-preset" in refused.stderr
