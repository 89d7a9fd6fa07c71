"""Model, loss and optimizer built from the spec: every knob of the spec maps to one choice here.

The network is the book's MLP generalised: for each hidden width a Linear, the hidden
activation, then the normalization; then Linear(last, 10) and the output activation. A cnn
puts its convolutions (conv.py) before them. Layers are created in that order right after
seeding, so with the default spec (and cnn-mnist) the initial weights are exactly those of the
book's (and the reference loop's) network for the same seed.
"""

from __future__ import annotations

import torch
from torch import nn

from core.model_spec import IMAGE_SIDE
from core.spec import ExperimentSpec

# PyTorch's own defaults, named so the fast path uses the very same numbers.
LAYER_NORM_EPS = 1e-5
BATCH_NORM_EPS = 1e-5
BATCH_NORM_MOMENTUM = 0.1


class DeviceUnavailableError(RuntimeError):
    """The run asks for a device this machine does not have."""


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when this machine has it; asking for CUDA without it is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "the run asks for device=cuda, but this worker has no CUDA device (PyTorch "
            f"{torch.__version__} sees none): use device=auto or device=cpu, or run it on a GPU "
            "worker"
        )
    if requested not in ("cpu", "cuda"):
        raise DeviceUnavailableError(f"unknown device {requested!r}: use auto, cpu or cuda")
    return torch.device(requested)


def hidden_activation(spec: ExperimentSpec) -> nn.Module:
    name = spec.model.activation
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(spec.model.negative_slope)
    if name == "tanh":
        return nn.Tanh()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}")


def normalization(spec: ExperimentSpec, width: int) -> nn.Module | None:
    name = spec.model.normalization
    if name == "none":
        return None
    if name == "layer_norm":
        return nn.LayerNorm(width, eps=LAYER_NORM_EPS)
    if name == "batch_norm":
        return nn.BatchNorm1d(width, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM)
    raise ValueError(f"unknown normalization {name!r}")


def output_activation(spec: ExperimentSpec) -> nn.Module:
    name = spec.model.output
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softmax":
        return nn.Softmax(dim=1)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown output activation {name!r}")


class RecordBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d in training; in eval mode each record normalized by its own statistics.

    The book's networks override `train()`, so they never switch to eval mode: its CNN's
    BatchNorm2d normalizes every record it is tested on with that record's own statistics (a
    batch of one in train mode: per channel, over the image's positions), and its published
    accuracy (0.9814) was measured that way. So this module trains exactly as nn.BatchNorm2d
    (batch statistics, running estimates updated) and evaluates as the book did, whatever the
    batch size: per record and channel, mean and biased variance over the positions, then
    scale and shift. The running estimates are kept (state dict, checkpoint) but not used, and
    evaluation leaves them alone. /predict's numpy pass (api/services/inference.py) agrees.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        return nn.functional.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def conv_modules(spec: ExperimentSpec) -> list[nn.Module]:
    """A cnn's front (empty for an mlp): the 784 pixels viewed as a 1x28x28 image; per
    convolution Conv2d, the activation, the optional RecordBatchNorm2d and MaxPool2d(2); then
    the flattening into the first Linear, in the order the book's CNN builds them."""
    convs = spec.conv_layers()
    if not convs:
        return []
    modules: list[nn.Module] = [nn.Unflatten(1, (1, IMAGE_SIDE, IMAGE_SIDE))]
    for conv in convs:
        modules.append(
            nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                conv.kernel,
                stride=conv.stride,
                padding=conv.padding,
            )
        )
        modules.append(hidden_activation(spec))
        if conv.normalization == "batch_norm":
            modules.append(
                RecordBatchNorm2d(
                    conv.out_channels, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM
                )
            )
        if conv.pool == "max2":
            modules.append(nn.MaxPool2d(2))
    modules.append(nn.Flatten(1))
    return modules


def build_model(spec: ExperimentSpec, device: torch.device) -> nn.Sequential:
    """The spec's network, initialised from `spec.seed` on the CPU (so CPU and CUDA runs of one
    seed start from the same weights) without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        # A cnn's convolutions first (worker/engine/conv.py), flattened into the Linear layers.
        modules: list[nn.Module] = conv_modules(spec)
        for layer in spec.layers():
            modules.append(nn.Linear(layer.fan_in, layer.fan_out))
            if layer.is_output:
                modules.append(output_activation(spec))
                continue
            modules.append(hidden_activation(spec))
            norm = normalization(spec, layer.fan_out)
            if norm is not None:
                modules.append(norm)
        model = nn.Sequential(*modules)
    return model.to(device)


def build_loss(spec: ExperimentSpec) -> nn.Module:
    """Mean-reduced, as the book's nn.MSELoss() / nn.BCELoss(). MSE and BCE compare the outputs
    with one-hot targets; cross-entropy takes logits and class indices."""
    if spec.loss == "mse":
        return nn.MSELoss()
    if spec.loss == "bce":
        return nn.BCELoss()
    if spec.loss == "cross_entropy":
        return nn.CrossEntropyLoss()
    raise ValueError(f"unknown loss {spec.loss!r}")


def uses_class_targets(spec: ExperimentSpec) -> bool:
    return spec.loss == "cross_entropy"


def build_optimizer(spec: ExperimentSpec, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The spec's optimizer. Adam and AdamW use PyTorch's fused kernel (CPU and CUDA): one pass
    over each parameter per step instead of a Python loop of element-wise ops."""
    lr = spec.effective_lr
    wd = spec.weight_decay
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=spec.momentum, weight_decay=wd)
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, fused=True)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=True)
    if spec.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=spec.momentum, weight_decay=wd)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}")
