"""The hand-written step computes what autograd computes, for every knob.

The engine trains through FastStep; the plain PyTorch step (module forward, loss.backward(),
optimizer.step()) is the yardstick. Updates that run the very same kernels (fused Adam, the
optimizers' own step) must match bit for bit; the plain-SGD update folds the gradient into one
addmm_, which rounds differently, so there the series must agree to float32 rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.spec import ExperimentSpec
from worker.engine import RunCallbacks, run_training

BASE: dict[str, Any] = {
    "epochs": 1,
    "train_limit": 300,
    "test_limit": 100,
    "log_every": 5,
    "device": "cpu",
}


def both_paths(mnist_dir: Path, **data: Any) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    spec = ExperimentSpec.model_validate({**BASE, **data})
    results, series = [], []
    for fast in (True, False):
        values: list[float] = []
        callbacks = RunCallbacks(on_loss=lambda s, v, values=values: values.extend(v))
        results.append(
            run_training(spec, data_dir=mnist_dir, callbacks=callbacks, threads=1, fast_path=fast)
        )
        series.append(torch.tensor(values))
    assert results[0].fingerprint["engine_path"] == "fast"
    assert results[1].fingerprint["engine_path"] == "autograd"
    assert len(series[0]) == spec.loss_points
    return results[0], results[1], series[0], series[1]


def assert_close_runs(fast: Any, slow: Any, a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(fast.predictions.outputs, slow.predictions.outputs, atol=2e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "leaky_relu", "tanh", "gelu"])
def test_activations_two_hidden_layers(mnist_dir: Path, activation: str) -> None:
    model = {"activation": activation, "hidden": [64, 32], "negative_slope": 0.1}
    assert_close_runs(*both_paths(mnist_dir, model=model))


@pytest.mark.parametrize(
    ("normalization", "batch_size", "activation"),
    [("layer_norm", 1, "leaky_relu"), ("layer_norm", 3, "relu"), ("batch_norm", 16, "tanh")],
)
def test_normalizations(
    mnist_dir: Path, normalization: str, batch_size: int, activation: str
) -> None:
    # Batch norm runs at 16 records and a saturating-free activation: at tiny batches a unit
    # that is 0 for the whole batch gets a 1/sqrt(eps) scale, which turns float32 rounding
    # differences into diverging runs on any two implementations.
    model = {"normalization": normalization, "hidden": [64, 32], "activation": activation}
    data = {"model": model, "batch_size": batch_size, "train_limit": 320}
    assert_close_runs(*both_paths(mnist_dir, **data))


@pytest.mark.parametrize(
    ("output", "loss"),
    [
        ("sigmoid", "mse"),
        ("sigmoid", "bce"),
        ("softmax", "mse"),
        ("softmax", "bce"),
        ("none", "mse"),
        ("none", "cross_entropy"),
    ],
)
def test_outputs_and_losses(mnist_dir: Path, output: str, loss: str) -> None:
    assert_close_runs(*both_paths(mnist_dir, model={"output": output}, loss=loss, batch_size=2))


@pytest.mark.parametrize(
    "optimizer",
    [
        {"optimizer": "adam"},
        {"optimizer": "adam", "weight_decay": 0.01},
        {"optimizer": "adamw", "weight_decay": 0.1},
        {"optimizer": "sgd", "momentum": 0.9},
        {"optimizer": "sgd", "weight_decay": 0.01},
        {"optimizer": "rmsprop", "momentum": 0.5},
    ],
)
def test_optimizers_running_the_same_kernels_match_exactly(
    mnist_dir: Path, optimizer: dict[str, Any]
) -> None:
    model = {"activation": "leaky_relu", "normalization": "layer_norm"}
    fast, slow, a, b = both_paths(mnist_dir, model=model, loss="bce", **optimizer)
    assert torch.equal(a, b)
    assert np.array_equal(fast.predictions.outputs, slow.predictions.outputs)


def test_plain_sgd_folds_the_update_and_stays_within_rounding(mnist_dir: Path) -> None:
    fast, slow, a, b = both_paths(mnist_dir, train_limit=1000)
    assert_close_runs(fast, slow, a, b)


def test_the_last_partial_batch_is_trained(mnist_dir: Path) -> None:
    fast, slow, a, b = both_paths(mnist_dir, batch_size=7, train_limit=100, log_every=1)
    assert fast.steps == 15  # 14 full batches and one of 2 records
    assert_close_runs(fast, slow, a, b)
