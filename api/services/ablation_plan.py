"""Ablation designs: from a request to the arms and the (arm, seed) experiments to run.

Pure: no database here. `build_plan` validates the request, expands a full factorial grid
(or the base and its variants one at a time, or the book's five-recipe chain) and checks
every cell's spec, so an ablation is either stored whole or refused (InvalidFields, each bad
field named) before anything is written.

The request itself (AblationRequest) and its bounds are core's (core/submissions.py).

Seeds are shared across arms on purpose: cell (arm A, seed s) and (arm B, seed s) start from
the same weights and data order, so the summary can compare arms pairwise per seed.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from api.services.gan_judge import resolve_judge
from core import kinds
from core.cost import (
    AblationCost,
    CostLimits,
    ablation_total,
    ablation_violations,
    estimate,
    violations,
)
from core.errors import InvalidFields, field_error, field_path, from_spec_errors
from core.kinds import AnySpec, GanSpec, UnknownKindError
from core.presets import BOOK_CHAIN, PRESETS, UnknownPresetError, preset_dict
from core.spec_paths import apply_overrides
from core.store import ablations, experiments
from core.store.models import Ablation, Experiment
from core.submissions import (
    MAX_EXPERIMENTS,
    MAX_FACTORS,
    MAX_LEVELS,
    AblationRequest,
)


class PlanError(InvalidFields):
    """A request that names a real field but asks for something impossible, naming the
    body field at `loc`."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__([field_error(field_path(loc) or "body", message, "body")])
        self.loc = loc
        self.message = message


@dataclass(frozen=True)
class Arm:
    index: int
    label: str
    preset: str | None
    overrides: dict[str, Any]  # the factor values of this arm (empty for the book design)
    spec: dict[str, Any]  # without the seed: the seed is what varies inside an arm

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Cell:
    arm: int
    seed: int
    spec: AnySpec
    preset: str | None
    cpu_hours: float  # the arm's price per run (a seed changes neither network nor steps)


@dataclass(frozen=True)
class Plan:
    design: str
    arms: list[Arm]
    seeds: list[int]
    cells: list[Cell]
    cost: AblationCost


def _label(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "base"


def _field_loc(field: str) -> tuple[str | int, ...]:
    """ "model.hidden[0]" -> ("model", "hidden", 0)."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", field))


def _validate(spec_dict: dict[str, Any], loc: tuple[str | int, ...], what: str) -> AnySpec:
    """The spec of its own kind (a classifier, or a GAN: every kind's spec can be ablated)."""
    try:
        spec = kinds.parse(spec_dict)
    except UnknownKindError as exc:
        raise PlanError((*loc, "kind"), f"{what}: {exc}") from None
    except ValidationError as exc:
        # The API's own reading of spec errors: it names the knob even for checks that span
        # several fields (loss=bce with model.output=none names `loss`).
        first = from_spec_errors(exc)[0]
        field_loc = _field_loc(first["field"]) if first["field"] != "spec" else ()
        raise PlanError((*loc, *field_loc), f"{what}: {first['reason']}") from None
    assert isinstance(spec, AnySpec)
    return spec


def _base(request: AblationRequest) -> dict[str, Any]:
    if request.preset and request.base is not None:
        raise PlanError(("base",), "give a base preset or a base spec, not both")
    try:
        return preset_dict(request.preset) if request.preset else dict(request.base or {})
    except UnknownPresetError as exc:
        raise PlanError(("preset",), str(exc)) from None


def _variant_arms(request: AblationRequest) -> list[tuple[str, dict[str, Any]]]:
    """(label, changes) of each arm: the base first (the summary's default reference), then
    each variant alone on it."""
    if request.factors:
        raise PlanError(
            ("factors",), "design=variants varies `variants` one at a time, not a grid of factors"
        )
    if not request.variants:
        raise PlanError(("variants",), "design=variants needs at least one variant of the base")
    arms: list[tuple[str, dict[str, Any]]] = [("base", {})]
    for index, variant in enumerate(request.variants):
        for key in ("seed", "kind"):
            if key in variant.overrides:
                raise PlanError(
                    ("variants", index, "overrides", key),
                    "seeds are set by `seeds`"
                    if key == "seed"
                    else "every arm is of the base's kind",
                )
        arms.append((variant.label or _label(variant.overrides), variant.overrides))
    labels = [label for label, _ in arms]
    changes = [repr(sorted(c.items())) for _, c in arms]
    for index in range(1, len(arms)):
        if changes[index] in changes[:index]:
            raise PlanError(
                ("variants", index - 1, "overrides"), "the same changes as an earlier arm"
            )
        if labels[index] in labels[:index]:
            raise PlanError(("variants", index - 1, "label"), f"label {labels[index]!r} is taken")
    return arms


def _grid_arms(request: AblationRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if request.variants:
        raise PlanError(("variants",), "variants are the arms of design=variants, not of a grid")
    base = _base(request)
    if len(request.factors) > MAX_FACTORS:
        raise PlanError(("factors",), f"{len(request.factors)} factors; the bound is {MAX_FACTORS}")
    for key, levels in request.factors.items():
        if key == "seed":
            raise PlanError(("factors", key), "vary seeds with `seeds`, not as a factor")
        if key == "kind":
            # Arms of different kinds share no metric to compare them on.
            raise PlanError(("factors", key), "every arm is of the base's kind: not a factor")
        if not 1 <= len(levels) <= MAX_LEVELS:
            raise PlanError(
                ("factors", key), f"{len(levels)} values; give 1..{MAX_LEVELS} values per factor"
            )
        texts = [repr(v) for v in levels]
        if len(set(texts)) != len(texts):
            raise PlanError(("factors", key), "values must be distinct")
    keys = list(request.factors)
    combos = itertools.product(*(request.factors[k] for k in keys))
    return base, [dict(zip(keys, combo, strict=True)) for combo in combos]


def build_plan(request: AblationRequest, limits: CostLimits) -> Plan:
    """Arms and cells of the request, every spec validated and priced; raises PlanError when
    one run of an arm, or all the runs together, would pass the server's cost bounds."""
    seeds = request.seed_list
    if request.design == "book":
        for field in ("factors", "variants", "preset", "base"):
            if getattr(request, field):
                raise PlanError(
                    (field,),
                    f"design=book takes its arms from the presets {', '.join(BOOK_CHAIN)}; "
                    "put changes shared by every arm in `overrides`",
                )
        arm_count = len(BOOK_CHAIN)
    elif request.design == "variants":
        arm_count = 1 + len(request.variants)
    else:
        arm_count = math.prod(len(v) for v in request.factors.values())
    total = arm_count * len(seeds)
    if total > MAX_EXPERIMENTS:
        raise PlanError(
            ("seeds",) if arm_count <= MAX_EXPERIMENTS else ("factors",),
            f"the ablation asks for {total:,} experiments ({arm_count:,} arms x {len(seeds)} "
            f"seeds); the bound is {MAX_EXPERIMENTS}: use fewer factor values or seeds",
        )

    if "seed" in request.overrides:
        raise PlanError(("overrides", "seed"), "seeds are set by `seeds`, not by overrides")
    if "kind" in request.overrides:
        raise PlanError(("overrides", "kind"), "the kind is the base's (its preset or spec)")
    raw: list[tuple[str | None, dict[str, Any], str, dict[str, Any]]]
    if request.design == "book":
        raw = [(name, PRESETS[name], name, {}) for name in BOOK_CHAIN]
    elif request.design == "variants":
        base = _base(request)
        raw = [(request.preset, base, label, c) for label, c in _variant_arms(request)]
    else:
        base, combos = _grid_arms(request)
        raw = [(request.preset, base, _label(c), c) for c in combos]

    arms: list[Arm] = []
    cells: list[Cell] = []
    costs = []
    for index, (preset, arm_base, label, changes) in enumerate(raw):
        try:
            merged = apply_overrides(apply_overrides(arm_base, request.overrides), changes)
        except ValueError as exc:
            where = "variants" if request.design == "variants" else "factors"
            raise PlanError((where,) if changes else ("overrides",), str(exc)) from None
        spec = _validate(merged, ("arms", index), f"arm {index} ({label})")
        # The seed changes neither the network nor the steps: one price per arm.
        cost = estimate(spec)
        for problem in violations(cost, limits):
            raise PlanError(
                ("arms", index), f"arm {index} ({label}): one run is too big: {problem}"
            )
        costs.append((cost, len(seeds)))
        spec_dict = spec.model_dump(mode="json")
        spec_dict.pop("seed")
        arms.append(Arm(index, label, preset, changes, spec_dict))
        for seed in seeds:
            cell_spec = _validate({**spec_dict, "seed": seed}, ("seeds",), f"seed {seed}")
            cells.append(Cell(index, seed, cell_spec, preset, cost.cpu_hours))
    _check_metric(request, arms)
    priced = ablation_total(costs)
    for problem in ablation_violations(priced, limits):
        raise PlanError(("seeds",), f"the ablation is too big: {problem}")
    return Plan(request.design, arms, seeds, cells, priced)


def _check_metric(request: AblationRequest, arms: list[Arm]) -> None:
    """A metric the summary compares must be a figure every arm's kind reports."""
    if request.metric is None:
        return
    for arm in arms:
        kind = kinds.kind_of_raw(arm.spec)
        if request.metric not in kind.summary_metrics:
            raise PlanError(
                ("metric",),
                f"{kind.name} runs do not report {request.metric}: compare "
                + ", ".join(kind.summary_metrics),
            )


def store_plan(
    session: Session,
    request: AblationRequest,
    plan: Plan,
    *,
    owner: str | None = None,
    owned: Callable[[float], dict[str, Any]] = lambda _: {},
    idempotency_key: str | None = None,
) -> tuple[Ablation, list[Experiment]]:
    """Reuse or create every cell's experiment, then the ablation (owned by `owner`); nothing
    is committed here. `owned(cpu_hours)` gives the owner fields of a new experiment
    (api/services/admission.py). Only the owner's own runs are reused
    (core/store/ablations.py `find_reusable` says why): another account's identical run is
    run again, as this owner's.
    Returns the ablation and the experiments created (to be sent to the broker)."""
    created: list[Experiment] = []
    cells: list[tuple[int, int, str]] = []
    judged = _one_judge(session, plan, owner)
    for cell in plan.cells:
        spec = judged(cell.spec)
        experiment = ablations.find_reusable(session, spec, owner)
        if experiment is None:
            tags = ["ablation", *([request.name] if request.name else [])]
            experiment, _ = experiments.create_experiment(
                session,
                spec,
                name=None,
                tags=tags,
                preset=cell.preset,
                **owned(cell.cpu_hours),
            )
            created.append(experiment)
        cells.append((cell.arm, cell.seed, experiment.id))
    ablation = ablations.add_ablation(
        session,
        name=request.name,
        design=plan.design,
        request=request.stored(),
        arms=[arm.as_dict() for arm in plan.arms],
        seeds=plan.seeds,
        members=cells,
        owner=owner,
        idempotency_key=idempotency_key,
    )
    return ablation, created


def _one_judge(session: Session, plan: Plan, owner: str | None) -> Callable[[AnySpec], AnySpec]:
    """The GAN cells' judge, the same for every cell: the one the request names (checked: a
    finished MNIST classifier), else the owner's newest, as a single GAN run gets it. Arms
    judged by different classifiers would differ by more than their knobs."""
    first = next((c.spec for c in plan.cells if isinstance(c.spec, GanSpec)), None)
    if first is None:
        return lambda spec: spec
    resolved = resolve_judge(session, first, owner, "overrides.judge")
    assert isinstance(resolved, GanSpec)
    judge = resolved.judge
    return lambda spec: (
        spec.model_copy(update={"judge": judge}) if isinstance(spec, GanSpec) else spec
    )
