"""The network's eval-mode forward pass in numpy, from a run's stored safetensors file: what
POST /experiments/{id}/predict answers with, in the API process, which has no torch.

How it stays identical to the engine (worker/engine/model.py `build_model`, evaluated as
worker/engine/evaluate.py does, in eval mode):
- The layer plan is rebuilt from the spec in the file's metadata with the engine's rule: for
  each hidden width a Linear, the activation, then the normalization if any; then
  Linear(last, 10) and the output activation. Tensor names are the engine's nn.Sequential
  indices, so every tensor the file holds must be consumed with the shape the plan expects,
  or the file is refused (ModelFileError): a layer added to the engine alone fails loudly
  here instead of being skipped.
- Every knob is the same formula PyTorch documents, in float32 (the engine's dtype):
  Linear x @ W.T + b; sigmoid 1 / (1 + exp(-x)); relu max(x, 0); leaky_relu x if x >= 0
  else slope * x; tanh; gelu exact, 0.5 x (1 + erf(x / sqrt 2)) (nn.GELU's default, not the
  tanh approximation; erf from scipy.special); layer_norm over the features with the biased
  variance and eps 1e-5; batch_norm in eval mode from the running statistics, eps 1e-5;
  output sigmoid, softmax over the 10 classes (max subtracted first, as torch does), or, for
  `none` (logits), softmax too: evaluate.py reports softmax probabilities for logits.
- A cnn's convolutions, normalizations and pooling come first (conv_inference.py); its
  batch_norm uses each record's own statistics, as the engine (and the book) evaluates it.
- Differences left are float32 rounding (BLAS summation order): about 1e-7 on outputs in
  0..1; tests/api/services/test_inference.py trains one tiny network per knob with the real
  engine and checks every stored per-record output within 1e-6.

This is the classifier's predictor; api/services/predictors.py picks it by the file's kind and
keeps decoded networks cached.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load
from scipy.special import erf, expit

from api.services.conv_inference import conv_plan
from core.model_spec import INPUT_FEATURES
from core.spec import ExperimentSpec

Array = npt.NDArray[np.float32]
LAYER_NORM_EPS = 1e-5  # worker/engine/model.py: PyTorch's defaults, the same numbers
BATCH_NORM_EPS = 1e-5
MODEL_FORMAT = "trainlab.model"


class ModelFileError(ValueError):
    """The bytes are not a trainlab model file, or don't fit the spec they carry."""


@dataclass(frozen=True)
class Network:
    spec: ExperimentSpec
    metadata: dict[str, str]
    layers: tuple[Callable[[Array], Array], ...]

    def forward(self, x: Array) -> Array:
        """Outputs [records, 10] float32 for pixels [records, 784] in 0..1."""
        out = np.ascontiguousarray(x, dtype=np.float32)
        for layer in self.layers:
            out = layer(out)
        return out


def read_metadata(data: bytes) -> dict[str, str]:
    """The safetensors header's `__metadata__` (8-byte little-endian length, then JSON)."""
    if len(data) < 8:
        raise ModelFileError("not a safetensors file: shorter than its header length")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ModelFileError("not a safetensors file: header longer than the file")
    try:
        header = json.loads(data[8 : 8 + length])
    except ValueError as exc:
        raise ModelFileError(f"not a safetensors file: header is not JSON ({exc})") from exc
    metadata = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in metadata.items()}


def decode(data: bytes) -> Network:
    metadata = read_metadata(data)
    if metadata.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"not a {MODEL_FORMAT} file (format {metadata.get('format')!r})")
    try:
        spec = ExperimentSpec.model_validate_json(metadata["spec"])
        tensors = load(data)
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"unreadable model file: {exc}") from exc
    return Network(spec, metadata, _plan(spec, tensors))


def _plan(spec: ExperimentSpec, tensors: dict[str, Any]) -> tuple[Callable[[Array], Array], ...]:
    """The engine's nn.Sequential, layer by layer, as numpy functions over its tensors."""
    unused = set(tensors)

    def take(index: int, name: str, shape: tuple[int, ...]) -> Array:
        key = f"{index}.{name}"
        if key not in tensors:
            raise ModelFileError(f"model file lacks tensor {key!r}, which its spec implies")
        value = np.asarray(tensors[key])
        if value.shape != shape:
            raise ModelFileError(f"tensor {key!r} has shape {value.shape}, expected {shape}")
        unused.discard(key)
        return np.ascontiguousarray(value, dtype=np.float32)

    layers: list[Callable[[Array], Array]] = []
    index = 0  # the module's position in the engine's nn.Sequential: its tensors' prefix
    convs = spec.conv_layers()
    if convs:  # a cnn's front: the image view, the convolutions, the flattening
        layers, index = conv_plan(convs, _activation(spec), take, unused.discard)
    for layer in spec.layers():
        width = layer.fan_out
        weight = take(index, "weight", (width, layer.fan_in))
        layers.append(_linear(weight, take(index, "bias", (width,))))
        layers.append(_output(spec) if layer.is_output else _activation(spec))
        index += 2
        if layer.normalization == "layer_norm":
            layers.append(
                _layer_norm(take(index, "weight", (width,)), take(index, "bias", (width,)))
            )
            index += 1
        elif layer.normalization == "batch_norm":
            scale, shift = take(index, "weight", (width,)), take(index, "bias", (width,))
            mean = take(index, "running_mean", (width,))
            var = take(index, "running_var", (width,))
            unused.discard(f"{index}.num_batches_tracked")  # a training counter; eval ignores it
            layers.append(_batch_norm(scale, shift, mean, var))
            index += 1
    if unused:
        raise ModelFileError(f"model file has tensors its spec does not use: {sorted(unused)}")
    return tuple(layers)


def _linear(weight: Array, bias: Array) -> Callable[[Array], Array]:
    transposed = np.ascontiguousarray(weight.T)
    return lambda x: x @ transposed + bias


def _sigmoid(x: Array) -> Array:
    return expit(x)  # type: ignore[no-any-return]


def _gelu(x: Array) -> Array:
    return x * np.float32(0.5) * (np.float32(1.0) + erf(x * np.float32(math.sqrt(0.5))))  # type: ignore[no-any-return]


def _activation(spec: ExperimentSpec) -> Callable[[Array], Array]:
    name = spec.model.activation
    if name == "sigmoid":
        return _sigmoid
    if name == "relu":
        return lambda x: np.maximum(x, np.float32(0.0))
    if name == "leaky_relu":
        slope = np.float32(spec.model.negative_slope)
        return lambda x: np.where(x >= 0, x, x * slope)
    if name == "tanh":
        return np.tanh
    if name == "gelu":
        return _gelu
    raise ModelFileError(f"unknown activation {name!r}")


def _layer_norm(scale: Array, shift: Array) -> Callable[[Array], Array]:
    def normalize(x: Array) -> Array:
        mean = x.mean(axis=1, keepdims=True, dtype=np.float64)
        centered = x - mean
        var = np.mean(centered * centered, axis=1, keepdims=True)  # biased, as torch's
        normed = (centered / np.sqrt(var + LAYER_NORM_EPS)).astype(np.float32)
        out: Array = normed * scale + shift
        return out

    return normalize


def _batch_norm(scale: Array, shift: Array, mean: Array, var: Array) -> Callable[[Array], Array]:
    # Eval mode folds the running statistics into one multiply-add per feature, as torch does.
    alpha = (scale / np.sqrt(var.astype(np.float64) + BATCH_NORM_EPS)).astype(np.float32)
    beta = (shift - mean * alpha).astype(np.float32)
    return lambda x: x * alpha + beta


def _softmax(x: Array) -> Array:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _output(spec: ExperimentSpec) -> Callable[[Array], Array]:
    if spec.model.output == "sigmoid":
        return _sigmoid
    # softmax, and `none` (logits), which the engine reports as softmax probabilities.
    return _softmax


def predict(network: Network, pixels: Array) -> tuple[list[float], int]:
    """One image's 10 outputs and the predicted class (the largest output, the first on a tie,
    as torch's argmax)."""
    outputs = network.forward(pixels.reshape(1, INPUT_FEATURES))[0]
    return [float(v) for v in outputs], int(np.argmax(outputs))
