"""GET /presets: the book's recipes, each with its full spec and its cost."""

from __future__ import annotations

from core.cost import estimate
from core.presets import PRESETS, build_any_spec, build_spec
from tests.api.app_client import AppClient


def test_presets_list_each_spec_and_its_cost(client: AppClient) -> None:
    answer = client.get("/presets")
    assert answer.status_code == 200
    presets = answer.json()
    assert [p["name"] for p in presets] == list(PRESETS)
    for preset in presets:
        spec = build_any_spec(preset["name"])  # the GAN presets too
        assert preset["spec"] == spec.model_dump(mode="json")
        cost = estimate(spec)
        assert preset["cost"]["parameters"] == cost.parameters
        assert preset["cost"]["checkpoint_bytes"] == cost.checkpoint_bytes
        assert preset["cost"]["cpu_hours"] == cost.cpu_hours


def test_a_submitted_experiment_shows_its_cost(client: AppClient) -> None:
    created = client.post("/experiments", json={"preset": "seed-adam"}).json()
    assert created["cost"]["parameters"] == estimate(build_spec("seed-adam")).parameters
