"""The layers of a model built by `build_model`, checked module by module against its spec.

The hand-written step computes the forward and backward pass of exactly the modules the spec
describes: per hidden layer a Linear, the activation, the optional normalization; then the
output Linear and activation. A module it does not know (say an nn.Dropout added to
`build_model` alone) would be silently skipped in training while evaluation ran it, so any
difference between the model and that list is refused here, naming the module and its position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from torch import nn

from core.spec import ExperimentSpec
from worker.engine.model import BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, LAYER_NORM_EPS

Norm = nn.LayerNorm | nn.BatchNorm1d
# A check of a module's settings (its class is checked separately).
_Predicate = Callable[[Any], bool]
_Expected = tuple[type[nn.Module], _Predicate]


def _always(module: nn.Module) -> bool:
    return True


class UnsupportedModelError(ValueError):
    """The model holds a module the fast path cannot train (or lacks one it expects)."""


@dataclass(frozen=True)
class Layer:
    linear: nn.Linear
    norm: Norm | None


def model_layers(model: nn.Sequential, spec: ExperimentSpec) -> list[Layer]:
    """The model's Linear layers with the normalization after each; raises
    UnsupportedModelError unless the model is exactly the spec's network."""
    expected = _expected(spec)
    modules = list(model)
    for position, module in enumerate(modules):
        if position >= len(expected):
            _refuse(position, module, "nothing (the spec's network ends before it)")
        kind, check = expected[position]
        if type(module) is not kind or not check(module):
            _refuse(position, module, _describe(kind, spec))
    if len(modules) < len(expected):
        kind, _ = expected[len(modules)]
        raise UnsupportedModelError(
            f"the model ends at module {len(modules)}, where the spec's network has "
            f"{_describe(kind, spec)}: the fast path trains only the spec's network"
        )
    layers: list[Layer] = []
    for module in modules:
        if isinstance(module, nn.Linear):
            layers.append(Layer(module, None))
        elif isinstance(module, Norm):
            layers[-1] = Layer(layers[-1].linear, module)
    return layers


def _refuse(position: int, module: nn.Module, wanted: str) -> NoReturn:
    raise UnsupportedModelError(
        f"the fast path does not know module {position} of the model ({module!r}): the spec's "
        f"network has {wanted} there. It would be skipped in training; teach "
        "worker/engine/fastpath.py and layout.py the module, or train with fast_path=False"
    )


def _describe(kind: type[nn.Module], spec: ExperimentSpec) -> str:
    if kind is nn.LeakyReLU:
        return f"LeakyReLU({spec.model.negative_slope})"
    return kind.__name__


def _expected(spec: ExperimentSpec) -> list[_Expected]:
    """(module class, check of its settings) for each position of the spec's network."""
    out: list[_Expected] = []
    for layer in spec.layers():
        out.append((nn.Linear, _linear(layer.fan_in, layer.fan_out)))
        if layer.is_output:
            out.append(_output(spec))
            continue
        out.append(_activation(spec))
        norm = _norm(spec, layer.fan_out)
        if norm is not None:
            out.append(norm)
    return out


def _linear(width_in: int, width_out: int) -> _Predicate:
    return lambda m: (m.in_features, m.out_features) == (width_in, width_out) and m.bias is not None


def _activation(spec: ExperimentSpec) -> _Expected:
    name = spec.model.activation
    if name == "sigmoid":
        return nn.Sigmoid, _always
    if name == "tanh":
        return nn.Tanh, _always
    if name == "relu":
        return nn.ReLU, lambda m: not m.inplace
    if name == "leaky_relu":
        slope = spec.model.negative_slope
        return nn.LeakyReLU, lambda m: m.negative_slope == slope
    if name == "gelu":
        return nn.GELU, lambda m: m.approximate == "none"
    raise UnsupportedModelError(f"unknown activation {name!r}")


def _norm(spec: ExperimentSpec, width: int) -> _Expected | None:
    name = spec.model.normalization
    if name == "none":
        return None
    if name == "layer_norm":
        return nn.LayerNorm, (
            lambda m: (
                tuple(m.normalized_shape) == (width,)
                and m.eps == LAYER_NORM_EPS
                and m.elementwise_affine
                and m.bias is not None
            )
        )
    if name == "batch_norm":
        return nn.BatchNorm1d, (
            lambda m: (
                m.num_features == width
                and m.eps == BATCH_NORM_EPS
                and m.momentum == BATCH_NORM_MOMENTUM
                and m.affine
                and m.track_running_stats
            )
        )
    raise UnsupportedModelError(f"unknown normalization {name!r}")


def _output(spec: ExperimentSpec) -> _Expected:
    name = spec.model.output
    if name == "sigmoid":
        return nn.Sigmoid, _always
    if name == "softmax":
        return nn.Softmax, lambda m: m.dim == 1
    if name == "none":
        return nn.Identity, _always
    raise UnsupportedModelError(f"unknown output activation {name!r}")
