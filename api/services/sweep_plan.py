"""POST /sweeps: the request, checked whole (space, sampler, base spec, cost) before anything is
stored, and every problem a 422 naming the field."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from api.services.gan_judge import resolve_judge
from core import kinds
from core.cost import CostLimits, SpecCost
from core.errors import InvalidFields, field_error, from_spec_errors
from core.kinds import DEFAULT_KIND
from core.labels import Label
from core.model_spec import Int
from core.presets import UnknownPresetError, preset_dict
from core.spec_paths import MAX_OVERRIDES, SpecPath, apply_overrides
from core.store.experiments import scoped_key
from core.store.sweep_tables import Sweep
from core.submissions import PresetName
from core.sweeps import objectives, paired, study
from core.sweeps.objectives import ObjectiveName
from core.sweeps.space import MAX_SPACE_ENTRIES, Param, SpaceError, check_cost, parse_space

MAX_TRIALS = 200
MAX_SWEEP_SEEDS = 10
MAX_PARALLEL = 16
MAX_RUNGS = 4
DEFAULT_VALIDATION_RECORDS = 10_000


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
    validation_records: Int | None = Field(
        default=None,
        ge=1,
        le=30_000,
        description=f"A classifier's held-out split (default {DEFAULT_VALIDATION_RECORDS:,}); a "
        "GAN trains on every record and is judged on its samples.",
    )
    objective: ObjectiveName | None = Field(
        default=None,
        description="What trials are ranked on (default: validation_accuracy for a classifier, "
        "entropy_bits for a GAN, whose judge's figures are its objectives).",
    )
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
    objective: str  # the request's, or the kind's default


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
    objective = request.objective or objectives.DEFAULT_OBJECTIVE.get(kind, "")
    if kind == "gan":
        _gan_trials(request, merged)
    elif kind == DEFAULT_KIND:
        merged["validation_records"] = request.validation_records or DEFAULT_VALIDATION_RECORDS
        merged["validation_rungs"] = study.rung_fractions(request.rungs)
    else:
        raise _fail("spec.kind", f"a sweep searches a classifier's or a GAN's knobs, not {kind}'s")
    problem = objectives.problem(objective, kind, bool(merged.get("conditional", False)))
    if problem is not None:
        raise _fail("objective", problem)
    # The test set is never read while a sweep decides: its trials report on the validation
    # split (a classifier) or judge against training images (a GAN).
    merged["evaluate_test"] = False
    merged.pop("seed", None)
    try:
        kinds.parse(merged)
    except ValidationError as exc:
        first = from_spec_errors(exc)[0]
        raise _fail(first["field"], first["reason"]) from None
    try:
        space = parse_space(dict(request.space), merged)
        study.check_sampler(request.sampler, space)
        runs = request.max_trials * request.seeds
        cost = check_cost(space, merged, limits, runs)
    except SpaceError as exc:
        raise _fail(f"space.{exc.path}" if exc.path else "space", exc.message) from None
    except study.SamplerUnavailable as exc:
        raise _fail("sampler", str(exc)) from None
    return SweepPlan(merged, request.preset, space, cost, objective)


def _gan_trials(request: SweepRequest, merged: dict[str, Any]) -> None:
    if request.validation_records is not None:
        raise _fail(
            "validation_records",
            "a GAN trains on every training record: its trials are judged on their samples "
            "(the judge's Fréchet distance to training images), not on a held-out split",
        )
    merged["judge_rungs"] = study.rung_fractions(request.rungs)


def resolve_sweep_judge(session: Session, plan: SweepPlan, owner: str | None) -> SweepPlan:
    """A GAN sweep's trials are ranked by a judge: the one its spec names (a finished MNIST
    classifier), else the account's newest one, written into the base so every trial (and the
    confirmation) is judged by the same classifier; 422 when there is none."""
    if plan.base.get("kind") != "gan":
        return plan
    field = "spec.judge" if plan.preset is None else "overrides.judge"
    spec = resolve_judge(session, kinds.parse(plan.base), owner, field)  # type: ignore[arg-type]
    judge = getattr(spec, "judge", None)
    if judge is None:
        raise _fail(
            field,
            "a GAN sweep ranks its trials by a judge's figures, and this account has no "
            "finished MNIST classifier: train one first (e.g. the preset seed-adam), or name one",
        )
    return dataclasses.replace(plan, base={**plan.base, "judge": judge})


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
        objective=plan.objective,
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
