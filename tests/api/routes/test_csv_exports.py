"""CSV downloads: an experiment's loss, a loss comparison, an ablation's arm curves and its
summary, with their content type, file name and numbers, on SQLite and Postgres."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from core.presets import BOOK_CHAIN, build_spec
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns, small_spec

SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}


def _table(response: httpx.Response, filename: str) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    assert response.text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_experiment_loss_csv_is_the_stored_series(client: AppClient, runs: RecordedRuns) -> None:
    steps = [10 * (i + 1) for i in range(20)]
    values = [1.0 / (i + 1) for i in range(20)]
    values[3] = float("nan")
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1, series=(steps, values))
    rows = _table(client.get(f"/experiments/{run.id}/loss.csv"), f"loss-{run.id}.csv")
    assert [int(r["step"]) for r in rows] == steps
    assert rows[0]["loss"] == "1.0" and rows[2]["loss"] == "0.33333334"  # float32, as stored
    assert rows[3]["loss"] == ""  # NaN: an empty cell
    small = _table(client.get(f"/experiments/{run.id}/loss.csv?max_points=4"), f"loss-{run.id}.csv")
    assert len(small) <= 4
    assert client.get("/experiments/nopenope/loss.csv").status_code == 404
    bad = client.get(f"/experiments/{run.id}/loss.csv?max_points=1")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "max_points"


def test_compare_loss_csv_is_long_format(client: AppClient, runs: RecordedRuns) -> None:
    steps = [10 * (i + 1) for i in range(5)]
    a = runs.finished_run(
        small_spec(), accuracy=0.9, final_loss=0.1, series=(steps, [0.5] * 5), name="=HYPERLINK(1)"
    )
    live_id, attempt = runs.start(small_spec(seed=4), name="live")
    runs.write_points(live_id, attempt, steps[:2], [0.25, 0.125], 200)
    rows = _table(
        client.get("/compare/loss.csv", params={"experiments": f"{a.id},{live_id}"}),
        "compare-loss.csv",
    )
    assert [(r["experiment_id"], r["step"], r["loss"]) for r in rows] == [
        *[(a.id, str(s), "0.5") for s in steps],
        (live_id, "10", "0.25"),
        (live_id, "20", "0.125"),
    ]
    # A name a spreadsheet would run as a formula is written as text.
    assert rows[0]["name"] == "'=HYPERLINK(1)" and rows[-1]["name"] == "live"


def test_ablation_curves_and_summary_csv(client: AppClient, runs: RecordedRuns) -> None:
    for arm, preset in enumerate(BOOK_CHAIN):
        for seed in (0, 1, 2):
            spec = build_spec(preset, {**SUBSET, "seed": seed})
            runs.finished_run(
                spec, accuracy=0.8 + 0.02 * arm + 0.01 * seed * (arm % 2), final_loss=0.2
            )
    ablation_id = client.post(
        "/ablations", json={"design": "book", "overrides": SUBSET, "seeds": 3}
    ).json()["id"]
    curves = _table(
        client.get(f"/ablations/{ablation_id}/curves.csv"), f"ablation-{ablation_id}-curves.csv"
    )
    assert [int(r["arm"]) for r in curves[:: len(curves) // 5]] == [0, 1, 2, 3, 4]
    assert {r["seeds"] for r in curves} == {"3"} and len(curves) == 5 * 20
    assert all(float(r["low"]) <= float(r["mean_loss"]) <= float(r["high"]) for r in curves)

    url = f"/ablations/{ablation_id}/summary"
    summary = client.get(url, params={"compare": "successive"}).json()
    rows = _table(
        client.get(f"{url}.csv", params={"compare": "successive"}),
        f"ablation-{ablation_id}-summary-successive.csv",
    )
    assert [r["label"] for r in rows] == list(BOOK_CHAIN)
    assert rows[0]["compared_with"] == "" and rows[0]["p_holm"] == ""
    for row, comparison in zip(rows[1:], summary["comparisons"], strict=True):
        acc = comparison["test_accuracy"]
        assert int(row["compared_with"]) == comparison["baseline"]
        assert float(row["accuracy_diff"]) == acc["mean_diff"]  # full precision
        if acc["p_holm"] is None:
            assert row["p_holm"] == ""
        else:
            assert float(row["p_holm"]) == acc["p_holm"]
    assert float(rows[2]["accuracy_mean"]) == pytest.approx(
        summary["arms"][2]["test_accuracy"]["mean"]
    )
    reference = client.get(f"{url}.csv", params={"reference": 2})
    assert (
        reference.status_code == 200
        and "summary-reference.csv" in reference.headers["content-disposition"]
    )
    bad = client.get(f"{url}.csv", params={"compare": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "compare"
    assert client.get("/ablations/nopenope/summary.csv").status_code == 404
