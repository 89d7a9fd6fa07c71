"""Dotted paths into a spec, and overrides applied along them: how presets, submissions and
ablation factors change a spec dict before it is validated (core.spec.ExperimentSpec).

Plain dict work on JSON data, no pydantic model of the spec: the paths and values are bounded
here, before any validation, so a hostile override costs nothing and its error stays short.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import Field

# Overrides and ablation factors name spec fields by dotted paths ("model.activation"). The
# spec is two levels deep and its longest path is 20 characters; these bounds refuse anything
# else before any work is done on it (and keep error messages about it short).
MAX_OVERRIDES = 32
MAX_PATH_LENGTH = 64
MAX_PATH_DEPTH = 3
# Values go one level further than paths: a cnn's model.conv is a list of sections.
MAX_VALUE_DEPTH = MAX_PATH_DEPTH + 1
SPEC_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,31}(\.[A-Za-z_][A-Za-z0-9_]{0,31}){0,2}$"
# A dotted spec path as a request field (the keys of overrides and factors).
SpecPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PATH_LENGTH,
        pattern=SPEC_PATH_PATTERN,
        description="A spec field, nested ones joined by dots: epochs, model.activation.",
    ),
]


def shown(text: str, most: int = 40) -> str:
    """`text` quoted for a message, cut to `most` characters: an error never echoes megabytes."""
    return repr(text) if len(text) <= most else f"{text[:most]!r}... ({len(text):,} characters)"


def path_problem(key: str) -> str | None:
    """Why `key` cannot be a dotted spec path, or None."""
    if not isinstance(key, str) or not key:
        return "a spec path must be a non-empty string"
    if len(key) > MAX_PATH_LENGTH:
        return f"a spec path is at most {MAX_PATH_LENGTH} characters, this one is {len(key):,}"
    if not re.match(SPEC_PATH_PATTERN, key):
        return "a spec path is field names joined by dots, e.g. model.activation"
    return None


def _check_depth(value: Any, key: str, depth: int = 1) -> None:
    if depth > MAX_VALUE_DEPTH:
        raise ValueError(
            f"override {key!r}: nested deeper than the spec ({MAX_VALUE_DEPTH} levels)"
        )
    if isinstance(value, dict):
        for child in value.values():
            _check_depth(child, key, depth + 1)
    elif isinstance(value, list):
        for child in value:
            _check_depth(child, key, depth + 1)


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge overrides into a spec dict. Keys may be nested dicts or dotted paths
    (`{"model.activation": "relu"}`); the result is validated by ExperimentSpec.

    At most MAX_OVERRIDES paths of at most MAX_PATH_LENGTH characters and MAX_PATH_DEPTH
    levels, with values no deeper than the spec: checked first, so a hostile override costs
    nothing and its error message stays short."""
    if len(overrides) > MAX_OVERRIDES:
        raise ValueError(f"{len(overrides)} overrides; the bound is {MAX_OVERRIDES}")
    for key, value in overrides.items():
        problem = path_problem(key)
        if problem:
            raise ValueError(f"override {shown(key)}: {problem}")
        _check_depth(value, key, key.count(".") + 1)
    merged: dict[str, Any] = json.loads(json.dumps(base))  # deep copy of plain JSON data
    for key, value in overrides.items():
        parts = key.split(".")
        target = merged
        for part in parts[:-1]:
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {key!r}: {part!r} is not a section of the spec")
            target = child
        leaf = parts[-1]
        if isinstance(value, dict) and isinstance(target.get(leaf), dict):
            target[leaf] = apply_overrides(target[leaf], value)
        else:
            target[leaf] = value
    return merged
