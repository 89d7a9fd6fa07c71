"""What a kind of job is, and the registry of kinds: torch-free, so the API and the worker
agree on it and core declares every kind without importing either side.

A kind names its spec model, its cost function and its outputs (series, per-record outputs,
artifacts, dashboard views). The torch side (worker/kinds.py: kind -> engine entry) and the
numpy side (api/services/predictors.py: kind -> /predict) register their halves by the same
name; tests/core/test_kinds.py checks that every kind has both.

A stored spec says its kind in a top-level `kind` field; a spec without one is a classifier,
so every spec stored before kinds existed keeps its canonical JSON, fingerprint and group key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel

# The kind of a spec with no `kind` field: every spec stored before there were other kinds.
DEFAULT_KIND = "classifier"


@dataclass(frozen=True)
class SpecCost:
    """What one run of a spec costs, from the spec alone: what every kind's cost function
    answers (core.cost checks it against the bounds; GET /presets shows it)."""

    parameters: int
    buffers: int  # batch-norm running statistics: state, but not trained
    optimizer_state: int  # values the optimizer keeps (momentum, Adam's moments)
    checkpoint_bytes: int
    memory_bytes: int
    steps: int
    samples: int  # records seen in training: epochs x train records
    loss_points: int
    step_parameters: float
    cpu_seconds: float
    # What a finished run keeps in the store, beside its checkpoint: the final weights file,
    # the packed loss series and the outputs for every test record. A kind that stores none of
    # one leaves it 0.
    model_bytes: int = 0
    series_bytes: int = 0
    outputs_bytes: int = 0

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600

    @property
    def stored_bytes(self) -> int:
        """The most the run holds in the store at once: when it ends, its last checkpoint and
        its weights exist together (and both stay with TRAINLAB_KEEP_CHECKPOINTS), with the
        series and the outputs. Bounded per run and counted against the account's quota."""
        return self.checkpoint_bytes + self.model_bytes + self.series_bytes + self.outputs_bytes

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_hours": self.cpu_hours, "stored_bytes": self.stored_bytes}


@dataclass(frozen=True)
class Kind:
    name: str
    spec_model: type[BaseModel]  # validates the stored/submitted spec dict
    cost: Callable[[Any], SpecCost]  # takes a spec_model instance
    series: tuple[str, ...]  # the series a run records, by name
    record_outputs: str  # what the run stores for each test record
    artifacts: tuple[str, ...]  # the files a finished run keeps
    views: tuple[str, ...]  # the dashboard's views of one run (ids in api/static/index.html)
    # The figure of a finished run (a key of its metrics, higher is better) that an ablation's
    # summary compares between arms, seed by seed.
    summary_metric: str = "test_accuracy"
    # Every figure of its finished runs an ablation may compare instead (AblationRequest
    # .metric; a GAN sweep's confirmation compares the sweep's objective).
    summary_metrics: tuple[str, ...] = ("test_accuracy",)

    def parse(self, raw: Mapping[str, Any]) -> BaseModel:
        return self.spec_model.model_validate(raw)


class UnknownKindError(ValueError):
    """A spec names a kind of job nobody registered."""


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.name in _KINDS:
        raise ValueError(f"kind {kind.name!r} is registered already")
    if any(known.spec_model is kind.spec_model for known in _KINDS.values()):
        raise ValueError(f"kind {kind.name!r}: its spec model belongs to another kind")
    _KINDS[kind.name] = kind
    return kind


@contextmanager
def registered(kind: Kind) -> Iterator[Kind]:
    """`kind` registered for the duration of a with-block (tests add fake kinds this way)."""
    register(kind)
    try:
        yield kind
    finally:
        del _KINDS[kind.name]


def names() -> tuple[str, ...]:
    return tuple(_KINDS)


def get(name: str) -> Kind:
    kind = _KINDS.get(name)
    if kind is None:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise UnknownKindError(f"unknown kind of job {name!r}: the kinds are {known}")
    return kind


def kind_name(raw: Mapping[str, Any]) -> str:
    """The kind a spec dict names; the classifier when it names none."""
    name = raw.get("kind", DEFAULT_KIND)
    if not isinstance(name, str):
        raise UnknownKindError(f"a spec's kind is a name, not {type(name).__name__}")
    return name


def kind_of_raw(raw: Mapping[str, Any]) -> Kind:
    return get(kind_name(raw))


def kind_of(spec: BaseModel) -> Kind:
    """The kind whose spec model `spec` is an instance of."""
    for kind in _KINDS.values():
        if type(spec) is kind.spec_model:
            return kind
    raise UnknownKindError(f"{type(spec).__name__} is the spec model of no registered kind")


def parse(raw: Mapping[str, Any]) -> BaseModel:
    """Validate a spec dict with its kind's model: UnknownKindError, or pydantic's
    ValidationError (a ValueError too), naming what is wrong."""
    return kind_of_raw(raw).parse(raw)
