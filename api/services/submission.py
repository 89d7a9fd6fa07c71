"""Reading the body of POST /experiments: a full spec, or a preset plus overrides, each with
optional `name` and `tags`. Every problem comes back as a field name and a reason.

A spec that validates is then priced (core/cost.py) and refused when one run of it would pass
a bound of the server (checkpoint size, memory, CPU time): whatever is accepted can run, and
its results can be stored."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from core import kinds
from core.cost import CostLimits, SpecCost, estimate, violations
from core.errors import InvalidFields, field_error, from_request_errors, from_spec_errors
from core.presets import PRESETS, UnknownPresetError, build_any_spec
from core.submissions import ExperimentBase, ExperimentCreate

_META = frozenset(ExperimentBase.model_fields)
_PRESET_FORM = frozenset(ExperimentCreate.model_fields) - _META
_BAD_OVERRIDE = re.compile(r"override '([^']*)'")


@dataclass(frozen=True)
class Submission:
    spec: kinds.AnySpec
    name: str | None
    tags: list[str]
    preset: str | None
    # Priced once, here: the bounds check and the cost the experiment records share it.
    cost: SpecCost


def parse_submission(body: dict[str, Any], limits: CostLimits) -> Submission:
    meta_fields = {k: v for k, v in body.items() if k in _META}
    try:
        meta = ExperimentBase.model_validate(meta_fields)
    except ValidationError as exc:
        raise InvalidFields(from_request_errors(exc.errors(include_url=False))) from None
    rest = {k: v for k, v in body.items() if k not in _META}
    preset_form = bool(_PRESET_FORM & rest.keys())
    preset, spec = _preset_form(rest) if preset_form else (None, _spec_form(rest))
    cost = estimate(spec)
    check_cost(cost, limits, "overrides" if preset_form else "spec")
    return Submission(spec=spec, name=meta.name, tags=list(meta.tags), preset=preset, cost=cost)


def check_cost(cost: SpecCost, limits: CostLimits, field: str) -> None:
    """Refuse (InvalidFields) naming each bound one run (priced at `cost`) would pass, and by
    how much."""
    found = violations(cost, limits)
    if found:
        raise InvalidFields([field_error(field, f"one run is too big: {v}") for v in found])


# What a body wrapped as {"spec": {...}} is told: the shapes POST /experiments does take.
WRAPPED_SPEC = (
    'the body is the spec itself, not wrapped in {"spec": ...}: send the spec\'s fields at '
    'the top level ({"epochs": 1, "model": {"hidden": [200]}}), or a preset plus '
    'overrides ({"preset": "seed-baseline", "overrides": {"epochs": 1}})'
)


def _spec_form(fields: dict[str, Any]) -> kinds.AnySpec:
    if isinstance(fields.get("spec"), dict):
        raise InvalidFields([field_error("spec", WRAPPED_SPEC)])
    try:
        spec = kinds.parse(fields)
    except ValidationError as exc:
        raise InvalidFields(from_spec_errors(exc)) from None
    except kinds.UnknownKindError as exc:
        raise InvalidFields([field_error("kind", str(exc))]) from None
    assert isinstance(spec, kinds.AnySpec)
    return spec


def _preset_form(fields: dict[str, Any]) -> tuple[str | None, kinds.AnySpec]:
    mixed = sorted(fields.keys() - _PRESET_FORM)
    if mixed:
        raise InvalidFields(
            [
                field_error(key, "spec fields can't sit beside `preset`: put them in `overrides`")
                for key in mixed
            ]
        )
    try:
        request = ExperimentCreate.model_validate(fields)
    except ValidationError as exc:
        raise InvalidFields(from_request_errors(exc.errors(include_url=False))) from None
    if request.preset is not None and request.preset not in PRESETS:
        reason = f"unknown preset {request.preset!r}; known presets: {', '.join(PRESETS)}"
        raise InvalidFields([field_error("preset", reason)])
    try:
        return request.preset, build_any_spec(request.preset, request.overrides)
    except ValidationError as exc:
        raise InvalidFields(from_spec_errors(exc)) from None
    except UnknownPresetError as exc:
        raise InvalidFields([field_error("preset", str(exc))]) from None
    except kinds.UnknownKindError as exc:
        raise InvalidFields([field_error("overrides.kind", str(exc))]) from None
    except ValueError as exc:
        # apply_overrides: a dotted path runs through something that isn't a section.
        match = _BAD_OVERRIDE.match(str(exc))
        field = f"overrides.{match.group(1)}" if match else "overrides"
        raise InvalidFields([field_error(field, str(exc))]) from None
