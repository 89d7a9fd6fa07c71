"""Loss curves and per-record predictions over HTTP, live and after the run, on both backends."""

from __future__ import annotations

import math

import numpy as np
from sqlalchemy import Engine

from core.store.models import Status
from tests.api.app_client import AppClient
from tests.core.store.helpers import finish, predictions, running, write_loss


def _curve(points: int, seed: int = 1) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(seed)
    steps = list(range(10, 10 * points + 1, 10))
    values = (2.0 * np.exp(-np.arange(points) / 300) + 0.05 * rng.random(points)).tolist()
    return steps, values


def test_loss_while_running_and_since_step(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    steps, values = _curve(50)
    values[7] = float("nan")  # a diverged step is stored and shown as null
    write_loss(engine, experiment_id, attempt, steps[:30], values[:30])

    live = client.get(f"/experiments/{experiment_id}/loss").json()
    assert live["status"] == "running"
    assert live["steps"] == steps[:30] and live["points"] == live["total_points"] == 30
    assert live["values"][7] is None
    # Shown at the float32 precision the engine computes and the store packs.
    assert np.float32(live["values"][0]) == np.float32(values[0])
    assert live["last_step"] == 300 and live["downsampled"] is False

    write_loss(engine, experiment_id, attempt, steps[30:], values[30:])
    newer = client.get(f"/experiments/{experiment_id}/loss", params={"since_step": 300}).json()
    assert newer["steps"] == steps[30:] and newer["last_step"] == 500
    none_yet = client.get(f"/experiments/{experiment_id}/loss", params={"since_step": 500})
    assert none_yet.json()["steps"] == [] and none_yet.json()["last_step"] == 500


def test_loss_max_points_keeps_the_spikes(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    steps, values = _curve(5000)
    values[1234] = 9.5  # a spike between any evenly spaced samples
    values[3999] = -0.5  # and a dip
    write_loss(engine, experiment_id, attempt, steps, values)
    url = f"/experiments/{experiment_id}/loss"

    for state in ("running", "finished"):
        if state == "finished":
            assert finish(engine, experiment_id, attempt, Status.succeeded, step=50_000)
        small = client.get(url, params={"max_points": 200}).json()
        assert small["points"] <= 200 and small["downsampled"] is True
        assert small["total_points"] == 5000
        assert max(small["values"]) == 9.5
        assert min(small["values"]) == -0.5
        assert 12350 in small["steps"] and 40000 in small["steps"]
        assert small["steps"][0] == 10 and small["steps"][-1] == 50_000
        assert small["steps"] == sorted(small["steps"])
        full = client.get(url).json()
        assert full["steps"] == steps and len(full["values"]) == 5000
    assert client.get(url).json()["status"] == "succeeded"


def test_loss_parameters_are_bounded(client: AppClient, engine: Engine) -> None:
    experiment_id, _ = running(engine)
    url = f"/experiments/{experiment_id}/loss"
    for params, field in (
        ({"max_points": 1}, "max_points"),
        ({"max_points": 100_001}, "max_points"),
        ({"since_step": -1}, "since_step"),
        ({"since_step": "ten"}, "since_step"),
    ):
        response = client.get(url, params=params)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field


def test_predictions_by_record_and_paged(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    url = f"/experiments/{experiment_id}/predictions"
    not_yet = client.get(url, params={"records": "19"})
    assert not_yet.status_code == 409
    assert "no predictions until" in not_yet.json()["detail"]

    arrays = predictions(500)
    assert finish(engine, experiment_id, attempt, Status.succeeded, with_predictions=arrays)
    picked = client.get(url, params={"records": "19,20"}).json()
    assert picked["total_records"] == 500 and picked["matching"] == 2
    assert [r["index"] for r in picked["records"]] == [19, 20]
    record = picked["records"][0]
    assert record["label"] == int(arrays["labels"][19])
    assert record["predicted"] == int(arrays["predicted"][19])
    assert record["correct"] == (record["label"] == record["predicted"])
    assert np.allclose(record["outputs"], arrays["outputs"][19], rtol=1e-6)
    assert len(record["outputs"]) == 10

    page = client.get(url, params={"offset": 490, "limit": 20}).json()
    assert [r["index"] for r in page["records"]] == list(range(490, 500))
    wrong = np.flatnonzero(arrays["labels"] != arrays["predicted"])
    missed = client.get(url, params={"misclassified": "true", "limit": 1000}).json()
    assert missed["matching"] == len(wrong)
    assert [r["index"] for r in missed["records"]] == wrong.tolist()
    assert not any(r["correct"] for r in missed["records"])
    second = client.get(url, params={"misclassified": "true", "offset": 5, "limit": 3}).json()
    assert [r["index"] for r in second["records"]] == wrong[5:8].tolist()


def test_predictions_reject_bad_records(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    assert finish(engine, experiment_id, attempt, with_predictions=predictions(500))
    url = f"/experiments/{experiment_id}/predictions"
    for records, reason in (
        ("19,500", "record 500 is out of range: this run has records 0..499"),
        ("19,x", "'x' is not a record index"),
        ("-1", "'-1' is not a record index"),
        (",", "at least one record"),
        (",".join(["1"] * 1001), "at most 1000"),
    ):
        response = client.get(url, params={"records": records})
        assert response.status_code == 422, records
        (error,) = response.json()["errors"]
        assert error["field"] == "records" and reason in error["reason"]
    assert client.get(url, params={"limit": 1001}).status_code == 422


def test_predictions_of_a_run_that_failed_are_404(client: AppClient, engine: Engine) -> None:
    experiment_id, attempt = running(engine)
    assert finish(engine, experiment_id, attempt, Status.failed, error="RuntimeError: boom")
    response = client.get(f"/experiments/{experiment_id}/predictions")
    assert response.status_code == 404
    assert "ended failed" in response.json()["detail"]
    failed = client.get(f"/experiments/{experiment_id}").json()
    assert failed["error"] == "RuntimeError: boom"
    assert math.isclose(failed["metrics"]["test_accuracy"], 0.9)
