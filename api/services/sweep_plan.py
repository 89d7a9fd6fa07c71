"""POST /sweeps: the request, checked whole (space, sampler, base spec, cost) before anything is
stored, and every problem a 422 naming the field."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from core.cost import CostLimits, SpecCost
from core.errors import InvalidFields, field_error, from_spec_errors
from core.kinds import DEFAULT_KIND
from core.labels import Label
from core.model_spec import Int
from core.presets import UnknownPresetError, preset_dict
from core.spec import ExperimentSpec
from core.spec_paths import MAX_OVERRIDES, SpecPath, apply_overrides
from core.store.experiments import scoped_key
from core.store.sweep_tables import Sweep
from core.submissions import PresetName
from core.sweeps import paired, study
from core.sweeps.space import MAX_SPACE_ENTRIES, Param, SpaceError, check_cost, parse_space

MAX_TRIALS = 200
MAX_SWEEP_SEEDS = 10
MAX_PARALLEL = 16
MAX_RUNGS = 4
DEFAULT_VALIDATION_RECORDS = 10_000
Objective = Literal["validation_accuracy", "validation_loss"]


class SweepRequest(BaseModel):
    """The body of POST /sweeps."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Label | None = None
    preset: PresetName | None = Field(default=None, description="Base preset of every trial.")
    spec: dict[str, Any] | None = Field(default=None, description="Base spec, instead of a preset.")
    overrides: dict[SpecPath, Any] = Field(default_factory=dict, max_length=MAX_OVERRIDES)
    space: dict[SpecPath, dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_SPACE_ENTRIES,
        description='Spec path -> {"type": "uniform"|"log_uniform"|"int"|"choice", ...}.',
    )
    seeds: Int = Field(default=3, ge=1, le=MAX_SWEEP_SEEDS, description="Seeds 0..n-1, paired.")
    sampler: Literal["tpe", "random", "grid", "qmc", "cmaes"] = "tpe"
    pruner: Literal["paired", "asha", "hyperband", "median", "none"] = "paired"
    max_trials: Int = Field(default=20, ge=1, le=MAX_TRIALS)
    parallel: Int = Field(default=4, ge=1, le=MAX_PARALLEL)
    validation_records: Int = Field(default=DEFAULT_VALIDATION_RECORDS, ge=1, le=30_000)
    objective: Objective = "validation_accuracy"
    rungs: Int = Field(default=3, ge=1, le=MAX_RUNGS, description="Geometric: 1/9, 1/3, 1.")
    sampler_seed: Int | None = Field(default=None, ge=0, le=2**31 - 1)
    prune_after: Int = Field(
        default=paired.MIN_TRIALS,
        ge=2,
        le=MAX_TRIALS,
        description="The paired pruner prunes no trial at a rung before this many trials "
        "(it included) have reported there.",
    )


@dataclass(frozen=True)
class SweepPlan:
    base: dict[str, Any]  # the trial spec before the space's values, without the seed
    preset: str | None
    space: dict[str, Param]
    cost: SpecCost  # of the costliest trial's one run


def _fail(field: str, message: str) -> InvalidFields:
    return InvalidFields([field_error(field, message, "body")])


def build_plan(request: SweepRequest, limits: CostLimits) -> SweepPlan:
    if request.preset and request.spec is not None:
        raise _fail("spec", "give a preset or a spec, not both")
    if "seed" in request.overrides:
        raise _fail("overrides.seed", "seeds are set by `seeds`")
    try:
        base = preset_dict(request.preset) if request.preset else dict(request.spec or {})
        merged = apply_overrides(base, request.overrides)
    except UnknownPresetError as exc:
        raise _fail("preset", str(exc)) from None
    except ValueError as exc:
        raise _fail("overrides", str(exc)) from None
    kind = merged.get("kind", DEFAULT_KIND)
    if kind != DEFAULT_KIND:
        # A sweep selects on a held-out split's accuracy or loss, which only a classifier has.
        raise _fail(
            "preset" if request.preset else "spec.kind",
            f"a sweep searches a classifier's knobs (it selects on validation accuracy or "
            f"loss); compare {kind} runs' knobs with an ablation (POST /ablations)",
        )
    merged["validation_records"] = request.validation_records
    # The test set is never read while a sweep decides: its trials report validation only.
    merged["evaluate_test"] = False
    merged["validation_rungs"] = study.rung_fractions(request.rungs)
    merged.pop("seed", None)
    try:
        ExperimentSpec.model_validate(merged)
    except ValidationError as exc:
        first = from_spec_errors(exc)[0]
        raise _fail(first["field"], first["reason"]) from None
    try:
        space = parse_space(dict(request.space))
        study.check_sampler(request.sampler, space)
        runs = request.max_trials * request.seeds
        cost = check_cost(space, merged, limits, runs)
    except SpaceError as exc:
        raise _fail(f"space.{exc.path}" if exc.path else "space", exc.message) from None
    except study.SamplerUnavailable as exc:
        raise _fail("sampler", str(exc)) from None
    return SweepPlan(merged, request.preset, space, cost)


def store_sweep(
    session: Session,
    request: SweepRequest,
    plan: SweepPlan,
    *,
    owner: str | None,
    key_id: str | None,
    idempotency_key: str | None = None,
) -> Sweep:
    """Add the sweep (no trials yet: the driver asks them). A key already stored (a racing
    retry committed first) fails the flush with an IntegrityError."""
    sweep = Sweep(
        name=request.name,
        request=request.model_dump(mode="json"),
        base=plan.base,
        preset=plan.preset,
        space=dict(request.space),
        seeds=list(range(request.seeds)),
        sampler=request.sampler,
        pruner=request.pruner,
        objective=request.objective,
        max_trials=request.max_trials,
        parallel=request.parallel,
        rungs=request.rungs,
        sampler_seed=(
            request.sampler_seed if request.sampler_seed is not None else secrets.randbelow(2**31)
        ),
        owner=owner,
        key_id=key_id,
        idempotency_key=scoped_key(idempotency_key, owner),
    )
    session.add(sweep)
    session.flush()
    return sweep
