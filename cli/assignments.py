"""`KEY=VALUE` arguments, as `--set`, `--factor` and `--variant` take them, for every command.

A VALUE is read as JSON when it parses (`lr=0.01` is a number, `model.hidden=[100,100]` a
list) and is a string otherwise (`loss=bce`).
"""

from __future__ import annotations

import json
from typing import Any

from core.spec_fields import did_you_mean


class AssignmentError(ValueError):
    """An argument that is not KEY=VALUE; the message names the flag and the argument."""


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def split_assignment(item: str, flag: str, shape: str = "KEY=VALUE") -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise AssignmentError(f"{flag} {item!r}: expected {shape}")
    key = key.strip()
    # A key close to a spec field is a typo: say so before anything is sent. One close to none
    # is left to whoever reads the spec (the server may know fields this client does not).
    meant = did_you_mean(key)
    if meant is not None:
        raise AssignmentError(f"{flag} {item!r}: {key} is not a spec field; did you mean {meant}?")
    return key, value


def parse_assignments(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """Each `KEY=VALUE` into {KEY: value}; a later KEY wins."""
    found: dict[str, Any] = {}
    for item in items:
        key, text = split_assignment(item, flag)
        found[key] = parse_value(text)
    return found


def parse_factors(items: list[str]) -> dict[str, list[Any]]:
    """`--factor loss=mse,bce` or `--factor model.hidden=[[100],[200]]` (a JSON list)."""
    factors: dict[str, list[Any]] = {}
    for item in items:
        key, text = split_assignment(item, "--factor", "KEY=V1,V2,...")
        parsed = parse_value(text)
        factors[key] = (
            parsed if isinstance(parsed, list) else [parse_value(v) for v in text.split(",")]
        )
    return factors


def parse_variants(groups: list[list[str]]) -> list[dict[str, Any]]:
    """Each `--variant [LABEL] KEY=VALUE ...` into {"label": ..., "overrides": {...}}: a first
    word without `=` names the arm; several changes make one arm (a knob that is two fields)."""
    variants: list[dict[str, Any]] = []
    for words in groups:
        label = words[0] if words and "=" not in words[0] else None
        changes = words[1:] if label is not None else words
        if not changes:
            raise AssignmentError(f"--variant {' '.join(words)!r}: expected [LABEL] KEY=VALUE ...")
        variant: dict[str, Any] = {"overrides": parse_assignments(changes, "--variant")}
        if label is not None:
            variant["label"] = label
        variants.append(variant)
    return variants
