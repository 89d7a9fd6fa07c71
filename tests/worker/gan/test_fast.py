"""The hand-written GAN step against autograd's (worker/gan/step.py), step by step: for every
knob of a GanSpec the two give the same losses, parameters and optimizer state, bit for bit;
and it declines what it does not cover, so the runner falls back to autograd."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from core.kinds.gan_spec import GanSpec
from worker.gan.fast import FastGanStep, fast_step
from worker.gan.networks import GanModels, build_models
from worker.gan.step import GanStep

CPU = torch.device("cpu")
STEPS = 25
ACTIVATIONS = ("sigmoid", "relu", "leaky_relu", "tanh", "gelu")


def _spec(
    *,
    loss: str = "bce",
    optimizer: str = "adam",
    activation: str = "leaky_relu",
    norm: str = "layer_norm",
    conditional: bool = False,
    latent: str = "normal",
    hidden: tuple[int, ...] = (12,),
    d_output: str = "sigmoid",
    g_output: str = "sigmoid",
) -> GanSpec:
    label = 10 if conditional else 0
    size = 5 if latent == "normal" else 1

    def net(widths: list[int], output: str) -> dict[str, Any]:
        # A large learning rate, so that a wrong gradient shows within a few steps.
        lr = 0.01 if optimizer == "adam" else 0.1
        return {
            "widths": widths,
            "activation": activation,
            "negative_slope": 0.1,
            "normalization": norm,
            "output": output,
            "optimizer": optimizer,
            "lr": lr,
        }

    return GanSpec(
        discriminator=net([784 + label, *hidden, 1], d_output),
        generator=net([size + label, *hidden, 784], g_output),
        loss=loss,  # type: ignore[arg-type]
        latent=latent,  # type: ignore[arg-type]
        latent_size=size,
        conditional=conditional,
        train_limit=STEPS,
        epochs=1,
        sample_every=STEPS,
    )


def _records() -> tuple[torch.Tensor, list[int]]:
    """MNIST-like records: most pixels 0, the rest in (0, 1]."""
    rng = torch.Generator().manual_seed(5)
    images = torch.rand(STEPS, 784, generator=rng) * (torch.rand(STEPS, 784, generator=rng) > 0.8)
    return images, torch.randint(0, 10, (STEPS,), generator=rng).tolist()


def _pair(spec: GanSpec) -> tuple[GanModels, GanStep, GanModels, FastGanStep]:
    auto_models, fast_models = build_models(spec, CPU), build_models(spec, CPU)
    fast = fast_step(spec, fast_models, CPU)
    assert fast is not None
    return auto_models, GanStep(spec, auto_models, CPU), fast_models, fast


def _assert_same_training(spec: GanSpec) -> None:
    auto_models, auto, fast_models, fast = _pair(spec)
    images, labels = _records()
    auto_rng, fast_rng = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    for i in range(STEPS):
        seeds, drawn = auto.draw(auto_rng)
        fast_seeds, fast_drawn = fast.draw(fast_rng)
        assert torch.equal(seeds, fast_seeds)
        assert drawn is None if fast_drawn is None else torch.equal(drawn, fast_drawn)
        expected = auto(images[i : i + 1], labels[i], seeds, drawn)
        got = fast(images[i : i + 1], labels[i], fast_seeds, fast_drawn, (True, True, True))
        for want, have in zip(expected, got, strict=True):
            assert want is not None and have is not None
            assert torch.equal(want.detach(), have), f"step {i}: loss {want} != {have}"
    for name in ("discriminator", "generator"):
        want_state = getattr(auto_models, name).state_dict()
        have_state = getattr(fast_models, name).state_dict()
        for key, value in want_state.items():
            assert torch.equal(value, have_state[key]), f"{name}.{key} differs"
    for name in ("d_optimizer", "g_optimizer"):
        want_opt = getattr(auto_models, name).state_dict()
        have_opt = getattr(fast_models, name).state_dict()
        assert want_opt["param_groups"] == have_opt["param_groups"]
        assert want_opt["state"].keys() == have_opt["state"].keys()
        for index, entry in want_opt["state"].items():
            for key, value in entry.items():
                assert torch.equal(value, have_opt["state"][index][key]), f"{name} {key}"


@pytest.mark.parametrize(
    ("loss", "optimizer", "norm", "conditional"),
    list(itertools.product(("bce", "mse"), ("adam", "sgd"), ("layer_norm", "none"), (False, True))),
)
def test_every_knob_trains_as_autograd_does(
    loss: str, optimizer: str, norm: str, conditional: bool
) -> None:
    # The activation and the seed's distribution turn over with the other knobs.
    index = ["bce", "mse"].index(loss) * 4 + ["adam", "sgd"].index(optimizer) * 2 + conditional
    _assert_same_training(
        _spec(
            loss=loss,
            optimizer=optimizer,
            norm=norm,
            conditional=conditional,
            activation=ACTIVATIONS[index % len(ACTIVATIONS)],
            latent="uniform" if index % 2 else "normal",
        )
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("latent", ["uniform", "normal"])
def test_every_activation_and_latent(activation: str, latent: str) -> None:
    _assert_same_training(_spec(activation=activation, latent=latent))


@pytest.mark.parametrize("hidden", [(), (9, 7), (6, 5, 4)])
def test_other_depths(hidden: tuple[int, ...]) -> None:
    _assert_same_training(_spec(hidden=hidden, conditional=True))


@pytest.mark.parametrize(("d_output", "g_output"), [("none", "sigmoid"), ("none", "none")])
def test_outputs_without_sigmoid(d_output: str, g_output: str) -> None:
    _assert_same_training(_spec(loss="mse", d_output=d_output, g_output=g_output))


@pytest.mark.parametrize("norm", ["layer_norm", "none"])
def test_book_sized_networks(norm: str) -> None:
    _assert_same_training(_spec(hidden=(200,), norm=norm, conditional=True))


def test_losses_are_computed_only_where_recorded() -> None:
    spec = _spec()
    _, _, _, fast = _pair(spec)
    images, labels = _records()
    seeds, drawn = fast.draw(torch.Generator().manual_seed(1))
    got = fast(images[:1], labels[0], seeds, drawn, (False, True, False))
    assert got[0] is None and got[2] is None and got[1] is not None


def _declines(models: GanModels, spec: GanSpec, device: torch.device = CPU) -> bool:
    return fast_step(spec, models, device) is None


def test_declines_what_it_does_not_cover() -> None:
    spec = _spec()
    models = build_models(spec, CPU)
    assert not _declines(models, spec)
    # An optimizer other than plain SGD or fused Adam steps through autograd's path.
    other = build_models(spec, CPU)
    other.g_optimizer = torch.optim.Adam(other.generator.parameters(), lr=0.01)
    assert _declines(other, spec)
    assert not other.d_optimizer.state  # declined before it set up any optimizer's state
    sgd = build_models(_spec(optimizer="sgd"), CPU)
    sgd.g_optimizer = torch.optim.SGD(sgd.generator.parameters(), lr=0.1, momentum=0.9)
    assert _declines(sgd, _spec(optimizer="sgd"))
    # A network that is not the spec's walk.
    odd = build_models(spec, CPU)
    odd.generator.append(torch.nn.Dropout())
    assert _declines(odd, spec)
    assert _declines(build_models(spec, CPU), spec, torch.device("meta"))
