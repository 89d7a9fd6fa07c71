"""GET /experiments: filters (preset, dataset, status, tag, name text), sorts by creation time
or a metric with keyset paging, and the refusals, on SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import pytest

from core.presets import build_spec
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns

SUBSET = {"epochs": 1, "train_limit": 200, "test_limit": 50}


def _walk(client: AppClient, params: dict[str, Any], limit: int = 2) -> list[str]:
    """Every id of the listing, read page by page through next_cursor."""
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        page_params = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get("/experiments", params=page_params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the listing never ended")


@pytest.fixture
def mixed(client: AppClient, runs: RecordedRuns) -> dict[str, str]:
    """Finished runs with known metrics (two tied on accuracy), a queued one without any
    metric, a fashion-mnist one, in this creation order."""
    ids: dict[str, str] = {}
    made = [
        ("a", "seed-baseline", 0, 0.80, 0.30),
        ("b", "seed-adam", 1, 0.95, 0.05),
        ("c", "seed-bce", 2, 0.90, 0.20),
        ("d", "seed-adam", 3, 0.90, 0.10),  # tied with c on accuracy, created later
    ]
    for key, preset, seed, accuracy, loss in made:
        spec = build_spec(preset, {**SUBSET, "seed": seed})
        ids[key] = runs.finished_run(spec, accuracy=accuracy, final_loss=loss, preset=preset).id
    queued = client.post(
        "/experiments",
        json={"preset": "seed-adam", "overrides": SUBSET, "name": "Quick 50%_Look"},
    )
    ids["queued"] = queued.json()["id"]
    fashion = build_spec("seed-bce", {**SUBSET, "dataset": "fashion-mnist", "seed": 9})
    ids["fashion"] = runs.finished_run(
        fashion, accuracy=0.70, final_loss=0.4, name="fashion look"
    ).id
    return ids


def test_metric_sorts_page_in_order_with_missing_metrics_last(
    client: AppClient, mixed: dict[str, str]
) -> None:
    m = mixed
    # Ties (c, d at 0.90) newest first; the queued run has no accuracy: last.
    expected = [m["b"], m["d"], m["c"], m["a"], m["fashion"], m["queued"]]
    assert _walk(client, {"sort": "-test_accuracy"}) == expected
    assert _walk(client, {"sort": "-test_accuracy"}, limit=1) == expected
    ascending = [m["fashion"], m["a"], m["d"], m["c"], m["b"], m["queued"]]
    assert _walk(client, {"sort": "test_accuracy"}, limit=4) == ascending
    lowest_loss_first = [m["b"], m["d"], m["c"], m["a"], m["fashion"], m["queued"]]
    assert _walk(client, {"sort": "final_loss"}) == lowest_loss_first
    assert _walk(client, {"sort": "-final_loss"})[:2] == [m["fashion"], m["a"]]
    created = [m[k] for k in ("a", "b", "c", "d", "queued", "fashion")]
    assert _walk(client, {"sort": "created_at"}) == created
    assert _walk(client, {}) == created[::-1]
    # The sorted value is the one the item shows.
    top = client.get("/experiments", params={"sort": "-test_accuracy", "limit": 1}).json()
    assert top["items"][0]["metrics"]["test_accuracy"] == 0.95


def test_filters_combine_with_sorting(client: AppClient, mixed: dict[str, str]) -> None:
    m = mixed

    def ids(**params: Any) -> list[str]:
        return [e["id"] for e in client.get("/experiments", params=params).json()["items"]]

    assert ids(preset="seed-adam", sort="-test_accuracy") == [m["b"], m["d"], m["queued"]]
    assert ids(dataset="fashion-mnist") == [m["fashion"]]
    assert set(ids(dataset="mnist")) == set(m.values()) - {m["fashion"]}
    assert ids(status="queued") == [m["queued"]]
    # Name text: case-insensitive, and % and _ are plain characters, not wildcards.
    assert ids(q="LOOK") == [m["fashion"], m["queued"]]
    assert ids(name="50%_l") == [m["queued"]]
    assert ids(q="50%x") == [] and ids(q="5_") == []
    assert ids(q="look", dataset="mnist") == [m["queued"]]
    assert ids(q="look", name="look") == [m["fashion"], m["queued"]]
    assert ids(preset="seed-nope") == []


def test_a_cursor_only_pages_the_sort_it_came_from(
    client: AppClient, mixed: dict[str, str]
) -> None:
    first = client.get("/experiments", params={"sort": "-test_accuracy", "limit": 2}).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    other = client.get("/experiments", params={"sort": "-final_loss", "cursor": cursor})
    assert other.status_code == 422, other.text
    error = other.json()["errors"][0]
    assert error["field"] == "cursor"
    assert "sort=-test_accuracy" in error["reason"] and "-final_loss" in error["reason"]
    default = client.get("/experiments", params={"cursor": cursor})
    assert default.status_code == 422 and "-created_at" in default.json()["errors"][0]["reason"]
    same = client.get("/experiments", params={"sort": "-test_accuracy", "cursor": cursor})
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"sort": "accuracy"}, "sort", "-test_accuracy"),
        ({"sort": "-name"}, "sort", "not a sort"),
        ({"dataset": "cifar"}, "dataset", "mnist"),
        ({"q": "x" * 101}, "q", "at most 100"),
        ({"q": ""}, "q", "at least 1"),
        ({"q": "a", "name": "b"}, "name", "once"),
        ({"preset": "p" * 65}, "preset", "at most 64"),
        ({"cursor": "WyJ4Il0"}, "cursor", "not one this server"),
    ],
)
def test_bad_listing_parameters_are_422_naming_the_field(
    client: AppClient, params: dict[str, Any], field: str, words: str
) -> None:
    response = client.get("/experiments", params=params)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert words in errors[0]["reason"]
