"""The README's "Loading it into PyTorch" snippet, run as written: the file the job stored and
the API serves, loaded into a plain nn.Sequential, gives back the stored predictions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sqlalchemy import Engine

from core.presets import build_spec
from core.settings import Settings
from core.store import artifacts, experiments
from core.store.session import session_scope
from tests.conftest import REPO
from worker.engine.data import load_dataset
from worker.fused_job import run_delivery

TINY = {"epochs": 1, "train_limit": 400, "test_limit": 200, "device": "cpu", "batch_size": 8}


def readme_snippet() -> dict[str, Any]:
    text = (REPO / "README.md").read_text()
    section = text.split("### Loading it into PyTorch", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's loading section has a python block"
    namespace: dict[str, Any] = {}
    exec(compile(match[1], "README.md", "exec"), namespace)
    return namespace


@pytest.mark.parametrize(
    "overrides",
    [
        {"model.normalization": "batch_norm", "model.activation": "gelu"},
        {
            "model.normalization": "layer_norm",
            "model.output": "none",
            "loss": "cross_entropy",
            "model.hidden": [40, 20],
        },
    ],
    ids=["batch-norm-gelu-sigmoid", "layer-norm-logits-deep"],
)
def test_the_readme_snippet_reproduces_the_stored_predictions(
    engine: Engine,
    settings: Settings,
    mnist_dir: Path,
    tmp_path: Path,
    overrides: dict[str, Any],
) -> None:
    worker_settings = settings.model_copy(
        update={"data_dir": mnist_dir, "allow_download": False, "torch_threads": 1}
    )
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(
            session, build_spec("seed-adam", TINY | overrides), name="readme"
        )
    assert run_delivery(experiment.id, engine, worker_settings) == "succeeded"
    with session_scope(engine) as session:
        data = artifacts.read_model(session, experiment.id)
        stored = artifacts.read_predictions(session, experiment.id)
    assert data is not None and stored is not None
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)

    snippet = readme_snippet()
    model, spec = snippet["load_trainlab_model"](str(path))
    assert spec["model"]["normalization"] == overrides["model.normalization"]
    pixels = load_dataset("mnist", mnist_dir, torch.device("cpu")).test_x[: stored.records]
    outputs = snippet["predict"](model, spec, pixels).numpy()
    np.testing.assert_allclose(outputs, stored.outputs, rtol=0, atol=1e-6)
    assert (outputs.argmax(axis=1) == stored.predicted).all()
