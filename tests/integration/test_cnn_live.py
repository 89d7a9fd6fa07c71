"""The book's CNN (preset cnn-mnist) through a live stack: a run of 200 records succeeds with
its loss curve and per-record outputs, the spec it stored is the cnn, and /predict answers from
the stored weights (numpy, in the API) what the worker's evaluation answered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TEST_DATA_DIR
from tests.integration.stack import Stack
from worker.engine.data import load_dataset

pytestmark = pytest.mark.integration

TINY = {"epochs": 1, "train_limit": 200, "test_limit": 100}


def test_a_cnn_run_succeeds_and_predicts(stack: Stack) -> None:
    created = stack.submit({"preset": "cnn-mnist", "overrides": TINY, "name": "book cnn"})
    finished = stack.wait_terminal(created["id"])
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["spec"]["model"]["type"] == "cnn"
    assert [c["channels"] for c in finished["spec"]["model"]["conv"]] == [10, 10]
    assert finished["progress"]["step"] == 200
    experiment_id = finished["id"]
    test_x = load_dataset("mnist", Path(TEST_DATA_DIR), torch.device("cpu")).test_x[:100]

    with stack.client() as client:
        loss = client.get(f"/experiments/{experiment_id}/loss").json()
        assert loss["steps"] == list(range(10, 201, 10))
        assert all(v is not None and v >= 0 for v in loss["values"])
        stored = client.get(
            f"/experiments/{experiment_id}/predictions", params={"records": "19,42"}
        ).json()["records"]
        assert [r["index"] for r in stored] == [19, 42] and stored[0]["label"] == 4
        for record in stored:
            pixels = test_x[record["index"]].numpy().tolist()
            answer = client.post(f"/experiments/{experiment_id}/predict", json={"pixels": pixels})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["predicted"] == record["predicted"]
            np.testing.assert_allclose(body["outputs"], record["outputs"], rtol=0, atol=1e-5)
