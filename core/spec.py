"""The experiment spec: the one contract between the API and the workers.

Plain pydantic, no torch, so the API validates a spec without the training stack installed.
Defaults are the book's baseline recipe (SEED.md): an empty spec is `seed-baseline`.
Every knob has a bound, and the bounds on total work are checked on the whole spec, so no
spec can ask for unbounded time or memory; each error names the field and the bound.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Any, Literal

from pydantic import (
    Field,
    model_validator,
)

from core.model_spec import (
    INPUT_FEATURES,
    NUM_CLASSES,
    ConvLayer,
    Float,
    Int,
    Layer,
    ModelSpec,
    StrictModel,
)

Dataset = Literal["mnist", "fashion-mnist"]
LossName = Literal["mse", "bce", "cross_entropy"]
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
DeviceName = Literal["auto", "cpu", "cuda"]

# Records in each dataset's train and test splits (both datasets share the MNIST layout).
TRAIN_RECORDS: dict[str, int] = {"mnist": 60_000, "fashion-mnist": 60_000}
TEST_RECORDS: dict[str, int] = {"mnist": 10_000, "fashion-mnist": 10_000}

MAX_EPOCHS = 100
MAX_BATCH = 4096
# 10 epochs of the book's batch-1 recipe; the broker's visibility timeout is sized above it.
MAX_TOTAL_STEPS = 600_000
MAX_LOSS_POINTS = 100_000
# A validation split holds out at most half the training set; a run reports at most this many
# intermediate validation figures (rungs, as fractions of its steps).
MAX_VALIDATION_RECORDS = 30_000
MAX_VALIDATION_RUNGS = 8

DEFAULT_LR: dict[str, float] = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001, "rmsprop": 0.01}


class ExperimentSpec(StrictModel):
    dataset: Dataset = "mnist"
    model: ModelSpec = ModelSpec()
    loss: LossName = "mse"
    optimizer: OptimizerName = "sgd"
    lr: Float | None = Field(
        default=None,
        gt=0.0,
        le=10.0,
        description="Learning rate; unset means the optimizer's default (sgd 0.01, adam 0.001).",
    )
    momentum: Float = Field(default=0.0, ge=0.0, lt=1.0, description="sgd and rmsprop only.")
    weight_decay: Float = Field(default=0.0, ge=0.0, le=1.0)
    epochs: Int = Field(default=3, ge=1, le=MAX_EPOCHS)
    batch_size: Int = Field(default=1, ge=1, le=MAX_BATCH)
    seed: Int = Field(default=0, ge=0, le=2**31 - 1)
    log_every: Int = Field(
        default=10, ge=1, le=100_000, description="Record the loss every N steps."
    )
    train_limit: Int | None = Field(
        default=None, ge=1, le=60_000, description="First N train records."
    )
    test_limit: Int | None = Field(
        default=None, ge=1, le=10_000, description="First N test records."
    )
    device: DeviceName = "auto"
    # Left out of every dump at their defaults, so a spec without a validation split keeps
    # its canonical JSON, fingerprint and group key (core/validation.py has the split's rule).
    validation_records: Int = Field(
        default=0,
        ge=0,
        le=MAX_VALIDATION_RECORDS,
        exclude_if=lambda v: v == 0,
        description="Training records held out (never trained on) to report validation "
        "figures; the rule is fixed and seed-independent (README.md, 'Sweeps').",
    )
    # A sweep's trials select on the validation split alone: they never read the test set
    # (their test figures would invite choosing on them); a confirmation's runs read it.
    evaluate_test: bool = Field(
        default=True,
        exclude_if=lambda v: v,
        description="Evaluate on the test set at the end (test metrics and per-record "
        "predictions); false needs validation_records, whose figures are then the run's.",
    )
    validation_rungs: list[Float] = Field(
        default_factory=list,
        max_length=MAX_VALIDATION_RUNGS,
        exclude_if=lambda v: not v,
        description="Fractions of the steps (0 < f <= 1, ascending) at which to report "
        "validation figures while training; needs validation_records.",
    )

    @model_validator(mode="after")
    def _fill_and_check(self) -> ExperimentSpec:
        if self.lr is None:
            # Frozen model: fill the default once so a stored spec says exactly what ran.
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
        _check_combinations(self)
        _check_validation(self)
        steps = self.total_steps
        if steps > MAX_TOTAL_STEPS:
            raise ValueError(
                f"the spec asks for {steps:,} optimizer steps "
                f"(epochs x ceil(records / batch_size)); the bound is {MAX_TOTAL_STEPS:,}: "
                "lower epochs or train_limit, or raise batch_size"
            )
        points = steps // self.log_every
        if points > MAX_LOSS_POINTS:
            raise ValueError(
                f"the spec would record {points:,} loss points; the bound is {MAX_LOSS_POINTS:,}: "
                f"raise log_every to at least {math.ceil(steps / MAX_LOSS_POINTS)}"
            )
        return self

    def layers(self) -> tuple[Layer, ...]:
        """The network's Linear layers, from the pixels (or a cnn's flattened convolutions) to
        its classes."""
        return self.model.layers(INPUT_FEATURES, NUM_CLASSES)

    def conv_layers(self) -> tuple[ConvLayer, ...]:
        """A cnn's convolutions, on the dataset's 28x28 images (none for an mlp)."""
        return self.model.conv_layers()

    @property
    def train_records(self) -> int:
        full = TRAIN_RECORDS[self.dataset] - self.validation_records
        return min(self.train_limit or full, full)

    @property
    def rung_steps(self) -> list[int]:
        """The steps at which validation figures are reported, one per rung, ascending."""
        return rung_steps_of(self.validation_rungs, self.total_steps)

    @property
    def test_records(self) -> int:
        full = TEST_RECORDS[self.dataset]
        return min(self.test_limit or full, full)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_records / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def loss_points(self) -> int:
        """How many points a complete run records: one every `log_every` steps."""
        return self.total_steps // self.log_every

    @property
    def effective_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def canonical_json(self) -> str:
        """A stable text of the spec: equal specs give equal text (used to reuse runs)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


def _check_validation(spec: ExperimentSpec) -> None:
    full = TRAIN_RECORDS[spec.dataset]
    held = spec.validation_records
    if held and spec.train_limit is not None and spec.train_limit + held > full:
        raise ValueError(
            f"train_limit={spec.train_limit} plus validation_records={held} is more than the "
            f"{full:,} training records: lower one of them"
        )
    if not spec.evaluate_test and not held:
        raise ValueError(
            "evaluate_test=false needs validation_records > 0: a run must report on records "
            "it did not train on"
        )
    rungs = spec.validation_rungs
    if rungs and not held:
        raise ValueError("validation_rungs needs validation_records > 0 (a split to evaluate)")
    check_rungs("validation_rungs", rungs, spec.total_steps)


def rung_steps_of(fractions: list[float], total: int) -> list[int]:
    """The step of each rung (a fraction of `total` steps), within 1..total."""
    return [max(1, min(total, math.ceil(f * total))) for f in fractions]


def check_rungs(field: str, fractions: list[float], total: int) -> None:
    """Rungs (a classifier's validation_rungs, a GAN's judge_rungs) are fractions of the steps
    in (0, 1], ascending, each on a step of its own."""
    if any(not 0.0 < f <= 1.0 for f in fractions):
        raise ValueError(f"{field} are fractions of the steps: each within (0, 1]")
    if any(b <= a for a, b in itertools.pairwise(fractions)):
        raise ValueError(f"{field} must be ascending and distinct")
    steps = rung_steps_of(fractions, total)
    if len(set(steps)) != len(steps):
        raise ValueError(
            f"{field} fall on the same step ({total} steps in all): use fewer rungs or more steps"
        )


def _check_combinations(spec: ExperimentSpec) -> None:
    """Reject knob combinations that train nonsense, saying why and what to use instead."""
    out = spec.model.output
    if spec.loss == "bce" and out == "none":
        raise ValueError(
            "loss=bce needs outputs in 0..1 but model.output=none emits raw logits: "
            "use model.output=sigmoid, or loss=cross_entropy for logits"
        )
    if spec.loss == "cross_entropy" and out != "none":
        raise ValueError(
            f"loss=cross_entropy applies its own softmax to logits, but model.output={out} "
            "squashes them first (the gradient nearly vanishes): use model.output=none "
            "(predictions still report softmax probabilities), or loss=bce with sigmoid"
        )
    if spec.model.normalization == "batch_norm" and spec.batch_size < 2:
        raise ValueError(
            "model.normalization=batch_norm needs batch_size >= 2 (batch statistics of one "
            "record are undefined): raise batch_size, or use layer_norm at batch_size 1"
        )
    if spec.model.normalization == "batch_norm" and spec.train_records % spec.batch_size == 1:
        raise ValueError(
            f"model.normalization=batch_norm: {spec.train_records} records in batches of "
            f"{spec.batch_size} leave a last batch of one record, whose batch statistics are "
            "undefined: change train_limit or batch_size"
        )
    if spec.momentum and spec.optimizer not in ("sgd", "rmsprop"):
        raise ValueError(
            f"momentum applies to sgd and rmsprop, not {spec.optimizer} "
            "(Adam-style optimizers keep their own moment estimates): leave momentum at 0"
        )


# What the runs of one fused group (the engine trains them in one batched step) may differ in:
# the engine keeps these per run. Everything else, and the update rule, must be the same.
PER_RUN_FIELDS = ("seed", "lr", "weight_decay", "momentum")


def group_key(spec: ExperimentSpec) -> str:
    """Specs with equal keys can train fused (worker.engine.run_training_group). Torch-free, so
    a worker or the API can group an ablation's runs without importing the engine."""
    data = spec.model_dump(mode="json")
    # Only the mlp's hand-written step stacks runs; a cnn trains alone on the autograd step
    # (worker/engine/group.py), so its key keeps every field and its seeds claim one by one.
    if spec.model.type != "cnn":
        for name in PER_RUN_FIELDS:
            data.pop(name)
    # Plain SGD has its own update; momentum or weight decay makes it the optimizer's own step.
    data["plain_sgd"] = spec.optimizer == "sgd" and not spec.momentum and not spec.weight_decay
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fusable(specs: list[ExperimentSpec]) -> bool:
    return bool(specs) and len({group_key(spec) for spec in specs}) == 1


def spec_total_steps(raw: dict[str, Any]) -> int:
    """The optimizer steps a stored spec asks for; 0 when it no longer validates (a spec
    stored by an older schema), whose run then reports the invalid spec as its failure."""
    try:
        return ExperimentSpec.model_validate(raw).total_steps
    except ValueError:
        return 0
