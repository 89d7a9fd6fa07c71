"""Each knob of the spec builds the module, loss or optimizer it names."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from core.presets import build_spec
from core.spec import ExperimentSpec
from worker.engine.model import (
    DeviceUnavailableError,
    build_loss,
    build_model,
    build_optimizer,
    resolve_device,
)

CPU = torch.device("cpu")


def spec_of(**data: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate(data)


def test_default_model_is_the_books_network() -> None:
    model = build_model(ExperimentSpec(), CPU)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Linear, nn.Sigmoid, nn.Linear, nn.Sigmoid]
    assert (model[0].in_features, model[0].out_features) == (784, 200)
    assert (model[2].in_features, model[2].out_features) == (200, 10)


def test_seed_gives_the_reference_loops_initial_weights() -> None:
    # The reference loop seeds the global RNG and builds Linear(784, 200) then Linear(200, 10).
    torch.manual_seed(7)
    first, second = nn.Linear(784, 200), nn.Linear(200, 10)
    model = build_model(build_spec("seed-layernorm", {"seed": 7}), CPU)
    assert torch.equal(model[0].weight, first.weight)
    assert torch.equal(model[3].bias, second.bias)
    other = build_model(build_spec("seed-layernorm", {"seed": 8}), CPU)
    assert not torch.equal(model[0].weight, other[0].weight)


def test_building_does_not_disturb_the_callers_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(ExperimentSpec(seed=5), CPU)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sigmoid", nn.Sigmoid),
        ("relu", nn.ReLU),
        ("leaky_relu", nn.LeakyReLU),
        ("tanh", nn.Tanh),
        ("gelu", nn.GELU),
    ],
)
def test_activation(name: str, kind: type[nn.Module]) -> None:
    model = build_model(spec_of(model={"activation": name, "negative_slope": 0.3}), CPU)
    assert type(model[1]) is kind
    if name == "leaky_relu":
        assert model[1].negative_slope == 0.3


@pytest.mark.parametrize(
    ("name", "kind"),
    [("layer_norm", nn.LayerNorm), ("batch_norm", nn.BatchNorm1d)],
)
def test_normalization_follows_each_hidden_activation(name: str, kind: type[nn.Module]) -> None:
    model = build_model(
        spec_of(model={"normalization": name, "hidden": [64, 32]}, batch_size=8), CPU
    )
    kinds = [type(m) for m in model]
    assert kinds == [
        nn.Linear,
        nn.Sigmoid,
        kind,
        nn.Linear,
        nn.Sigmoid,
        kind,
        nn.Linear,
        nn.Sigmoid,
    ]
    assert model[2].weight.shape == (64,)
    assert model[5].weight.shape == (32,)


def test_no_normalization_by_default() -> None:
    model = build_model(ExperimentSpec(), CPU)
    assert not any(isinstance(m, nn.LayerNorm | nn.BatchNorm1d) for m in model)


@pytest.mark.parametrize(
    ("output", "loss", "out_kind", "loss_kind"),
    [
        ("sigmoid", "mse", nn.Sigmoid, nn.MSELoss),
        ("sigmoid", "bce", nn.Sigmoid, nn.BCELoss),
        ("softmax", "bce", nn.Softmax, nn.BCELoss),
        ("none", "cross_entropy", nn.Identity, nn.CrossEntropyLoss),
    ],
)
def test_output_and_loss(
    output: str, loss: str, out_kind: type[nn.Module], loss_kind: type[nn.Module]
) -> None:
    spec = spec_of(model={"output": output}, loss=loss)
    assert type(build_model(spec, CPU)[-1]) is out_kind
    built = build_loss(spec)
    assert type(built) is loss_kind
    assert getattr(built, "reduction", None) == "mean"


def test_softmax_output_is_over_classes() -> None:
    model = build_model(spec_of(model={"output": "softmax"}), CPU)
    assert model[-1].dim == 1


def test_hidden_widths_chain_the_layers() -> None:
    model = build_model(spec_of(model={"hidden": [100, 50, 20]}), CPU)
    shapes = [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)]
    assert shapes == [(784, 100), (100, 50), (50, 20), (20, 10)]


@pytest.mark.parametrize(
    ("data", "kind", "group"),
    [
        ({}, torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0}),
        (
            {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.001},
            torch.optim.SGD,
            {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.001},
        ),
        ({"optimizer": "adam"}, torch.optim.Adam, {"lr": 0.001, "weight_decay": 0.0}),
        (
            {"optimizer": "adamw", "weight_decay": 0.05, "lr": 0.002},
            torch.optim.AdamW,
            {"lr": 0.002, "weight_decay": 0.05},
        ),
        (
            {"optimizer": "rmsprop", "momentum": 0.5, "weight_decay": 0.01},
            torch.optim.RMSprop,
            {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.01},
        ),
    ],
)
def test_optimizer(
    data: dict[str, Any], kind: type[torch.optim.Optimizer], group: dict[str, Any]
) -> None:
    spec = spec_of(**data)
    model = build_model(spec, CPU)
    optimizer = build_optimizer(spec, list(model.parameters()))
    assert type(optimizer) is kind
    actual = optimizer.param_groups[0]
    assert {k: actual[k] for k in group} == group
    assert len(actual["params"]) == 4


def test_adam_uses_the_fused_kernel() -> None:
    spec = build_spec("seed-adam")
    optimizer = build_optimizer(spec, list(build_model(spec, CPU).parameters()))
    assert optimizer.param_groups[0]["fused"] is True


def test_device_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"no CUDA device.*use device=auto or device=cpu"):
        resolve_device("cuda")
    assert issubclass(DeviceUnavailableError, RuntimeError)
