"""A sweep of the book's GAN: its trials are GANs judged by one classifier at their rungs
(the judge's Fréchet distance to training images, never to test ones), the paired pruner
stops the worse trial on the judge's figures in the right direction (a lower Fréchet distance
is better), and the confirmation reads the test set. Every spec problem is a 422 naming the
field: no judge, a held-out split, an objective the kind does not report, a classifier's knob."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from api.background.sweeps import SweepDriver
from core.settings import Settings
from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns, finished_judge
from tests.api.sweep_runs import Sent, finish_gan_runs

TINY = {"epochs": 1, "train_limit": 180, "sample_every": 180, "judge_samples": 50}
SPACE = {"generator.lr": {"type": "choice", "values": [0.0001, 0.5]}}
BASE = {
    "preset": "gan-mnist", "overrides": TINY, "space": SPACE, "objective": "frechet",
    "sampler": "grid", "max_trials": 2, "parallel": 2, "seeds": 2, "prune_after": 2,
}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "overrides.judge", "no finished MNIST classifier"),
        ({"validation_records": 1000}, "validation_records", "every training record"),
        ({"objective": "validation_accuracy"}, "objective", "not reported by gan runs"),
        ({"objective": "as_requested"}, "objective", "conditional GAN"),
        ({"space": {"lr": {"type": "uniform", "low": 0.1, "high": 0.2}}}, "space.lr", "no such"),
        ({"space": {"judge": {"type": "choice", "values": ["a", "b"]}}}, "space.judge", "sweep"),
    ],
)  # fmt: skip
def test_a_gan_sweep_that_cannot_be_judged_is_refused_naming_the_field(
    client: AppClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/sweeps", json={**BASE, **body})
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == field and words in error["reason"], response.text


def test_a_classifier_sweep_cannot_select_on_a_gan_figure(client: AppClient) -> None:
    response = client.post(
        "/sweeps",
        json={"preset": "seed-baseline", "space": {"lr": {"type": "uniform", "low": 0.01,
              "high": 0.1}}, "objective": "frechet"},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "objective"


def test_a_gan_sweep_prunes_on_the_judges_figures_and_confirms_on_the_test_set(
    client: AppClient, engine: Engine, settings: Settings, runs: RecordedRuns
) -> None:
    judge = finished_judge(runs)
    created = client.post("/sweeps", json=BASE)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    sent = Sent()
    driver = SweepDriver(engine, sent, settings)  # type: ignore[arg-type]
    driver.drive(sweep_id)
    assert len(sent.ids) == 4
    for run_id in sent.ids:
        spec = client.get(f"/experiments/{run_id}").json()["spec"]
        # Judged by one classifier at the sweep's rungs, against training images only.
        assert spec["kind"] == "gan" and spec["judge"] == judge
        assert spec["evaluate_test"] is False and spec["judge_rungs"] == [1 / 9, 1 / 3, 1.0]
        assert "validation_records" not in spec
    # The lower Fréchet distance is the better trial: a sweep that maximized it would keep
    # the generator lr of 0.5 and prune the book's 0.0001.
    finish_gan_runs(engine, sweep_id, {0.0001: 20.0, 0.5: 300.0})
    driver.drive(sweep_id)
    driver.drive(sweep_id)
    view = client.get(f"/sweeps/{sweep_id}").json()
    assert view["maximize"] is False and view["objective"] == "frechet"
    assert view["figures"] == "judge"
    by_lr = {t["params"]["generator.lr"]: t for t in view["trials"]}
    assert by_lr[0.5]["state"] == "pruned" and by_lr[0.5]["pruned_at_rung"] == 0
    assert by_lr[0.0001]["state"] == "complete"
    assert by_lr[0.0001]["value"] == pytest.approx(20.05)
    rung = by_lr[0.0001]["runs"][0]["rungs"][0]
    assert rung["frechet"] == pytest.approx(40.0) and "validation_accuracy" not in rung
    assert view["best"]["params"] == {"generator.lr": 0.0001}
    assert view["best"]["frechet"]["mean"] == pytest.approx(20.05)
    confirm = client.post(f"/sweeps/{sweep_id}/confirm", json={"top": 1, "seeds": 2})
    assert confirm.status_code == 201, confirm.text
    ablation = client.get(f"/ablations/{confirm.json()['ablation_id']}").json()
    for arm in ablation["arms"]:
        # The confirmation's GANs are judged by the same classifier, against test images.
        assert arm["spec"]["judge"] == judge and "evaluate_test" not in arm["spec"]
        assert "judge_rungs" not in arm["spec"]
    # Its summary compares the figure the sweep chose on.
    summary = client.get(f"/ablations/{confirm.json()['ablation_id']}/summary").json()
    assert summary["metric"] == "frechet"
