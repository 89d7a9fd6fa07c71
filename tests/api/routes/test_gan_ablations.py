"""An ablation of the book's GAN knobs over HTTP: every arm a GAN judged by one classifier,
the summary comparing the judge's label entropy between arms seed by seed (the figure that
tells a collapsed GAN from a varied one), the same in its CSV; a kind cannot be a factor."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from core.store import runs
from core.store.models import Status
from core.store.session import session_scope
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns, finished_judge

TINY = {"epochs": 1, "train_limit": 200, "sample_every": 100, "judge_samples": 100}
GAN_GRID = {
    "preset": "gan-mnist",
    "overrides": TINY,
    "factors": {"latent": ["uniform", "normal"]},
    "seeds": 3,
}
# The judge's label entropy per (arm, seed): uniform seeds collapse (arm 0), normal ones don't.
ENTROPY = {0: {0: 0.10, 1: 0.35, 2: 0.05}, 1: {0: 2.90, 1: 2.70, 2: 3.05}}


def _judge(runs_: RecordedRuns) -> str:
    return finished_judge(runs_)


def _finish_gan(engine: Engine, experiment_id: str, entropy: float) -> None:
    with session_scope(engine) as session:
        attempt = runs.claim(session, experiment_id, worker="test", stale_after_s=3600)
        assert attempt is not None
        metrics = {"entropy_bits": entropy, "final_loss": 0.3, "frechet": 40.0}
        assert runs.finish(
            session, experiment_id, attempt, status=Status.succeeded, metrics=metrics, step=200
        )


def test_a_gan_ablation_compares_label_entropy_judged_by_one_classifier(
    client: AppClient, runs: RecordedRuns, engine: Engine
) -> None:
    older = _judge(runs)
    judge = _judge(runs)  # the newest: every cell's judge, none left to chance per cell
    response = client.post("/ablations", json=GAN_GRID)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert [arm["spec"]["kind"] for arm in created["arms"]] == ["gan", "gan"]
    assert created["created_experiments"] == 6
    for member in created["members"]:
        spec = client.get(f"/experiments/{member['experiment_id']}").json()["spec"]
        assert spec["judge"] == judge != older
        latent = ("uniform", "normal")[member["arm"]]
        assert (spec["kind"], spec["latent"], spec["seed"]) == ("gan", latent, member["seed"])
        _finish_gan(engine, member["experiment_id"], ENTROPY[member["arm"]][member["seed"]])

    summary = client.get(f"/ablations/{created['id']}/summary").json()
    assert summary["metric"] == "entropy_bits"
    arms = summary["arms"]
    assert "test_accuracy" not in arms[0]
    for arm in arms:
        mine = list(ENTROPY[arm["arm"]].values())
        assert arm["entropy_bits"]["mean"] == pytest.approx(np.mean(mine))
    (comparison,) = summary["comparisons"]
    d = np.array([ENTROPY[1][s] - ENTROPY[0][s] for s in range(3)])
    figures = comparison["entropy_bits"]
    assert figures["mean_diff"] == pytest.approx(d.mean())
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    assert figures["t_statistic"] == pytest.approx(t)
    assert figures["p_holm"] == figures["p_value"] < 0.05  # one comparison: Holm changes nothing
    assert comparison["final_loss"]["mean_diff"] == pytest.approx(0.0)  # same loss, same D tail

    csv = client.get(f"/ablations/{created['id']}/summary.csv").text.splitlines()
    header = csv[0].split(",")
    assert "entropy_bits_mean" in header and "accuracy_mean" not in header
    second = dict(zip(header, csv[2].split(","), strict=True))
    assert float(second["entropy_bits_diff"]) == pytest.approx(d.mean())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"factors": {"kind": ["gan", "classifier"]}}, "factors.kind"),
        ({"overrides": {**TINY, "kind": "classifier"}}, "overrides.kind"),
        ({"factors": {"latent": ["uniform", "gaussian"]}}, "arms[1].latent"),
        ({"overrides": {**TINY, "judge": "nope"}}, "overrides.judge"),
        ({"metric": "test_accuracy"}, "metric"),
        ({"metric": "nope"}, "metric"),
    ],
)
def test_a_gan_ablation_that_cannot_be_is_a_422_naming_the_field(
    client: AppClient, change: dict[str, Any], field: str
) -> None:
    response = client.post("/ablations", json={**GAN_GRID, **change})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert client.get("/ablations").json()["items"] == []


def test_a_gan_ablation_can_compare_another_judge_figure(
    client: AppClient, runs: RecordedRuns, engine: Engine
) -> None:
    """`metric` picks the figure the summary compares: here the Fréchet distance (the one a
    GAN sweep on it confirms), not the default label entropy."""
    _judge(runs)
    response = client.post("/ablations", json={**GAN_GRID, "metric": "frechet"})
    assert response.status_code == 201, response.text
    created = response.json()
    for member in created["members"]:
        _finish_gan(engine, member["experiment_id"], 2.0)  # every run: Fréchet 40
    summary = client.get(f"/ablations/{created['id']}/summary").json()
    assert summary["metric"] == "frechet"
    assert summary["arms"][0]["frechet"]["mean"] == pytest.approx(40.0)
    assert "entropy_bits" not in summary["arms"][0]
    (comparison,) = summary["comparisons"]
    assert comparison["frechet"]["mean_diff"] == pytest.approx(0.0)


def test_a_classifier_ablation_cannot_compare_a_gan_figure(client: AppClient) -> None:
    response = client.post(
        "/ablations",
        json={"preset": "seed-baseline", "factors": {"lr": [0.1, 0.01]}, "seeds": 2,
              "overrides": {"epochs": 1, "train_limit": 100}, "metric": "frechet"},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "metric" and "classifier runs do not report frechet" in error["reason"]
