"""A GAN spec submitted through POST /experiments: the book's presets are taken, and each
senseless network or judge is a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.app_client import AppClient


@pytest.mark.parametrize(
    "preset", ["gan-first-attempt", "gan-mnist", "gan-mnist-rand1", "cgan-mnist"]
)
def test_the_book_gans_are_taken(client: AppClient, preset: str) -> None:
    response = client.post("/experiments", json={"preset": preset})
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert spec["kind"] == "gan" and spec["judge"] is None  # no classifier to judge with yet
    assert response.json()["cost"]["steps"] == spec["epochs"] * 60_000


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"generator.widths": [100, 200, 500]}, "generator.widths", "784 pixels"),
        ({"discriminator.widths": [794, 200, 1]}, "discriminator.widths", "784"),
        ({"generator.widths": [10, 200, 784]}, "generator.widths", "latent_size 100"),
        ({"conditional": True}, "discriminator.widths", "one-hot label"),
        ({"judge": "nope"}, "judge", "no experiment 'nope'"),
        ({"discriminator.widths": [784] + [8] * 9 + [1]}, "discriminator.widths", "10"),
        ({"latent_size": 0}, "latent_size", "greater than or equal to 1"),
    ],
)
def test_bad_gan_specs_are_422_naming_the_field(
    client: AppClient, overrides: dict[str, Any], field: str, reason: str
) -> None:
    response = client.post("/experiments", json={"preset": "gan-mnist", "overrides": overrides})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert reason in errors[0]["reason"]


def test_a_judge_must_be_a_finished_classifier(client: AppClient) -> None:
    gan = client.post("/experiments", json={"preset": "gan-first-attempt"}).json()
    response = client.post(
        "/experiments", json={"preset": "gan-mnist", "overrides": {"judge": gan["id"]}}
    )
    assert response.status_code == 422
    assert "is not a classifier" in response.json()["errors"][0]["reason"]
    queued = client.post("/experiments", json={"preset": "seed-adam"}).json()
    response = client.post(
        "/experiments", json={"preset": "gan-mnist", "overrides": {"judge": queued["id"]}}
    )
    assert response.status_code == 422
    assert "not a finished classifier" in response.json()["errors"][0]["reason"]


def test_samples_of_a_classifier_are_a_conflict_naming_its_kind(client: AppClient) -> None:
    """A classifier draws no samples, now or later: not 404 "none yet", which would send the
    caller polling for images that never come."""
    created = client.post("/experiments", json={"preset": "seed-adam"}).json()
    response = client.get(f"/experiments/{created['id']}/samples")
    assert response.status_code == 409, response.text
    assert "is a classifier" in response.json()["detail"]
    gan = client.post("/experiments", json={"preset": "gan-mnist"}).json()
    pending = client.get(f"/experiments/{gan['id']}/samples")
    assert pending.status_code == 404 and "no samples yet" in pending.json()["detail"]
