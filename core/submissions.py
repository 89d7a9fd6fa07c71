"""What a client asks to run, as the services take it: an experiment (a preset plus overrides,
or a full spec, with `name` and `tags`) and an ablation (a grid of factors over a base, the base
and variants of it one at a time, or the book's chain of presets, over several seeds).

These are the inputs of api/services/submission.py and api/services/ablation_plan.py; the API
reads them from request bodies and lists them in its schema, and the bounds here are the ones
its documentation states.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from core.labels import Label
from core.model_spec import Int
from core.presets import PRESETS
from core.spec_paths import MAX_OVERRIDES, SpecPath

MAX_TAGS = 32
# A str checked against the presets by the services (whose refusal lists the known ones); the
# schema lists them too.
PresetName = Annotated[str, Field(json_schema_extra={"enum": list(PRESETS)})]


class ExperimentBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Label | None = Field(default=None, description="A label for people.")
    tags: list[Label] = Field(
        default_factory=list, max_length=MAX_TAGS, description="Free labels; filter by one."
    )


class ExperimentCreate(ExperimentBase):
    """The preset form of POST /experiments. The other form is a full spec (the fields of
    ExperimentSpec at the top level) plus `name` and `tags`."""

    preset: PresetName | None = Field(default=None, description="One of GET /presets' names.")
    overrides: dict[SpecPath, Any] = Field(
        default_factory=dict,
        max_length=MAX_OVERRIDES,
        description='Spec changes on top of the preset: nested ({"model": {"activation": '
        '"relu"}}) or dotted ({"model.activation": "relu"}).',
    )


# Grid size x seeds: enough for a 4x4 grid over 10 seeds or the book chain over 40 seeds,
# small enough that one request cannot flood the queue.
MAX_EXPERIMENTS = 200
MAX_FACTORS = 6
MAX_LEVELS = 20
MAX_SEEDS = 50
DEFAULT_SEEDS = 3
MAX_SEED = 2**31 - 1

# Checked by AblationRequest._check_seeds (one message for each way to get it wrong); the
# schema says the same.
Seeds = Annotated[
    Int | list[Int],
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_SEEDS},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
                    "minItems": 1,
                    "maxItems": MAX_SEEDS,
                    "uniqueItems": True,
                },
            ],
            "description": f"A count n (seeds 0..n-1) or the seeds themselves; 1..{MAX_SEEDS}.",
        }
    ),
]
Levels = Annotated[list[Any], Field(min_length=1, max_length=MAX_LEVELS)]
# The base plus up to MAX_LEVELS - 1 variants: as many arms as one factor can have.
MAX_VARIANTS = MAX_LEVELS - 1


class Variant(BaseModel):
    """One arm of design=variants: the base with these changes (several knobs at once when
    they belong together, e.g. the book's rand(1) seed is `latent` and `latent_size`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    label: Label | None = Field(default=None, description="The arm's name; default: its changes.")
    overrides: dict[SpecPath, Any] = Field(
        min_length=1,
        max_length=MAX_OVERRIDES,
        description='Spec changes of this arm alone, e.g. {"latent": "uniform", "latent_size": 1}.',
    )


# The figures an ablation's summary can compare (core/kinds: each kind's summary_metrics).
SummaryMetric = Literal[
    "test_accuracy", "entropy_bits", "confidence", "frechet", "correlation", "as_requested"
]


class AblationRequest(BaseModel):
    """The body of POST /ablations."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # The name also tags every member experiment: it follows the one rule for labels.
    name: Label | None = None
    design: Literal["grid", "book", "variants"] = Field(
        default="grid",
        description="`grid`: every combination of the factors' values on the base; "
        "`variants`: the base, then each of `variants` alone on it (one knob at a time); "
        "`book`: the five presets of the book's chain as arms.",
    )
    preset: PresetName | None = Field(default=None, description="Base preset of a grid.")
    base: dict[str, Any] | None = Field(
        default=None, description="Base spec (full or partial) of a grid, instead of a preset."
    )
    overrides: dict[SpecPath, Any] = Field(
        default_factory=dict,
        max_length=MAX_OVERRIDES,
        description='Applied to every arm, e.g. {"epochs": 1, "train_limit": 5000}.',
    )
    factors: dict[SpecPath, Levels] = Field(
        default_factory=dict,
        max_length=MAX_FACTORS,
        description='Dotted spec path -> values, e.g. {"model.activation": ["sigmoid", '
        '"leaky_relu"]}; arms are the full grid, in the order given.',
    )
    variants: list[Variant] = Field(
        default_factory=list,
        max_length=MAX_VARIANTS,
        description="design=variants: the arms after the base (arm 0), each the base with its "
        "own changes.",
    )
    seeds: Seeds = Field(
        default=DEFAULT_SEEDS,
        description=f"A count n (seeds 0..n-1) or the seeds themselves; 1..{MAX_SEEDS}.",
    )
    metric: SummaryMetric | None = Field(
        default=None,
        description="The figure of the finished runs the summary compares arm by arm; "
        "default the kind's (a classifier's test_accuracy, a GAN's judge's entropy_bits).",
    )

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int):
            if not 1 <= value <= MAX_SEEDS:
                raise ValueError(f"seeds={value}: give 1..{MAX_SEEDS} seeds")
            return value
        if not 1 <= len(value) <= MAX_SEEDS:
            raise ValueError(f"{len(value)} seeds given: give 1..{MAX_SEEDS} seeds")
        if len(set(value)) != len(value):
            raise ValueError("seeds must be distinct (a repeated seed is the same run twice)")
        if any(not 0 <= s <= MAX_SEED for s in value):
            raise ValueError(f"each seed must be within 0..{MAX_SEED}")
        return value

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def stored(self) -> dict[str, Any]:
        """The request as the store keeps it (and compares an Idempotency-Key's replay with):
        `variants` and `metric` only where given, so the ablations that do not use them read
        as they always did."""
        left_out = ({"variants"} if not self.variants else set()) | (
            {"metric"} if self.metric is None else set()
        )
        return self.model_dump(mode="json", exclude=left_out)
