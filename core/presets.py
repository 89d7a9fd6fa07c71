"""The book's five recipes (SEED.md), each changing one knob on the one before, and the book's
later networks that are classifiers too (BOOK.md: the CNN of chapter 13).

A preset is a partial spec dict; `build_spec` applies overrides to it and validates.
Learning rates are left unset so that switching the optimizer in an override also switches
to that optimizer's default rate, as the book does (SGD 0.01 -> Adam 0.001).
"""

from __future__ import annotations

from typing import Any

from core import kinds
from core.spec import ExperimentSpec
from core.spec_paths import apply_overrides

_BASELINE: dict[str, Any] = {
    "dataset": "mnist",
    "model": {
        "hidden": [200],
        "activation": "sigmoid",
        "normalization": "none",
        "output": "sigmoid",
    },
    "loss": "mse",
    "optimizer": "sgd",
    "epochs": 3,
    "batch_size": 1,
    "log_every": 10,
}
_BCE = apply_overrides(_BASELINE, {"loss": "bce"})
_LEAKY = apply_overrides(_BCE, {"model.activation": "leaky_relu", "model.negative_slope": 0.02})
_ADAM = apply_overrides(_LEAKY, {"optimizer": "adam"})
_LAYERNORM = apply_overrides(_ADAM, {"model.normalization": "layer_norm"})
# BOOK.md, chapter 13: Conv2d(1,10,k5,s2), LeakyReLU(0.02), BatchNorm2d(10), Conv2d(10,10,k3,s2),
# LeakyReLU(0.02), BatchNorm2d(10), flatten 250, Linear(250,10), Sigmoid; BCE, Adam, batch 1.
_CNN: dict[str, Any] = apply_overrides(
    _ADAM,
    {
        "model.type": "cnn",
        "model.conv": [
            {"channels": 10, "kernel": 5, "stride": 2, "normalization": "batch_norm"},
            {"channels": 10, "kernel": 3, "stride": 2, "normalization": "batch_norm"},
        ],
        "model.hidden": [],
    },
)

# The book's GANs (BOOK.md): chapter 7's first attempt, chapter 8's refined networks (and
# the same networks fed rand(1), which the book shows still collapse), chapter 16's cGAN.
_GAN_FIRST: dict[str, Any] = {
    "kind": "gan",
    "discriminator": {
        "widths": [784, 200, 1],
        "activation": "sigmoid",
        "normalization": "none",
        "optimizer": "sgd",
        "lr": 0.01,
    },
    "generator": {
        "widths": [1, 200, 784],
        "activation": "sigmoid",
        "normalization": "none",
        "optimizer": "sgd",
        "lr": 0.01,
    },
    "loss": "mse",
    "latent": "uniform",
    "latent_size": 1,
    "epochs": 1,
    "log_every": 10,
    "sample_every": 10_000,
}
_REFINED: dict[str, Any] = {
    "activation": "leaky_relu",
    "negative_slope": 0.02,
    "normalization": "layer_norm",
    "optimizer": "adam",
    "lr": 0.0001,
}
_GAN_MNIST: dict[str, Any] = {
    **_GAN_FIRST,
    "discriminator": {"widths": [784, 200, 1], **_REFINED},
    "generator": {"widths": [100, 200, 784], **_REFINED},
    "loss": "bce",
    "latent": "normal",
    "latent_size": 100,
    "epochs": 4,
    "sample_every": 20_000,
}
_GAN_RAND1 = apply_overrides(
    _GAN_MNIST, {"latent": "uniform", "latent_size": 1, "generator.widths": [1, 200, 784]}
)
_CGAN = apply_overrides(
    _GAN_MNIST,
    {
        "conditional": True,
        "discriminator.widths": [794, 200, 1],
        "generator.widths": [110, 200, 784],
        "epochs": 12,
        "sample_every": 60_000,
    },
)

PRESETS: dict[str, dict[str, Any]] = {
    "seed-baseline": _BASELINE,
    "seed-bce": _BCE,
    "seed-leakyrelu": _LEAKY,
    "seed-adam": _ADAM,
    "seed-layernorm": _LAYERNORM,
    "cnn-mnist": _CNN,
    "gan-first-attempt": _GAN_FIRST,
    "gan-mnist": _GAN_MNIST,
    "gan-mnist-rand1": _GAN_RAND1,
    "cgan-mnist": _CGAN,
}

DESCRIPTIONS: dict[str, str] = {
    "seed-baseline": "The book's baseline: Sigmoid hidden layer, MSE loss, SGD lr 0.01.",
    "seed-bce": "seed-baseline with binary cross-entropy loss.",
    "seed-leakyrelu": "seed-bce with LeakyReLU(0.02) in the hidden layer.",
    "seed-adam": "seed-leakyrelu with Adam (lr 0.001).",
    "seed-layernorm": "seed-adam with LayerNorm(200) after the hidden activation.",
    "cnn-mnist": "The book's CNN (ch. 13): two strided convolutions with LeakyReLU and "
    "BatchNorm2d, Linear(250, 10), Sigmoid; BCE, Adam lr 0.001.",
    "gan-first-attempt": "The book's first GAN (ch. 7): Sigmoid networks, MSE, SGD 0.01, "
    "rand(1) seeds, 1 epoch. It collapses.",
    "gan-mnist": "The refined GAN (ch. 8): LeakyReLU and LayerNorm, BCE, Adam 0.0001, "
    "randn(100) seeds, 4 epochs.",
    "gan-mnist-rand1": "gan-mnist fed rand(1) seeds: the book shows it still collapses.",
    "cgan-mnist": "The conditional GAN (ch. 16): gan-mnist with a one-hot label on D's image "
    "and G's seed, 12 epochs.",
}

# The book's chain, in order: the `book` ablation design runs these as its arms.
BOOK_CHAIN: tuple[str, ...] = (
    "seed-baseline",
    "seed-bce",
    "seed-leakyrelu",
    "seed-adam",
    "seed-layernorm",
)


class UnknownPresetError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")


def preset_dict(name: str) -> dict[str, Any]:
    try:
        return apply_overrides(PRESETS[name], {})
    except KeyError:
        raise UnknownPresetError(name) from None


def build_any_spec(
    preset: str | None = None, overrides: dict[str, Any] | None = None
) -> kinds.AnySpec:
    """A preset (or the defaults) plus overrides, validated by its kind's spec model. Raises
    pydantic.ValidationError, ValueError for a bad override path (or an unknown kind), or
    UnknownPresetError."""
    base = preset_dict(preset) if preset else {}
    spec = kinds.parse(apply_overrides(base, overrides or {}))
    assert isinstance(spec, kinds.AnySpec)
    return spec


def build_spec(
    preset: str | None = None, overrides: dict[str, Any] | None = None
) -> ExperimentSpec:
    """build_any_spec for a classifier's preset (ValueError for another kind's)."""
    spec = build_any_spec(preset, overrides)
    if not isinstance(spec, ExperimentSpec):
        raise ValueError(f"preset {preset!r} is a {kinds.kind_of(spec).name}, not a classifier")
    return spec
