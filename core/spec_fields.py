"""The specs' fields as dotted paths ("epochs", "model.activation", "generator.lr"), and the
one a mistyped path most likely meant: the API's 422 for an unknown field and the CLI's
`--set`, `--factor` and `--variant` all say "did you mean ...", from this one list. It holds
every kind's fields: the CLI checks a path before it knows the kind of the spec it changes."""

from __future__ import annotations

import difflib
import functools

from pydantic import BaseModel

from core.kinds import BUILT_IN


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
    """Every field of every kind's spec, sections and their fields alike, each once."""
    return tuple(dict.fromkeys(path for kind in BUILT_IN for path in _paths(kind.spec_model)))


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
