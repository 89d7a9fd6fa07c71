"""GET /compare/loss and /compare/predictions on both backends."""

from __future__ import annotations

import numpy as np
import pytest

from api.services.curves import tensorboard_ema
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns, small_spec


def test_loss_curves_share_one_step_axis_and_a_running_one_has_nulls(
    client: AppClient, runs: RecordedRuns
) -> None:
    spec = small_spec()
    steps = [10 * (i + 1) for i in range(20)]
    done = runs.finished_run(
        spec, accuracy=0.9, final_loss=0.1, series=(steps, [1.0 / (i + 1) for i in range(20)])
    )
    live_id, attempt = runs.start(small_spec(seed=5))
    runs.write_points(live_id, attempt, steps[:8], [0.5] * 8, spec.total_steps)

    body = client.get("/compare/loss", params={"experiments": f"{done.id},{live_id}"}).json()
    assert body["steps"] == steps
    finished, running = body["curves"]
    assert (finished["experiment_id"], finished["status"], finished["points"]) == (
        done.id,
        "succeeded",
        20,
    )
    assert running["status"] == "running" and running["points"] == 8
    assert running["values"] == [0.5] * 8 + [None] * 12
    # Finished series are stored as float32.
    assert finished["values"] == pytest.approx(done.values, rel=1e-6)


def test_smoothing_is_tensorboards_ema_of_the_stored_points(
    client: AppClient, runs: RecordedRuns
) -> None:
    rng = np.random.default_rng(7)
    steps = [10 * (i + 1) for i in range(50)]
    values = rng.random(50).tolist()
    done = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1, series=(steps, values))
    body = client.get("/compare/loss", params={"experiments": done.id, "smoothing": 0.6}).json()
    stored = np.asarray(values, dtype=np.float32).astype(np.float64)
    assert body["smoothing"] == 0.6
    assert body["curves"][0]["values"] == pytest.approx(tensorboard_ema(stored, 0.6).tolist())


def test_max_points_downsamples_keeping_a_spike(client: AppClient, runs: RecordedRuns) -> None:
    spec = small_spec(train_limit=20_000, log_every=10)
    steps = [10 * (i + 1) for i in range(2000)]
    values = [0.3] * 2000
    values[1234] = 7.0
    done = runs.finished_run(spec, accuracy=0.9, final_loss=0.1, series=(steps, values))
    other = runs.finished_run(spec.model_copy(update={"seed": 1}), accuracy=0.9, final_loss=0.1)
    body = client.get(
        "/compare/loss", params={"experiments": f"{done.id},{other.id}", "max_points": 100}
    ).json()
    assert len(body["steps"]) <= 100
    assert all(len(c["values"]) == len(body["steps"]) for c in body["curves"])
    assert max(body["curves"][0]["values"]) == 7.0


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"experiments": ""}, 422, "experiments"),
        ({"experiments": ",".join(f"e{i}" for i in range(21))}, 422, "experiments"),
        ({"experiments": "x", "smoothing": 1.5}, 422, "smoothing"),
        ({"experiments": "x", "max_points": 3}, 422, "max_points"),
        ({"experiments": "nope"}, 404, None),
        ({}, 422, "experiments"),
    ],
)
def test_bad_loss_comparisons(
    client: AppClient, params: dict[str, object], status: int, field: str | None
) -> None:
    response = client.get("/compare/loss", params=params)
    assert response.status_code == status, response.text
    if field:
        assert response.json()["errors"][0]["field"] == field
    else:
        assert "nope" in response.json()["detail"]


def test_predictions_side_by_side_and_where_they_disagree(
    client: AppClient, runs: RecordedRuns
) -> None:
    spec = small_spec()  # 50 test records, labels = index mod 10
    labels = np.arange(50) % 10
    wrong = labels.copy()
    wrong[[3, 19, 40]] = (labels[[3, 19, 40]] + 1) % 10
    right = runs.finished_run(spec, accuracy=1.0, final_loss=0.1, name="right")
    off = runs.finished_run(
        spec.model_copy(update={"seed": 1}), accuracy=0.94, final_loss=0.2, predicted=wrong
    )
    body = client.get(
        "/compare/predictions",
        params={"experiments": f"{right.id},{off.id}", "records": "19,20"},
    ).json()
    r19, r20 = body["records"]
    assert (r19["index"], r19["label"], r19["agree"]) == (19, 9, False)
    a, b = r19["experiments"]
    assert (a["name"], a["predicted"], a["correct"]) == ("right", 9, True)
    assert (b["predicted"], b["correct"]) == (0, False)
    assert a["outputs"] == pytest.approx(right.outputs[19].tolist())
    assert len(b["outputs"]) == 10
    assert r20["agree"] is True
    assert [e["accuracy"] for e in body["experiments"]] == pytest.approx([1.0, 0.94])
    dis = body["disagreements"]
    assert dis["compared_records"] == 50 and dis["count"] == 3
    assert [(d["index"], d["predicted"]) for d in dis["records"]] == [
        (3, [3, 4]),
        (19, [9, 0]),
        (40, [0, 1]),
    ]


def test_predictions_refusals(client: AppClient, runs: RecordedRuns) -> None:
    done = runs.finished_run(small_spec(), accuracy=1.0, final_loss=0.1)
    live_id, _ = runs.start(small_spec(seed=3))
    url = "/compare/predictions"
    pending = client.get(url, params={"experiments": f"{done.id},{live_id}"})
    assert pending.status_code == 409 and live_id in pending.json()["detail"]
    outside = client.get(url, params={"experiments": done.id, "records": "50"})
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "records"
    assert "0..49" in outside.json()["errors"][0]["reason"]
    junk = client.get(url, params={"experiments": done.id, "records": "19,x"})
    assert junk.status_code == 422 and junk.json()["errors"][0]["field"] == "records"
    assert client.get(url, params={"experiments": "nope"}).status_code == 404


def test_predictions_paired_analysis_against_the_first(
    client: AppClient, runs: RecordedRuns
) -> None:
    spec = small_spec()  # 50 records, labels = index mod 10
    labels = np.arange(50) % 10

    def wrong_on(indices: list[int]) -> np.ndarray:
        guess = labels.copy()
        guess[indices] = (labels[indices] + 1) % 10
        return guess

    first = runs.finished_run(
        spec, accuracy=0.76, final_loss=0.1, predicted=wrong_on(list(range(12)))
    )
    second = runs.finished_run(
        spec.model_copy(update={"seed": 1}),
        accuracy=0.94,
        final_loss=0.1,
        predicted=wrong_on([12, 13, 14]),
    )
    third = runs.finished_run(
        spec.model_copy(update={"seed": 2}),
        accuracy=0.76,
        final_loss=0.1,
        predicted=wrong_on(list(range(12))),
    )
    params = {"experiments": f"{first.id},{second.id},{third.id}"}
    body = client.get("/compare/predictions", params=params).json()
    assert body["paired_rule"].startswith("each experiment against the first")
    one, two = body["paired"]
    assert (one["first"], one["second"], two["second"]) == (first.id, second.id, third.id)
    # Second vs first: first right and second wrong on 12..14 (b = 3), the reverse on 0..11.
    assert (one["both_right"], one["b"], one["c"], one["both_wrong"]) == (35, 3, 12, 0)
    assert one["mcnemar_p"] == pytest.approx(2 * (1 + 15 + 105 + 455) / 2**15)
    assert one["accuracy_diff"] == pytest.approx(9 / 50)
    assert one["ci_low"] <= 9 / 50 <= one["ci_high"]
    assert (two["b"], two["c"], two["mcnemar_p"], two["ci_low"], two["ci_high"]) == (
        0,
        0,
        1.0,
        0.0,
        0.0,
    )
    # Holm over the two pairs: min(1, 2 * 0.0352) then max(that, 1 * 1.0).
    assert one["p_holm"] == pytest.approx(2 * one["mcnemar_p"]) and two["p_holm"] == 1.0
    again = client.get("/compare/predictions", params=params).json()
    assert again["paired"] == body["paired"]  # seeded: the same request, the same interval
    alone = client.get("/compare/predictions", params={"experiments": first.id}).json()
    assert alone["paired"] == []
