"""The network half of the experiment spec: a classifier's model (an MLP, or a cnn's
convolutions before it) and the one walk over its layers (ModelSpec.layers, conv_layers) that
the cost model, the engine, its layout check, grouping and the API's numpy inference all take,
so they cannot disagree. Plain pydantic, no torch (core/spec.py holds the rest of the spec).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Activation = Literal["sigmoid", "relu", "leaky_relu", "tanh", "gelu"]
Normalization = Literal["none", "layer_norm", "batch_norm"]
OutputActivation = Literal["sigmoid", "softmax", "none"]
ModelType = Literal["mlp", "cnn"]
ConvNormalization = Literal["none", "batch_norm"]
Pool = Literal["none", "max2"]
INPUT_FEATURES = 784
IMAGE_SIDE = 28  # both datasets: one channel of 28x28 pixels, stored row-major
NUM_CLASSES = 10
MAX_DEPTH = 8
MAX_WIDTH = 4096
MAX_CONV_DEPTH = 4
MAX_CHANNELS = 64
MAX_KERNEL = 7
MAX_STRIDE = 3
MAX_PADDING = 3


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema says), but true or "3"
    is a mistake to report, not to guess at."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# Strict types that read JSON numbers as JSON Schema does.
Int = Annotated[int, BeforeValidator(_whole_number)]
Float = Annotated[float, BeforeValidator(_number)]


class StrictModel(BaseModel):
    # Unknown keys are typos, and a typo silently ignored is a wrong experiment. Strict types
    # (with Int and Float reading JSON numbers): `"epochs": "3"` or `true` is refused.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class Layer:
    """One Linear layer of the network and what follows it: the walk every part that builds,
    checks, prices or runs the network takes (ModelSpec.layers), so they cannot disagree."""

    index: int  # among the Linear layers, 0 first
    fan_in: int
    fan_out: int
    activation: str  # the hidden activation, or for the output layer the output activation
    normalization: str  # after the activation; "none" for the output layer
    is_output: bool


@dataclass(frozen=True)
class ConvLayer:
    """One convolution of a cnn and what follows it (activation, normalization, pooling), with
    the image shape it reads and the one it leaves: the conv half of the same walk."""

    index: int  # among the convolutions, 0 first
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    in_side: int  # the square image it reads, side in pixels
    conv_side: int  # after the convolution (and the activation and normalization)
    out_side: int  # after the pooling, what the next layer reads
    normalization: str  # "none" or "batch_norm" (BatchNorm2d over the channels)
    pool: str  # "none" or "max2" (MaxPool2d(2), after the normalization)

    @property
    def out_features(self) -> int:
        return self.out_channels * self.out_side * self.out_side


class ConvSpec(StrictModel):
    """Conv2d(in, channels, kernel, stride, padding), the model's activation, the optional
    normalization, then the optional 2x2 max pooling."""

    channels: Int = Field(ge=1, le=MAX_CHANNELS, description=f"Output channels, 1..{MAX_CHANNELS}.")
    kernel: Int = Field(ge=1, le=MAX_KERNEL, description=f"Square kernel side, 1..{MAX_KERNEL}.")
    stride: Int = Field(default=1, ge=1, le=MAX_STRIDE)
    padding: Int = Field(default=0, ge=0, le=MAX_PADDING, description="Zeros on each side.")
    normalization: ConvNormalization = Field(
        default="none",
        description="batch_norm: BatchNorm2d after the activation; evaluated with each "
        "record's own statistics, as the book's network (always in train mode) is.",
    )
    pool: Pool = Field(default="none", description="max2: MaxPool2d(2) after the normalization.")


class ModelSpec(StrictModel):
    # An mlp dumps without `type` and `conv` (exclude_if), exactly as every spec did before they
    # existed, so its canonical JSON, fingerprint, group key and checkpoint identity are as before.
    type: ModelType = Field(
        default="mlp",
        exclude_if=lambda value: value == "mlp",
        description="mlp: the hidden Linear layers on the 784 pixels; cnn: the convolutions of "
        "`conv` on the 28x28 image first, flattened into the hidden layers (which may be empty).",
    )
    conv: list[ConvSpec] = Field(
        default=[],
        exclude_if=lambda value: not value,
        max_length=MAX_CONV_DEPTH,
        description=f"The convolutions of a cnn, 1..{MAX_CONV_DEPTH}; empty for an mlp.",
    )
    hidden: list[Int] = Field(
        default=[200],
        max_length=MAX_DEPTH,
        description=f"Hidden layer widths, 1..{MAX_DEPTH} layers of 1..{MAX_WIDTH} units "
        "(0 layers allowed for a cnn).",
    )
    activation: Activation = "sigmoid"
    negative_slope: Float = Field(
        default=0.02, ge=0.0, le=1.0, description="Slope below zero for leaky_relu."
    )
    normalization: Normalization = Field(
        default="none", description="Applied after each hidden activation."
    )
    output: OutputActivation = Field(
        default="sigmoid", description="Output activation; `none` emits logits."
    )

    @model_validator(mode="after")
    def _check_widths(self) -> ModelSpec:
        if self.type == "mlp" and not self.hidden:
            raise ValueError("hidden needs at least 1 layer for model.type=mlp")
        if self.type == "mlp" and self.conv:
            raise ValueError("conv applies to model.type=cnn: set type=cnn, or leave conv empty")
        if self.type == "cnn" and not self.conv:
            raise ValueError("conv needs at least 1 convolution for model.type=cnn")
        for i, width in enumerate(self.hidden):
            if not 1 <= width <= MAX_WIDTH:
                raise ValueError(f"hidden[{i}]={width}: each width must be 1..{MAX_WIDTH}")
        self.conv_layers()  # raises, naming conv[i], where the image shrinks away
        return self

    def conv_layers(self) -> tuple[ConvLayer, ...]:
        """The convolutions with the image shape each reads and leaves (empty for an mlp).
        Raises ValueError naming `conv[i]` where a layer would leave no pixel (or, with
        batch_norm, a single one: its statistics over one value per channel are undefined)."""
        out: list[ConvLayer] = []
        channels, side = 1, IMAGE_SIDE
        for i, conv in enumerate(self.conv):
            padded = side + 2 * conv.padding
            if padded < conv.kernel:
                raise ValueError(
                    f"conv[{i}] (kernel {conv.kernel}, padding {conv.padding}) reads a "
                    f"{side}x{side} image, smaller than its kernel: it would leave no output; "
                    "use a smaller kernel or stride, fewer convolutions, or padding"
                )
            conv_side = (padded - conv.kernel) // conv.stride + 1
            out_side = conv_side // 2 if conv.pool == "max2" else conv_side
            if out_side < 1:
                raise ValueError(
                    f"conv[{i}] leaves a {conv_side}x{conv_side} image that pool=max2 "
                    "shrinks below 1x1: drop the pooling or shrink the image less before it"
                )
            if conv.normalization == "batch_norm" and conv_side == 1:
                raise ValueError(
                    f"conv[{i}] leaves a 1x1 image, and normalization=batch_norm over a "
                    "record's single value per channel is undefined: shrink the image less, "
                    "or use normalization=none"
                )
            out.append(
                ConvLayer(
                    i,
                    channels,
                    conv.channels,
                    conv.kernel,
                    conv.stride,
                    conv.padding,
                    side,
                    conv_side,
                    out_side,
                    conv.normalization,
                    conv.pool,
                )
            )
            channels, side = conv.channels, out_side
        return tuple(out)

    def flat_features(self, inputs: int) -> int:
        """What the first Linear reads: the pixels, or the last convolution's output flattened."""
        convs = self.conv_layers()
        return convs[-1].out_features if convs else inputs

    def layers(self, inputs: int, classes: int) -> tuple[Layer, ...]:
        """For each hidden width a Linear, the activation, then the normalization; then
        Linear(last, classes) and the output activation. A cnn's convolutions come before
        them (conv_layers), and its first Linear reads their flattened output."""
        out: list[Layer] = []
        fan_in = self.flat_features(inputs)
        for index, width in enumerate(self.hidden):
            out.append(Layer(index, fan_in, width, self.activation, self.normalization, False))
            fan_in = width
        out.append(Layer(len(self.hidden), fan_in, classes, self.output, "none", True))
        return tuple(out)
