"""The two networks of a GanSpec, their optimizers and the loss, built as the book builds
them (nn.Sequential of Linear, activation, LayerNorm; MSELoss or BCELoss; SGD or Adam)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.kinds.gan_spec import GanNetwork, GanSpec


def _activation(name: str, slope: float) -> nn.Module:
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(slope)
    if name == "tanh":
        return nn.Tanh()
    if name == "gelu":
        return nn.GELU()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


def build_network(net: GanNetwork) -> nn.Sequential:
    modules: list[nn.Module] = []
    for layer in net.layers():
        modules.append(nn.Linear(layer.fan_in, layer.fan_out))
        modules.append(_activation(layer.activation, net.negative_slope))
        if layer.normalization == "layer_norm":
            modules.append(nn.LayerNorm(layer.fan_out))
    return nn.Sequential(*modules)


def build_optimizer(net: GanNetwork, model: nn.Module) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if net.optimizer == "sgd":
        return torch.optim.SGD(params, lr=net.lr)
    # PyTorch's fused kernel: one pass per parameter instead of a loop of element-wise ops.
    return torch.optim.Adam(params, lr=net.lr, fused=True)


def build_loss(spec: GanSpec) -> nn.Module:
    return nn.MSELoss() if spec.loss == "mse" else nn.BCELoss()


@dataclass
class GanModels:
    discriminator: nn.Sequential
    generator: nn.Sequential
    d_optimizer: torch.optim.Optimizer
    g_optimizer: torch.optim.Optimizer
    loss: nn.Module


def build_models(spec: GanSpec, device: torch.device) -> GanModels:
    """Both networks initialised from `spec.seed` on the CPU (D first, then G), without
    touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        discriminator = build_network(spec.discriminator).to(device)
        generator = build_network(spec.generator).to(device)
    return GanModels(
        discriminator,
        generator,
        build_optimizer(spec.discriminator, discriminator),
        build_optimizer(spec.generator, generator),
        build_loss(spec),
    )


def draw_latent(spec: GanSpec, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` seeds of the spec's latent distribution (rand or randn), on the CPU."""
    shape = (count, spec.latent_size)
    if spec.latent == "uniform":
        return torch.rand(shape, generator=generator)
    return torch.randn(shape, generator=generator)
