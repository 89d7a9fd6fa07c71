"""Error bodies are bounded: a megabyte of bad input never comes back as a megabyte of error,
and costs nothing to refuse (override and factor paths are bounded before any work)."""

from __future__ import annotations

from typing import Any

import pytest

from api.errors import MAX_DETAIL, MAX_ERRORS
from api.schemas import ValidationErrorBody
from core.errors import MAX_FIELD, MAX_REASON
from tests.api.app_client import AppClient

MEGA_KEY = "a" * 1_000_000


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/experiments", {"preset": "seed-baseline", "overrides": {MEGA_KEY: 1}}, "overrides"),
        ("/experiments", {"overrides": {"model." + MEGA_KEY: 1}}, "overrides"),
        ("/experiments", {MEGA_KEY: 1}, "a"),
        ("/ablations", {"factors": {MEGA_KEY: [1, 2]}}, "factors"),
        ("/ablations", {"overrides": {MEGA_KEY: 1}}, "overrides"),
        ("/ablations", {"base": {MEGA_KEY: 1}}, "arms"),
    ],
)
def test_a_megabyte_key_gets_a_short_422(
    big_body_client: AppClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = big_body_client.post(path, json=body)
    assert response.status_code == 422, response.text[:500]
    assert len(response.content) < 4 * (MAX_DETAIL + MAX_ERRORS * (MAX_FIELD + MAX_REASON))
    assert len(response.content) < 3000
    error = ValidationErrorBody.model_validate(response.json()).errors[0]
    assert error.field.startswith(field) and len(error.field) <= MAX_FIELD


def test_many_errors_are_cut_to_a_few_and_counted(client: AppClient) -> None:
    body = {f"unknown_{i}": i for i in range(200)}
    response = client.post("/experiments", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert len(errors) == MAX_ERRORS
    assert "and 180 more" in response.json()["detail"]


def test_values_nested_deeper_than_the_spec_are_refused_at_once(client: AppClient) -> None:
    deep: Any = 1
    for _ in range(500):
        deep = [deep]
    response = client.post(
        "/experiments", json={"preset": "seed-baseline", "overrides": {"model.hidden": deep}}
    )
    assert response.status_code == 422
    assert "nested deeper than the spec" in response.json()["errors"][0]["reason"]
    unparsable = client.post(
        "/experiments", content=b"[" * 50_000, headers={"content-type": "application/json"}
    )
    assert unparsable.status_code in (400, 413, 422) and len(unparsable.content) < 1000
