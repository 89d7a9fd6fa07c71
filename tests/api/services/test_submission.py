"""What a submission may cost: a spec (or an ablation) past a bound of the server is refused
at submit with the bound and how far over, so every accepted spec can run and be stored."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import Engine

from core import cost
from core.cost import SpecCost
from core.spec import ExperimentSpec
from core.store import experiments
from core.store.session import session_scope
from tests.api.app_client import AppClient

SIX_WIDE_ADAM = {"model": {"hidden": [4096] * 6}, "optimizer": "adam"}


def _count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return len(experiments.list_experiments(session, limit=200)[0])


def test_a_spec_whose_checkpoint_could_not_be_stored_is_refused(
    client: AppClient, engine: Engine
) -> None:
    for body, field in [
        (SIX_WIDE_ADAM, "spec"),
        ({"preset": "seed-adam", "overrides": {"model.hidden": [4096] * 6}}, "overrides"),
    ]:
        response = client.post("/experiments", json=body)
        assert response.status_code == 422, response.text
        reasons = [e["reason"] for e in response.json()["errors"]]
        assert {e["field"] for e in response.json()["errors"]} == {field}
        assert any("max_checkpoint_bytes" in r and "x over" in r for r in reasons), reasons
        assert any("max_run_cpu_hours" in r for r in reasons), reasons
    assert _count(engine) == 0


def test_an_ablation_of_costly_cells_is_refused_whole(client: AppClient, engine: Engine) -> None:
    one_arm_too_big = client.post("/ablations", json={"base": SIX_WIDE_ADAM, "seeds": 1})
    assert one_arm_too_big.status_code == 422
    error = one_arm_too_big.json()["errors"][0]
    assert error["field"] == "arms[0]" and "max_checkpoint_bytes" in error["reason"]
    # Each run within the bounds, but 200 of them together are not (4 x 50 seeds of a run
    # of about 11 CPU-minutes).
    eleven_minutes = {"model": {"hidden": [1024, 1024]}, "optimizer": "adam", "epochs": 5}
    too_many = client.post(
        "/ablations",
        json={"base": eleven_minutes, "factors": {"lr": [0.001, 0.002, 0.003, 0.004]}, "seeds": 50},
    )
    assert too_many.status_code == 422, too_many.text
    error = too_many.json()["errors"][0]
    assert error["field"] == "seeds" and "max_ablation_cpu_hours" in error["reason"]
    assert _count(engine) == 0


def test_an_accepted_ablation_reports_its_total_cost(client: AppClient) -> None:
    created = client.post(
        "/ablations", json={"preset": "seed-baseline", "overrides": {"epochs": 1}, "seeds": 2}
    )
    assert created.status_code == 201, created.text
    cost = created.json()["cost"]
    assert cost["runs"] == 2 and 0 < cost["cpu_hours"] < 1


def test_a_submit_prices_its_spec_once(
    client: AppClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounds check, the cost the experiment records (its quotas sum it) and the answer's
    `cost` share one estimate."""
    calls: list[ExperimentSpec] = []
    original = cost.estimate

    def counted(spec: ExperimentSpec) -> SpecCost:
        calls.append(spec)
        return original(spec)

    # core.cost and every module that holds its estimate under its own name.
    for module in list(sys.modules.values()):
        if getattr(module, "estimate", None) is original:
            monkeypatch.setattr(module, "estimate", counted)
    response = client.post("/experiments", json={"preset": "seed-adam"})
    assert response.status_code == 201, response.text
    assert len(calls) == 1
    with session_scope(engine) as session:
        stored = experiments.require_experiment(session, response.json()["id"])
    assert stored.cost == response.json()["cost"]["cpu_hours"] > 0
