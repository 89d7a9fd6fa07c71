"""The numpy forward pass of a cnn's convolutional front (core.spec ConvLayer), for /predict:
the engine's modules (worker/engine/model.py `conv_modules`) one by one, in float32.

- Conv2d as im2col: the zero-padded image's k x k windows at the stride
  (numpy's sliding_window_view, no copy), contracted with the weight [out, in, k, k], plus bias.
- The activation: the hidden layers' own (inference.py).
- batch_norm as the engine evaluates it (RecordBatchNorm2d, the book's train-mode BatchNorm at a
  batch of one): each record and channel normalized by its own mean and biased variance over
  the positions, eps 1e-5, then scaled and shifted; the running estimates are not used.
- MaxPool2d(2): the largest of each 2x2 block, an odd last row or column dropped (torch's floor).
- Flatten in torch's (channel, row, column) order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from core.model_spec import IMAGE_SIDE, ConvLayer

Array = npt.NDArray[np.float32]
Take = Callable[[int, str, tuple[int, ...]], Array]
BATCH_NORM_EPS = 1e-5  # worker/engine/model.py: PyTorch's default


def conv_plan(
    convs: tuple[ConvLayer, ...],
    activation: Callable[[Array], Array],
    take: Take,
    discard: Callable[[str], None],
) -> tuple[list[Callable[[Array], Array]], int]:
    """The front's numpy functions and the index of the next module in the engine's
    nn.Sequential (index 0 is the image view, which holds no tensors)."""
    layers: list[Callable[[Array], Array]] = [_image]
    index = 1
    for conv in convs:
        shape = (conv.out_channels, conv.in_channels, conv.kernel, conv.kernel)
        weight, bias = take(index, "weight", shape), take(index, "bias", (conv.out_channels,))
        layers.append(_conv2d(weight, bias, conv.stride, conv.padding))
        layers.append(activation)
        index += 2
        if conv.normalization == "batch_norm":
            width = (conv.out_channels,)
            scale, shift = take(index, "weight", width), take(index, "bias", width)
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                discard(f"{index}.{name}")  # kept by the engine, unused when evaluating
            layers.append(_record_norm(scale, shift))
            index += 1
        if conv.pool == "max2":
            layers.append(_max_pool2)
            index += 1
    layers.append(_flatten)
    return layers, index + 1


def _image(x: Array) -> Array:
    return x.reshape(len(x), 1, IMAGE_SIDE, IMAGE_SIDE)


def _flatten(x: Array) -> Array:
    return np.ascontiguousarray(x.reshape(len(x), -1))


def _conv2d(weight: Array, bias: Array, stride: int, padding: int) -> Callable[[Array], Array]:
    kernel = weight.shape[-1]

    def convolve(x: Array) -> Array:
        if padding:
            x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        # [N, C, H', W', k, k] windows, every `stride`-th position
        windows = sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
        out = np.einsum("nchwij,ocij->nohw", windows, weight, optimize=True)
        result: Array = (out + bias[None, :, None, None]).astype(np.float32, copy=False)
        return result

    return convolve


def _record_norm(scale: Array, shift: Array) -> Callable[[Array], Array]:
    def normalize(x: Array) -> Array:
        mean = x.mean(axis=(2, 3), keepdims=True, dtype=np.float64)
        centered = x - mean
        var = np.mean(centered * centered, axis=(2, 3), keepdims=True)  # biased, as torch's
        normed = (centered / np.sqrt(var + BATCH_NORM_EPS)).astype(np.float32)
        out: Array = normed * scale[None, :, None, None] + shift[None, :, None, None]
        return out

    return normalize


def _max_pool2(x: Array) -> Array:
    n, c, h, w = x.shape
    cropped = x[:, :, : h // 2 * 2, : w // 2 * 2]
    out: Array = cropped.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    return out
