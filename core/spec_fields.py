"""The spec's fields as dotted paths ("epochs", "model.activation"), and the one a mistyped
path most likely meant: the API's 422 for an unknown field and the CLI's `--set` both say
"did you mean ...", from this one list."""

from __future__ import annotations

import difflib
import functools

from pydantic import BaseModel

from core.spec import ExperimentSpec


def _paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        out.append(prefix + name)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _paths(kind, f"{prefix}{name}.")
    return out


@functools.cache
def spec_paths() -> tuple[str, ...]:
    """Every field of ExperimentSpec, sections and their fields alike."""
    return tuple(_paths(ExperimentSpec))


def did_you_mean(path: str) -> str | None:
    """The spec path closest to `path`, when one is close enough to be the one meant."""
    if path in spec_paths():
        return None
    leaf = path.rsplit(".", 1)[-1]
    same_leaf = [known for known in spec_paths() if known.rsplit(".", 1)[-1] == leaf]
    if len(same_leaf) == 1:
        return same_leaf[0]  # "hidden" for model.hidden, "model.epochs" for epochs
    close = difflib.get_close_matches(path, spec_paths(), n=1, cutoff=0.75)
    return close[0] if close else None
