"""Model, loss and optimizer built from the spec: every knob of the spec maps to one choice here.

The network is the book's MLP generalised: for each hidden width a Linear, the hidden
activation, then the normalization; then Linear(last, 10) and the output activation. Layers
are created in that order right after seeding, so with the default spec the initial weights
are exactly those of the book's (and the reference loop's) network for the same seed.
"""

from __future__ import annotations

import torch
from torch import nn

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


def build_model(spec: ExperimentSpec, device: torch.device) -> nn.Sequential:
    """The spec's network, initialised from `spec.seed` on the CPU (so CPU and CUDA runs of one
    seed start from the same weights) without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        modules: list[nn.Module] = []
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
