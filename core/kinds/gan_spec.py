"""The GAN's spec (the book's chapters 7, 8 and 16): a discriminator and a generator, each a
stack of Linear layers, trained against each other one record at a time.

Torch-free pydantic, bounded like the classifier's spec (core/spec.py). Each network names
its widths from input to output, so the checks that tie them together (the generator draws
images of 784 pixels, the discriminator reads them, plus a one-hot label of 10 in the
conditional GAN) are plain comparisons, and each refusal names the field it is about.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Literal

from pydantic import Field, model_validator

from core.model_spec import (
    INPUT_FEATURES,
    MAX_DEPTH,
    MAX_WIDTH,
    NUM_CLASSES,
    Activation,
    Float,
    Int,
    Layer,
    StrictModel,
)
from core.spec import (
    MAX_EPOCHS,
    MAX_VALIDATION_RUNGS,
    TEST_RECORDS,
    TRAIN_RECORDS,
    Dataset,
    DeviceName,
    check_rungs,
    rung_steps_of,
)

# One GAN step is one training record: D on it, D on a fake, G through D. The book's cGAN
# (12 epochs of 60,000 records) is the longest recipe; its cost is bounded by core.cost.
MAX_GAN_STEPS = 720_000
# Per series. D records twice as often as G (it trains twice per record).
MAX_GAN_LOSS_POINTS = 150_000
MAX_LATENT = 1024
MAX_SAMPLES = 64  # fixed seeds whose images are stored at each sample point
MAX_SAMPLE_POINTS = 100
MAX_JUDGE_SAMPLES = 10_000

GanLoss = Literal["mse", "bce"]
GanOptimizer = Literal["sgd", "adam"]
Latent = Literal["uniform", "normal"]


class GanNetwork(StrictModel):
    widths: list[Int] = Field(
        min_length=2,
        max_length=MAX_DEPTH + 2,
        description=f"Widths from input to output: input, 0..{MAX_DEPTH} hidden, output.",
    )
    activation: Activation = "leaky_relu"
    negative_slope: Float = Field(default=0.02, ge=0.0, le=1.0)
    normalization: Literal["none", "layer_norm"] = Field(
        default="layer_norm", description="After each hidden activation."
    )
    output: Literal["sigmoid", "none"] = "sigmoid"
    optimizer: GanOptimizer = "adam"
    lr: Float = Field(default=0.0001, gt=0.0, le=10.0)

    @model_validator(mode="after")
    def _check_widths(self) -> GanNetwork:
        for i, width in enumerate(self.widths):
            if not 1 <= width <= MAX_WIDTH:
                raise ValueError(f"widths[{i}]={width}: each width must be 1..{MAX_WIDTH}")
        return self

    def layers(self) -> tuple[Layer, ...]:
        """Linear, activation, normalization per hidden width; then the output Linear and
        the output activation (the same walk as the classifier's ModelSpec.layers)."""
        last = len(self.widths) - 2
        return tuple(
            Layer(
                i,
                fan_in,
                fan_out,
                self.output if i == last else self.activation,
                "none" if i == last else self.normalization,
                i == last,
            )
            for i, (fan_in, fan_out) in enumerate(zip(self.widths, self.widths[1:], strict=False))
        )

    @property
    def parameters(self) -> int:
        return sum(
            layer.fan_in * layer.fan_out
            + layer.fan_out
            + (2 * layer.fan_out if layer.normalization == "layer_norm" else 0)
            for layer in self.layers()
        )


_D = GanNetwork(widths=[INPUT_FEATURES, 200, 1])
_G = GanNetwork(widths=[100, 200, INPUT_FEATURES])


class GanSpec(StrictModel):
    kind: Literal["gan"] = "gan"
    dataset: Dataset = "mnist"
    discriminator: GanNetwork = _D
    generator: GanNetwork = _G
    loss: GanLoss = "bce"
    latent: Latent = Field(default="normal", description="uniform: rand, normal: randn.")
    latent_size: Int = Field(default=100, ge=1, le=MAX_LATENT)
    conditional: bool = Field(
        default=False, description="A one-hot label of 10 appended to D's image and G's seed."
    )
    epochs: Int = Field(default=4, ge=1, le=MAX_EPOCHS)
    seed: Int = Field(default=0, ge=0, le=2**31 - 1)
    log_every: Int = Field(
        default=10, ge=1, le=100_000, description="Record a loss every N train calls of a network."
    )
    train_limit: Int | None = Field(default=None, ge=1, le=60_000)
    sample_every: Int = Field(
        default=10_000, ge=1, le=MAX_GAN_STEPS, description="Store samples every N steps."
    )
    samples: Int = Field(default=16, ge=1, le=MAX_SAMPLES, description="Fixed seeds sampled.")
    judge: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A finished MNIST classifier's experiment id that judges the samples; "
        "unset: the account's newest one, if any.",
    )
    judge_samples: Int = Field(default=1000, ge=10, le=MAX_JUDGE_SAMPLES)
    # A sweep's trials never read the test set: their judge measures the Fréchet distance to
    # training images (the first judge_samples); a confirmation's runs measure it to test ones.
    evaluate_test: bool = Field(
        default=True,
        exclude_if=lambda v: v,
        description="The judge's Fréchet distance is to test images; false: to training "
        "images (a sweep's trials, which never read the test set).",
    )
    judge_rungs: list[Float] = Field(
        default_factory=list,
        max_length=MAX_VALIDATION_RUNGS,
        exclude_if=lambda v: not v,
        description="Fractions of the steps (0 < f <= 1, ascending) at which the judge's "
        "figures are reported as rungs while training (a sweep's pruner reads them).",
    )
    device: DeviceName = "auto"

    @model_validator(mode="after")
    def _check(self) -> GanSpec:
        label = NUM_CLASSES if self.conditional else 0
        d_in, g_in = INPUT_FEATURES + label, self.latent_size + label
        why = " (784 pixels + a one-hot label of 10)" if label else " (784 pixels)"
        if self.discriminator.widths[0] != d_in:
            raise ValueError(
                f"discriminator.widths starts at {self.discriminator.widths[0]}, but the "
                f"discriminator reads {d_in} values{why}"
            )
        if self.discriminator.widths[-1] != 1:
            raise ValueError("discriminator.widths must end at 1 (real or fake)")
        if self.generator.widths[0] != g_in:
            raise ValueError(
                f"generator.widths starts at {self.generator.widths[0]}, but the generator's "
                f"input is latent_size {self.latent_size}"
                + (" + a one-hot label of 10" if label else "")
                + f" = {g_in}"
            )
        if self.generator.widths[-1] != INPUT_FEATURES:
            raise ValueError(
                f"generator.widths ends at {self.generator.widths[-1]}, but it draws images of "
                f"{INPUT_FEATURES} pixels"
            )
        if self.loss == "bce" and self.discriminator.output != "sigmoid":
            raise ValueError(
                "loss=bce needs the discriminator's output in 0..1: use discriminator.output="
                "sigmoid, or loss=mse"
            )
        if self.total_steps > MAX_GAN_STEPS:
            raise ValueError(
                f"the spec asks for {self.total_steps:,} GAN steps (epochs x records); the "
                f"bound is {MAX_GAN_STEPS:,}: lower epochs or train_limit"
            )
        if self.loss_points > MAX_GAN_LOSS_POINTS:
            raise ValueError(
                f"log_every={self.log_every} would record {self.loss_points:,} discriminator "
                f"loss points; the bound is {MAX_GAN_LOSS_POINTS:,}"
            )
        if math.ceil(self.total_steps / self.sample_every) > MAX_SAMPLE_POINTS:
            raise ValueError(
                f"sample_every={self.sample_every} would store more than {MAX_SAMPLE_POINTS} "
                f"sample points: raise it to at least "
                f"{math.ceil(self.total_steps / MAX_SAMPLE_POINTS)}"
            )
        check_rungs("judge_rungs", self.judge_rungs, self.total_steps)
        return self

    @property
    def train_records(self) -> int:
        full = TRAIN_RECORDS[self.dataset]
        return min(self.train_limit or full, full)

    @property
    def test_records(self) -> int:
        return TEST_RECORDS[self.dataset]

    @property
    def rung_steps(self) -> list[int]:
        """The steps at which the judge's figures are reported as rungs, ascending."""
        return rung_steps_of(self.judge_rungs, self.total_steps)

    @property
    def steps_per_epoch(self) -> int:
        return self.train_records

    @property
    def total_steps(self) -> int:
        return self.epochs * self.train_records

    @property
    def loss_points(self) -> int:
        """Points of the discriminator's series (it trains twice per step); the generator's
        has half as many."""
        return 2 * self.total_steps // self.log_every

    def sample_steps(self) -> list[int]:
        """Steps at which samples (and the judge's figures) are taken: every sample_every,
        and the last step."""
        steps = list(range(self.sample_every, self.total_steps + 1, self.sample_every))
        if not steps or steps[-1] != self.total_steps:
            steps.append(self.total_steps)
        return steps

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]
