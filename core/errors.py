"""The refusals every service raises, whoever called it: something is not there (NotFound),
not possible in its current state (Conflict), or input that is wrong, each bad field named
with a reason (InvalidFields). Each is a plain exception carrying a sentence for a person;
an entry point translates them: the API into its HTTP answers (api/errors.py: 404, 409, 422),
the CLI into a message.

Field errors are bounded here, where they are made: each name and reason cut to a few hundred
characters, so a megabyte of bad input never comes back as a megabyte of error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from pydantic import ValidationError

from core.kinds.gan_spec import GanSpec
from core.model_spec import ModelSpec
from core.spec import ExperimentSpec
from core.spec_fields import did_you_mean

MAX_FIELD = 120
MAX_REASON = 400
# Where a pydantic error's location starts when it came from a request: the part it came from.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})


class DomainError(Exception):
    """Base of the refusals an entry point answers for (not a bug: the caller can do better)."""


class NotFound(DomainError):
    """No such thing (an experiment, an ablation, a key)."""


class Conflict(DomainError):
    """Not possible in the thing's current state; the message says why."""


def clip(text: str, most: int) -> str:
    """`text` cut to `most` characters, saying how long it was."""
    if len(text) <= most:
        return text
    return f"{text[: max(0, most - 40)]}... ({len(text):,} characters)"


def field_path(loc: Iterable[str | int]) -> str:
    """("model", "hidden", 0) -> "model.hidden[0]"."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def field_error(field: str, reason: str, source: str = "body") -> dict[str, str]:
    """One bad field: its name, where it came from (body, query, path, header) and why."""
    return {"field": clip(field, MAX_FIELD), "in": source, "reason": clip(reason, MAX_REASON)}


class InvalidFields(DomainError):
    """Input that is well formed but wrong: each bad field named, with a reason."""

    def __init__(self, errors: Sequence[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = list(errors)


def invalid(field: str, reason: str, source: str = "query") -> NoReturn:
    """Refuse one field of the input."""
    raise InvalidFields([field_error(field, reason, source)])


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    # pydantic prefixes a validator's own message; the message alone reads better.
    message = message.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return "unknown field: not part of the spec (a typo?)"
    if error.get("type") == "json_invalid":
        detail = (error.get("ctx") or {}).get("error")
        return f"the body is not valid JSON ({detail})" if detail else "the body is not valid JSON"
    return message


def from_request_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic's validation errors (a loc that may start with body/query/path/...) as field
    errors."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        source = str(loc.pop(0)) if loc and loc[0] in _SOURCES else "body"
        if error.get("type") == "json_invalid":
            loc = []  # the location is a character offset, not a field
        out.append(field_error(field_path(loc) or source, _reason(error), source))
    return out


# Model-level checks of the spec have no location of their own; their messages start with
# the knob they are about ("loss=bce needs ...", "momentum applies to ..."): that names it.
_LEADING_FIELD = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*(?:\[\d+\])?)(?:=| )")
_SECTION_FIELDS: dict[str, frozenset[str]] = {
    "": frozenset(ExperimentSpec.model_fields) | frozenset(GanSpec.model_fields),
    "model": frozenset(ModelSpec.model_fields),
}


def from_spec_errors(exc: ValidationError) -> list[dict[str, str]]:
    """An ExperimentSpec's validation errors, each naming the spec field it is about."""
    out = []
    for error in exc.errors(include_url=False, include_input=False):
        reason = _reason(dict(error))
        field = field_path(error["loc"])
        match = _LEADING_FIELD.match(reason) if error["type"] == "value_error" else None
        if match:
            head = re.split(r"[.\[]", match.group(1))[0]
            if head in _SECTION_FIELDS.get(field, frozenset()):
                field = f"{field}.{match.group(1)}" if field else match.group(1)
        if error["type"] == "extra_forbidden":
            reason = _with_suggestion(reason, field)
        out.append(field_error(field or "spec", reason))
    return out


def _with_suggestion(reason: str, field: str) -> str:
    """An unknown field's reason, naming the spec field it most likely meant."""
    meant = did_you_mean(re.sub(r"\[\d+\]", "", field))
    return reason.replace("(a typo?)", f"(did you mean {meant}?)") if meant else reason
