"""The hand-written step computes what autograd computes, for every knob, alone and fused.

The engine trains through FastStep; the plain PyTorch step (module forward, loss.backward(),
optimizer.step()) is the yardstick. Updates that run the very same kernels (fused Adam, the
optimizers' own step) must match bit for bit; plain SGD folds -lr into the gradient and (on
the CPU) reads only the non-zero pixels in its first layer, which rounds differently, so there
the series must agree to float32 rounding. Every knob also trains fused, three runs in one
group (other seeds, another learning rate), and each run must equal itself trained alone bit
for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from core.spec import ExperimentSpec
from worker.engine import (
    RunCallbacks,
    UnsupportedModelError,
    norms,
    run_training,
    run_training_group,
)
from worker.engine.fastpath import FastStep
from worker.engine.model import build_model, build_optimizer

BASE: dict[str, Any] = {
    "epochs": 1,
    "train_limit": 300,
    "test_limit": 100,
    "log_every": 5,
    "device": "cpu",
}


def recorded() -> tuple[RunCallbacks, list[float]]:
    values: list[float] = []
    return RunCallbacks(on_loss=lambda s, v: values.extend(v)), values


def both_paths(
    mnist_dir: Path, options: dict[str, Any] | None = None, **data: Any
) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    """(fast result, autograd result, fast series, autograd series); `options` go to the
    fast runs (run_training's keyword arguments)."""
    spec = ExperimentSpec.model_validate({**BASE, **data})
    results, series = [], []
    for fast in (True, False):
        callbacks, values = recorded()
        kwargs = (options or {}) if fast else {}
        results.append(
            run_training(
                spec, data_dir=mnist_dir, callbacks=callbacks, threads=1, fast_path=fast, **kwargs
            )
        )
        series.append(torch.tensor(values))
    assert results[0].fingerprint["engine_path"] == "fast"
    assert results[1].fingerprint["engine_path"] == "autograd"
    assert len(series[0]) == spec.loss_points
    fused_equals_alone(mnist_dir, spec, results[0], series[0].tolist(), **(options or {}))
    return results[0], results[1], series[0], series[1]


def fused_equals_alone(
    mnist_dir: Path, spec: ExperimentSpec, alone: Any, series: list[float], **options: Any
) -> None:
    """Train `spec` fused with two other runs (seeds 1, 2, the last at half the learning rate
    and, where set, other weight decay or momentum); each must equal its run alone."""
    changes: dict[str, Any] = {"seed": 2, "lr": spec.effective_lr / 2}
    if spec.weight_decay:
        changes["weight_decay"] = spec.weight_decay * 2
    if spec.momentum:
        changes["momentum"] = spec.momentum / 2
    specs = [spec, spec.model_copy(update={"seed": 1}), spec.model_copy(update=changes)]
    recorders = [recorded() for _ in specs]
    group = run_training_group(
        specs, data_dir=mnist_dir, callbacks=[c for c, _ in recorders], threads=1, **options
    )
    alone = [(alone, series)] + [
        (run_training(s, data_dir=mnist_dir, callbacks=c, threads=1, **options), v)
        for s, (c, v) in zip(specs[1:], [recorded() for _ in specs[1:]], strict=True)
    ]
    for member, (_, values), (single, single_values) in zip(group, recorders, alone, strict=True):
        assert member.fingerprint["fused_runs"] == 3
        assert values == single_values  # bit for bit
        assert np.array_equal(member.predictions.outputs, single.predictions.outputs)
        assert member.metrics["final_loss"] == single.metrics["final_loss"]


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


@pytest.mark.parametrize(
    "data",
    [
        {"optimizer": "adam", "batch_size": 3, "model": {"normalization": "layer_norm"}},
        {"optimizer": "sgd", "batch_size": 3, "model": {"activation": "relu"}},
    ],
)
def test_batches_on_the_dense_first_layer(mnist_dir: Path, data: dict[str, Any]) -> None:
    # Batches of 3 through the dense first layer's one GEMM over every run's rows.
    assert_close_runs(*both_paths(mnist_dir, {"sparse_input": False}, **data))


def test_the_last_partial_batch_is_trained(mnist_dir: Path) -> None:
    fast, slow, a, b = both_paths(mnist_dir, batch_size=7, train_limit=100, log_every=1)
    assert fast.steps == 15  # 14 full batches and one of 2 records
    assert_close_runs(fast, slow, a, b)


def test_a_module_the_fast_path_does_not_know_is_refused() -> None:
    spec = ExperimentSpec.model_validate(BASE)
    model = build_model(spec, torch.device("cpu"))
    model.insert(2, nn.Dropout(0.5))  # e.g. added to build_model alone
    optimizer = build_optimizer(spec, list(model.parameters()))
    with pytest.raises(UnsupportedModelError, match=r"module 2 of the model \(Dropout") as info:
        FastStep([model], [spec], [optimizer])
    assert "Linear" in str(info.value)  # what the spec's network has there


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.append(nn.ReLU()), r"module 4 of the model \(ReLU"),
        (lambda m: m.pop(3), r"the model ends at module 3, where the spec's network has Sigmoid"),
        (lambda m: m.__setitem__(1, nn.LeakyReLU(0.3)), r"module 1 .* has Sigmoid there"),
    ],
)
def test_extra_missing_or_other_modules_are_refused(change: Any, message: str) -> None:
    spec = ExperimentSpec.model_validate(BASE)
    model = build_model(spec, torch.device("cpu"))
    change(model)
    optimizer = build_optimizer(spec, list(model.parameters()))
    with pytest.raises(UnsupportedModelError, match=message):
        FastStep([model], [spec], [optimizer])


@pytest.mark.parametrize(("batch_size", "optimizer"), [(1, "adam"), (3, "sgd"), (4, "adamw")])
def test_layer_norm_batched_over_runs_as_on_cuda(
    mnist_dir: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int, optimizer: str
) -> None:
    # On CUDA layer norm runs batched over the runs (norms.py): here on the CPU, its numbers
    # against autograd, alone and fused (close, not bit for bit: it rounds its own way).
    monkeypatch.setattr(norms, "BATCHED_DEVICES", {"cpu", "cuda"})
    model = {"normalization": "layer_norm", "hidden": [64, 32], "activation": "leaky_relu"}
    data = {"model": model, "batch_size": batch_size, "optimizer": optimizer, "train_limit": 240}
    spec = ExperimentSpec.model_validate({**BASE, **data})
    callbacks, fast = recorded()
    result = run_training(spec, data_dir=mnist_dir, callbacks=callbacks, threads=1)
    slow_callbacks, slow = recorded()
    reference = run_training(
        spec, data_dir=mnist_dir, callbacks=slow_callbacks, threads=1, fast_path=False
    )
    assert_close_runs(result, reference, torch.tensor(fast), torch.tensor(slow))
    specs = [spec, spec.model_copy(update={"seed": 1})]
    recorders = [recorded() for _ in specs]
    run_training_group(specs, data_dir=mnist_dir, callbacks=[c for c, _ in recorders], threads=1)
    torch.testing.assert_close(
        torch.tensor(recorders[0][1]), torch.tensor(fast), rtol=2e-5, atol=1e-6
    )
