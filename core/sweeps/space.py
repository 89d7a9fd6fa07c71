"""A sweep's search space: parsed, checked against the spec and the cost model, mapped to
Optuna's distributions, and applied to a base spec as overrides.

Each entry names a spec field by its dotted path and a type:
- `uniform` {low, high} and `log_uniform` {low, high} (low > 0): a number field;
- `int` {low, high, log?}: an integer field, or a number field taking whole values;
- `choice` {values}: any field, 1..MAX_CHOICES distinct JSON values.
Choices go to Optuna as their JSON text (its categorical choices must be scalars, and a
hidden-layer list is not), and come back decoded. Every problem is a SpaceError naming the
entry, which the API answers as a 422 on `space.<path>`.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ValidationError

from core import kinds
from core.cost import CostLimits, SpecCost, estimate, violations
from core.spec import ExperimentSpec
from core.spec_paths import apply_overrides, path_problem

MAX_SPACE_ENTRIES = 8
MAX_CHOICES = 16
# Corners of the space priced one by one at most; past this, the most expensive value of each
# entry is found one entry at a time (the cost model grows or shrinks with each knob alone).
MAX_CORNERS = 4096
# Fields a sweep does not search: seeds are paired on purpose; the split, the rungs and the
# judge are the sweep's own (every trial is ranked by the same measure); the kind is the base's.
RESERVED = (
    "seed", "kind", "validation_records", "validation_rungs", "evaluate_test", "judge",
    "judge_rungs",
)  # fmt: skip
NUMERIC_TYPES = ("uniform", "log_uniform", "int")


class SpaceError(ValueError):
    def __init__(self, path: str | None, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message


@dataclass(frozen=True)
class Param:
    path: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    def distribution(self) -> BaseDistribution:
        if self.type == "choice":
            return CategoricalDistribution([_text(v) for v in self.values])
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.type == "log_uniform")

    def corners(self) -> list[Any]:
        if self.type == "choice":
            return list(self.values)
        if self.type == "int":
            return [int(self.low or 0), int(self.high or 0)]
        return [self.low, self.high]

    def grid(self) -> list[Any] | None:
        """Every value, for the grid sampler; None for a continuous range."""
        if self.type == "choice":
            return [_text(v) for v in self.values]
        if self.type == "int":
            return list(range(int(self.low or 0), int(self.high or 0) + 1))
        return None

    def decode(self, value: Any) -> Any:
        """Optuna's value of this entry as the spec's value."""
        return json.loads(value) if self.type == "choice" else value


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=512)
def _field_kind(path: str, model: type[BaseModel]) -> str | None:
    """'integer', 'number' or 'other' for a field of `model` (the kind's spec), None when the
    spec has no such field or the path names a whole sub-object (a network, not one knob).
    Cached: pydantic builds the JSON schema anew on every call (about 2 ms a field), and the
    sweep driver parses a sweep's space on every pass, which a run at a rung waits for."""
    schema: dict[str, Any] = model.model_json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    node: dict[str, Any] | None = schema
    for part in path.split("."):
        props = _properties(node, defs)
        node = props.get(part)
        if node is None:
            return None
    assert node is not None
    if _properties(node, defs):
        return None
    types = {field.get("type") for field in _options(node, defs)}
    if "integer" in types:
        return "integer"
    return "number" if "number" in types else "other"


def _options(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema node's alternatives with references followed (an optional field, a union)."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        return _options(defs[ref.rsplit("/", 1)[-1]], defs)
    nested = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
    if nested:
        return [option for entry in nested for option in _options(entry, defs)]
    return [node]


def _properties(node: dict[str, Any] | None, defs: dict[str, Any]) -> dict[str, Any]:
    if node is None:
        return {}
    found: dict[str, Any] = {}
    for option in _options(node, defs):
        found.update(option.get("properties", {}))
    return found


def _number(raw: dict[str, Any], name: str, path: str) -> float:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpaceError(path, f"`{name}` must be a finite number")
    return float(value)


def parse_entry(path: str, raw: Any, model: type[BaseModel] = ExperimentSpec) -> Param:
    problem = path_problem(path)
    if problem:
        raise SpaceError(path, problem)
    if path in RESERVED:
        raise SpaceError(path, f"{path} is set by the sweep itself, not searched")
    kind = _field_kind(path, model)
    if kind is None:
        raise SpaceError(path, "the spec has no such field")
    if not isinstance(raw, dict):
        raise SpaceError(path, "an entry is an object with a `type`")
    kind_name = raw.get("type")
    allowed = {
        "uniform": {"type", "low", "high"},
        "log_uniform": {"type", "low", "high"},
        "int": {"type", "low", "high", "log"},
        "choice": {"type", "values"},
    }
    if kind_name not in allowed:
        raise SpaceError(path, f"`type` must be one of {', '.join(allowed)}")
    extra = set(raw) - allowed[kind_name]
    if extra:
        raise SpaceError(path, f"unknown keys for type {kind_name}: {', '.join(sorted(extra))}")
    if kind_name == "choice":
        values = raw.get("values")
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_CHOICES:
            raise SpaceError(path, f"`values` must be a list of 1..{MAX_CHOICES} values")
        texts = [_text(v) for v in values]
        if len(set(texts)) != len(texts):
            raise SpaceError(path, "`values` must be distinct")
        return Param(path, "choice", values=tuple(values))
    if kind == "other":
        raise SpaceError(path, f"type {kind_name} needs a numeric field; use `choice`")
    if kind_name != "int" and kind == "integer":
        raise SpaceError(path, f"{path} takes whole numbers: use type `int`")
    low, high = _number(raw, "low", path), _number(raw, "high", path)
    if not low < high:
        raise SpaceError(path, f"empty range: low ({low:g}) must be below high ({high:g})")
    log = kind_name == "log_uniform" or raw.get("log", False) is True
    if "log" in raw and not isinstance(raw["log"], bool):
        raise SpaceError(path, "`log` must be true or false")
    if log and low <= 0:
        raise SpaceError(path, f"a log scale needs low > 0, not {low:g}")
    if kind_name == "int" and (not low.is_integer() or not high.is_integer()):
        raise SpaceError(path, "an int range has whole-number bounds")
    return Param(path, kind_name, low, high, log)


def parse_space(raw: Any, base: Mapping[str, Any] | None = None) -> dict[str, Param]:
    """The space of a sweep whose base spec is `base` (its kind's fields; a classifier's
    when None)."""
    if not isinstance(raw, dict) or not 1 <= len(raw) <= MAX_SPACE_ENTRIES:
        raise SpaceError(None, f"the space is an object of 1..{MAX_SPACE_ENTRIES} entries")
    model = kinds.kind_of_raw(base).spec_model if base is not None else ExperimentSpec
    return {path: parse_entry(path, entry, model) for path, entry in raw.items()}


def apply_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The base spec dict with the trial's values (as the spec takes them) applied."""
    return apply_overrides(base, params)


def decode(space: dict[str, Param], optuna_params: dict[str, Any]) -> dict[str, Any]:
    return {path: space[path].decode(value) for path, value in optuna_params.items()}


def _price(base: dict[str, Any], values: dict[str, Any]) -> SpecCost:
    try:
        spec = kinds.parse(apply_params(base, values))
    except (ValidationError, ValueError) as exc:
        path = next(iter(values), None)
        reason = str(exc).splitlines()[-1 if isinstance(exc, ValidationError) else 0]
        text = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise SpaceError(
            path, f"a corner of the space is not a valid spec ({text}): {reason}"
        ) from None
    return estimate(spec)


def costliest_corner(
    space: dict[str, Param], base: dict[str, Any]
) -> tuple[dict[str, Any], SpecCost]:
    """The corner of the space whose one run costs the most CPU time, and its cost; every
    corner priced is also checked to be a valid spec."""
    paths = list(space)
    options = [space[p].corners() for p in paths]
    if math.prod(len(o) for o in options) <= MAX_CORNERS:
        corners = [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*options)]
        priced = [(corner, _price(base, corner)) for corner in corners]
        return max(priced, key=lambda pair: pair[1].cpu_seconds)
    best = {p: o[0] for p, o in zip(paths, options, strict=True)}
    for _ in range(2):  # one entry at a time, twice (a choice may change the next one's effect)
        for path, values in zip(paths, options, strict=True):
            best[path] = max(values, key=lambda v: _price(base, {**best, path: v}).cpu_seconds)
    return best, _price(base, best)


def check_cost(
    space: dict[str, Param],
    base: dict[str, Any],
    limits: CostLimits,
    runs: int,
    fail: Callable[[str], None] | None = None,
) -> SpecCost:
    """Refuse a space whose costliest trial passes a one-run bound, or a sweep of `runs` runs
    at that price over the CPU-hour bound of a batch (max_ablation_cpu_hours)."""
    corner, cost = costliest_corner(space, base)
    first = next(iter(corner), None)
    for problem in violations(cost, limits):
        raise SpaceError(first, f"its costliest trial ({_show(corner)}) is too big: {problem}")
    total_hours = cost.cpu_hours * runs
    if total_hours > limits.ablation_cpu_hours:
        raise SpaceError(
            None,
            f"{runs:,} runs at the costliest trial's {cost.cpu_hours:.3g} CPU-hours would take "
            f"{total_hours:,.1f} CPU-hours; the bound (max_ablation_cpu_hours) is "
            f"{limits.ablation_cpu_hours:g}: use fewer trials or seeds, or a cheaper space",
        )
    return cost


def _show(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())
