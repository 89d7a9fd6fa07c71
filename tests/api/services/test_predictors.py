"""/predict's dispatch by kind: every kind core declares has a predictor and dashboard views
that exist, a model file is answered by its kind's predictor, and a file of a kind nobody
registered is refused naming it."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save

from api.routes.dashboard import STATIC_DIR
from api.services import inference, predictors
from core import kinds
from core.presets import build_spec
from tests.fake_kind import FAKE


def _file(spec: dict[str, Any]) -> bytes:
    tensors = {"w": np.arange(3, dtype=np.float32)}
    return save(tensors, metadata={"format": "trainlab.model", "spec": json.dumps(spec)})


def test_every_kind_has_a_predictor_and_its_views_are_on_the_page() -> None:
    assert set(predictors.predictor_names()) == set(kinds.names())
    page = (STATIC_DIR / "index.html").read_text()
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    for name in kinds.names():
        missing = set(kinds.get(name).views) - ids
        assert not missing, f"{name}'s views {sorted(missing)} are not on the dashboard"


def test_a_classifier_file_is_answered_by_the_numpy_network() -> None:
    spec = build_spec("seed-baseline", {"model.hidden": [3]})
    tensors = {
        "0.weight": np.zeros((3, 784), np.float32),
        "0.bias": np.zeros(3, np.float32),
        "2.weight": np.zeros((10, 3), np.float32),
        "2.bias": np.arange(10, dtype=np.float32),
    }
    data = save(tensors, metadata={"format": "trainlab.model", "spec": spec.canonical_json()})
    loaded = predictors.load(data)
    assert loaded.kind == "classifier" and isinstance(loaded.model, inference.Network)
    outputs, predicted = predictors.predict(loaded, np.zeros(784, np.float32))
    assert (len(outputs), predicted) == (10, 9)


def test_a_file_is_answered_by_its_kinds_predictor() -> None:
    decoded: list[bytes] = []

    def decode(data: bytes) -> str:
        decoded.append(data)
        return "fake model"

    def predict(model: Any, pixels: Any) -> tuple[list[float], int]:
        return [float(len(model))], 0

    fake = predictors.Predictor(decode=decode, predict=predict)
    data = _file({"kind": "fake", "steps": 2})
    with kinds.registered(FAKE), predictors.registered("fake", fake):
        loaded = predictors.load(data)
        assert (loaded.kind, loaded.model) == ("fake", "fake model")
        assert predictors.predict(loaded, np.zeros(784, np.float32)) == ([10.0], 0)
    assert decoded == [data]


def test_files_of_unknown_kinds_are_refused() -> None:
    with pytest.raises(inference.ModelFileError, match="unknown kind of job 'sweep'"):
        predictors.load(_file({"kind": "sweep"}))
    with kinds.registered(FAKE), pytest.raises(inference.ModelFileError, match="no predictor"):
        predictors.load(_file({"kind": "fake"}))
