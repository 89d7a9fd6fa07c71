"""A GAN's stored model file run in numpy (no torch in the API): the generator draws an image
from a seed (POST /experiments/{id}/generate, so a client can interpolate between seeds), the
discriminator judges an image (POST /predict). Tensor names are `generator.<i>.weight` ...
after each network's nn.Sequential keys (worker/gan/artifacts.py)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load, save

from api.services.inference import (
    ModelFileError,
    _gelu,
    _layer_norm,
    _linear,
    _sigmoid,
    read_metadata,
)
from core.kinds.gan_spec import GanNetwork, GanSpec

Array = npt.NDArray[np.float32]
NETWORKS = ("discriminator", "generator")


def _activation(name: str, slope: float) -> Callable[[Array], Array]:
    if name == "sigmoid":
        return _sigmoid
    if name == "relu":
        return lambda x: np.maximum(x, np.float32(0.0))
    if name == "leaky_relu":
        s = np.float32(slope)
        return lambda x: np.where(x >= 0, x, x * s)
    if name == "tanh":
        return np.tanh
    if name == "gelu":
        return _gelu
    return lambda x: x  # "none"


def _plan(net: GanNetwork, prefix: str, tensors: dict[str, Any]) -> list[Callable[[Array], Array]]:
    """The network's forward pass as the engine builds it (worker/gan/networks.py): modules
    numbered as nn.Sequential numbers them."""

    def take(index: int, name: str, shape: tuple[int, ...]) -> Array:
        key = f"{prefix}.{index}.{name}"
        value = tensors.get(key)
        if value is None or tuple(value.shape) != shape:
            raise ModelFileError(f"the model file has no tensor {key} of shape {shape}")
        return np.asarray(value, dtype=np.float32)

    steps: list[Callable[[Array], Array]] = []
    index = 0
    for layer in net.layers():
        shape = (layer.fan_out, layer.fan_in)
        steps.append(_linear(take(index, "weight", shape), take(index, "bias", (layer.fan_out,))))
        steps.append(_activation(layer.activation, net.negative_slope))
        index += 2
        if layer.normalization == "layer_norm":
            width = (layer.fan_out,)
            steps.append(_layer_norm(take(index, "weight", width), take(index, "bias", width)))
            index += 1
    return steps


@dataclass(frozen=True)
class GanModel:
    spec: GanSpec
    tensors: dict[str, Any]
    discriminator: list[Callable[[Array], Array]]
    generator: list[Callable[[Array], Array]]


def decode(data: bytes) -> GanModel:
    try:
        spec = GanSpec.model_validate_json(read_metadata(data)["spec"])
        tensors = load(data)
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"not a GAN's model file: {exc}") from exc
    return GanModel(
        spec,
        tensors,
        _plan(spec.discriminator, "discriminator", tensors),
        _plan(spec.generator, "generator", tensors),
    )


def _run(steps: list[Callable[[Array], Array]], x: Array) -> Array:
    for step in steps:
        x = step(x)
    return x


def _onehot(label: int) -> Array:
    out = np.zeros((1, 10), np.float32)
    out[0, label] = 1.0
    return out


def generate(model: GanModel, seed: Array, label: int | None) -> Array:
    """The generator's 784 pixels for one seed (and label, for a conditional GAN)."""
    x = seed.reshape(1, -1).astype(np.float32)
    if model.spec.conditional:
        x = np.concatenate((x, _onehot(label or 0)), 1)
    image: Array = _run(model.generator, x)[0]
    return image


def predict(model: GanModel, pixels: Array) -> tuple[list[float], int]:
    """The discriminator on one image: P(real) and 1 when it says real. A conditional one is
    asked with each label 0..9: ten outputs, and the label it finds most real."""
    x = pixels.reshape(1, -1).astype(np.float32)
    if not model.spec.conditional:
        out = float(_run(model.discriminator, x)[0, 0])
        return [out], int(out > 0.5)
    rows = np.concatenate((np.repeat(x, 10, 0), np.eye(10, dtype=np.float32)), 1)
    outputs = _run(model.discriminator, rows)[:, 0]
    return [float(v) for v in outputs], int(np.argmax(outputs))


def network_file(data: bytes, network: str) -> bytes:
    """One network of a GAN's model file as a safetensors file of its own (the tensor names
    without the network's prefix: nn.Sequential keys, as the engine builds the network)."""
    metadata = read_metadata(data)
    tensors = load(data)
    prefix = f"{network}."
    part = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
    if not part:
        raise ModelFileError(f"the model file has no {network} network")
    return save(part, metadata={**metadata, "network": network})


def png_grid(pixels: npt.NDArray[np.uint8], columns: int = 8) -> bytes:
    """Images (uint8 [n, 784]) as one grayscale PNG grid, `columns` wide, 2-pixel gutters."""
    from PIL import Image

    count = pixels.shape[0]
    rows = -(-count // columns)
    cols = min(columns, count)
    gap = 2
    canvas = np.zeros((rows * (28 + gap) - gap, cols * (28 + gap) - gap), np.uint8)
    for i in range(count):
        r, c = divmod(i, columns)
        canvas[r * 30 : r * 30 + 28, c * 30 : c * 30 + 28] = pixels[i].reshape(28, 28)
    buffer = io.BytesIO()
    Image.fromarray(canvas, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
