"""A trained model through a live stack: after a real run, the worker's final weights download
as a safetensors file, /predict answers from them what the run itself answered for a test
record, /metrics counts the run, and DELETE removes it all. Both deployments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families
from safetensors.numpy import load

from tests.conftest import TEST_DATA_DIR
from tests.integration.stack import Stack
from worker.engine.data import load_dataset

pytestmark = pytest.mark.integration

TINY = {"epochs": 1, "train_limit": 500, "test_limit": 100, "batch_size": 5}


def test_download_predict_count_and_delete_a_trained_run(stack: Stack) -> None:
    created = stack.submit({"preset": "seed-layernorm", "overrides": TINY, "name": "live model"})
    finished = stack.wait_terminal(created["id"])
    assert finished["status"] == "succeeded", finished["error"]
    experiment_id = finished["id"]
    test_x = load_dataset("mnist", Path(TEST_DATA_DIR), torch.device("cpu")).test_x[:100]

    with stack.client() as client:
        model = client.get(f"/experiments/{experiment_id}/model")
        assert model.status_code == 200
        assert "live-model" in model.headers["content-disposition"]
        assert load(model.content)["2.weight"].shape == (200,)  # the LayerNorm's scale

        stored = client.get(
            f"/experiments/{experiment_id}/predictions", params={"records": "19,42"}
        ).json()["records"]
        for record in stored:
            pixels = test_x[record["index"]].numpy().tolist()
            answer = client.post(f"/experiments/{experiment_id}/predict", json={"pixels": pixels})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["predicted"] == record["predicted"]
            np.testing.assert_allclose(body["outputs"], record["outputs"], rtol=0, atol=1e-6)

        metrics = client.get("/metrics").text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics)
            for s in family.samples
        }
        assert samples[("trainlab_runs_finished_total", (("outcome", "succeeded"),))] >= 1
        assert samples[("trainlab_store_up", ())] == 1

        deleted = client.request("DELETE", f"/experiments/{experiment_id}")
        assert deleted.status_code == 200 and deleted.json()["freed_bytes"] > 600_000
        assert client.get(f"/experiments/{experiment_id}/model").status_code == 404
