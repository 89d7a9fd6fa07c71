"""The API's numpy forward pass against the engine, knob by knob: a tiny network trained by
the real engine (a few hundred CPU steps), its final weights written as the worker writes
them, and the numpy outputs compared with the engine's own per-record outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import save

from api.services import inference, predictors
from core.presets import build_spec
from worker.artifacts import final_weights
from worker.engine import run_training
from worker.engine.data import load_dataset

BASE = {"epochs": 1, "train_limit": 480, "test_limit": 300, "device": "cpu", "model.hidden": [24]}
KNOBS: dict[str, dict[str, Any]] = {
    "sigmoid": {"model.activation": "sigmoid"},
    "relu": {"model.activation": "relu"},
    "leaky_relu": {"model.activation": "leaky_relu", "model.negative_slope": 0.1},
    "tanh": {"model.activation": "tanh"},
    "gelu": {"model.activation": "gelu"},
    "layer_norm": {"model.normalization": "layer_norm"},
    "batch_norm": {"model.normalization": "batch_norm", "batch_size": 4},
    "output-softmax": {"model.output": "softmax", "loss": "mse"},
    "output-none": {"model.output": "none", "loss": "cross_entropy"},
    "deep": {"model.hidden": [32, 16, 12], "model.activation": "gelu", "batch_size": 4},
    # cnn-mnist's network (each record's own BatchNorm statistics), and one with padding,
    # pooling, a hidden layer and a batch of 4 (trained on batch statistics, still evaluated
    # per record).
    "cnn-book": {
        "model.type": "cnn",
        "model.conv": [
            {"channels": 10, "kernel": 5, "stride": 2, "normalization": "batch_norm"},
            {"channels": 10, "kernel": 3, "stride": 2, "normalization": "batch_norm"},
        ],
        "model.hidden": [],
        "model.activation": "leaky_relu",
        "loss": "bce",
    },
    "cnn-pool": {
        "model.type": "cnn",
        "model.conv": [
            {"channels": 6, "kernel": 3, "padding": 1, "pool": "max2"},
            {
                "channels": 8,
                "kernel": 4,
                "stride": 3,
                "normalization": "batch_norm",
                "pool": "max2",
            },
        ],
        "model.hidden": [16],
        "model.activation": "gelu",
        "batch_size": 4,
    },
}


@pytest.fixture(scope="module")
def test_images(mnist_dir: Path) -> np.ndarray:
    data = load_dataset("mnist", mnist_dir, torch.device("cpu"), allow_download=False)
    return data.test_x[:300].numpy()


@pytest.mark.parametrize("knob", list(KNOBS))
def test_numpy_forward_equals_the_engine(
    knob: str, mnist_dir: Path, test_images: np.ndarray
) -> None:
    spec = build_spec("seed-adam", BASE | KNOBS[knob])
    result = run_training(spec, data_dir=mnist_dir, allow_download=False, threads=1)
    assert result.steps >= 100
    data = final_weights(spec, result, experiment_id="knob")
    assert data is not None
    network = inference.decode(data)
    outputs = network.forward(test_images)
    assert outputs.dtype == np.float32
    # A convolution sums in another order than torch's: its outputs agree within 1e-5.
    atol = 1e-5 if spec.model.type == "cnn" else 1e-6
    np.testing.assert_allclose(outputs, result.predictions.outputs, rtol=0, atol=atol)
    assert (outputs.argmax(axis=1) == result.predictions.predicted).all()
    # One image at a time, as /predict asks, gives the same answer.
    one, predicted = inference.predict(network, test_images[19])
    np.testing.assert_allclose(one, result.predictions.outputs[19], rtol=0, atol=atol)
    assert predicted == int(result.predictions.predicted[19])


def _file(tensors: dict[str, np.ndarray], spec_json: str, fmt: str = "trainlab.model") -> bytes:
    return save(tensors, metadata={"format": fmt, "spec": spec_json})


def _tiny_tensors() -> tuple[dict[str, np.ndarray], str]:
    spec = build_spec("seed-baseline", {"model.hidden": [3]})
    tensors = {
        "0.weight": np.zeros((3, 784), np.float32),
        "0.bias": np.zeros(3, np.float32),
        "2.weight": np.zeros((10, 3), np.float32),
        "2.bias": np.arange(10, dtype=np.float32),
    }
    return tensors, spec.canonical_json()


def test_a_file_that_does_not_fit_its_spec_is_refused() -> None:
    tensors, spec_json = _tiny_tensors()
    network = inference.decode(_file(tensors, spec_json))
    _, predicted = inference.predict(network, np.zeros(784, np.float32))
    assert predicted == 9  # sigmoid of the biases: the largest is the last
    missing = {k: v for k, v in tensors.items() if k != "2.bias"}
    with pytest.raises(inference.ModelFileError, match=r"lacks tensor '2.bias'"):
        inference.decode(_file(missing, spec_json))
    extra = tensors | {"3.weight": np.zeros(1, np.float32)}
    with pytest.raises(inference.ModelFileError, match="does not use"):
        inference.decode(_file(extra, spec_json))
    wrong = tensors | {"0.bias": np.zeros(4, np.float32)}
    with pytest.raises(inference.ModelFileError, match=r"shape \(4,\), expected \(3,\)"):
        inference.decode(_file(wrong, spec_json))
    with pytest.raises(inference.ModelFileError, match=r"not a trainlab\.model"):
        inference.decode(_file(tensors, spec_json, fmt="other"))
    with pytest.raises(inference.ModelFileError, match="not a safetensors file"):
        inference.decode(b"\xff" * 16)


def test_decoded_networks_are_cached_by_hash() -> None:
    tensors, spec_json = _tiny_tensors()
    data = _file(tensors, spec_json)
    reads: list[int] = []

    def read() -> bytes:
        reads.append(1)
        return data

    key = ("sqlite://", "cache-test", "hash-1")
    first = predictors.cached_model(key, read)
    assert predictors.cached_model(key, read) is first and len(reads) == 1
    assert first.kind == "classifier"
    # New weights under the same id (another hash) are decoded afresh.
    predictors.cached_model((*key[:2], "hash-2"), read)
    assert len(reads) == 2
