"""Request and response models of the experiment endpoints (the spec itself is
core.spec.ExperimentSpec). XBase holds what a client sends and reads back, XCreate what
it sends, XPublic what it reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from core import kinds, store
from core.cost import SpecCost, estimate
from core.labels import Label
from core.presets import PRESETS
from core.spec import ExperimentSpec
from core.spec_paths import MAX_OVERRIDES, SpecPath
from core.store.clock import as_utc
from core.store.models import Experiment

MAX_TAGS = 32
# A str checked against the presets by the services (whose refusal lists the known ones); the
# schema lists them too.
PresetName = Annotated[str, Field(json_schema_extra={"enum": list(PRESETS)})]


class ExperimentBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Label | None = Field(default=None, description="A label for people.")
    tags: list[Label] = Field(
        default_factory=list, max_length=MAX_TAGS, description="Free labels; filter by one."
    )


class ExperimentCreate(ExperimentBase):
    """The preset form of POST /experiments. The other form is a full spec (the fields of
    ExperimentSpec at the top level) plus `name` and `tags`."""

    preset: PresetName | None = Field(default=None, description="One of GET /presets' names.")
    overrides: dict[SpecPath, Any] = Field(
        default_factory=dict,
        max_length=MAX_OVERRIDES,
        description='Spec changes on top of the preset: nested ({"model": {"activation": '
        '"relu"}}) or dotted ({"model.activation": "relu"}).',
    )


class ExperimentSubmitSpec(ExperimentSpec):
    """The full-spec form of POST /experiments: the spec's fields plus `name` and `tags`.
    (For the documentation: the server reads both forms from one body.)"""

    name: Label | None = None
    tags: list[Label] = Field(default_factory=list, max_length=MAX_TAGS)


class CostPublic(BaseModel):
    """What one run of a spec costs, as core/cost.py estimates it."""

    parameters: int
    buffers: int
    optimizer_state: int = Field(description="Values the optimizer keeps beside the weights.")
    checkpoint_bytes: int
    memory_bytes: int = Field(description="Peak memory the run adds to its worker, estimated.")
    steps: int
    samples: int = Field(description="Training records seen: epochs x train records.")
    loss_points: int
    step_parameters: float = Field(description="Work: parameters x batch-1 training steps.")
    cpu_seconds: float = Field(description="Estimated time on one CPU thread.")
    cpu_hours: float

    @classmethod
    def of(cls, cost: SpecCost) -> CostPublic:
        return cls(**cost.as_dict())


def stored_cost(spec: dict[str, Any]) -> CostPublic | None:
    """The cost of a stored spec; None for one an older schema stored that no longer validates."""
    try:
        return CostPublic.of(estimate(kinds.parse(spec)))
    except ValueError:  # UnknownKindError too
        return None


class Progress(BaseModel):
    step: int
    total: int
    fraction: float = Field(description="step / total, 0 before the run knows its total.")


class ExperimentPublic(BaseModel):
    # What was stored is shown as it is: no input rule may turn an old row into a 500.
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str | None
    tags: list[str]
    preset: str | None
    spec: dict[str, Any]
    spec_hash: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    cancel_requested: bool
    attempt: int = Field(description="How many times a worker has started this experiment.")
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    device: str | None
    error: str | None
    metrics: dict[str, Any] | None
    fingerprint: dict[str, Any] | None
    cost: CostPublic | None = Field(description="The run's estimated cost (GET /presets).")
    owner: str | None = Field(
        default=None,
        description="The account that submitted it (null: an open server, or from before "
        "accounts).",
    )

    @classmethod
    def of(cls, experiment: Experiment) -> ExperimentPublic:
        total = store.expected_total_steps(experiment)
        step = experiment.step
        return cls(
            id=experiment.id,
            name=experiment.name,
            tags=list(experiment.tags),
            preset=experiment.preset,
            spec=experiment.spec,
            spec_hash=experiment.spec_hash,
            status=experiment.status,
            cancel_requested=experiment.cancel_requested,
            attempt=experiment.attempt,
            progress=Progress(
                step=step, total=total, fraction=round(step / total, 6) if total else 0.0
            ),
            created_at=as_utc(experiment.created_at) or experiment.created_at,
            started_at=as_utc(experiment.started_at),
            finished_at=as_utc(experiment.finished_at),
            heartbeat_at=as_utc(experiment.heartbeat_at),
            worker=experiment.worker,
            device=experiment.device,
            error=experiment.error,
            metrics=experiment.metrics,
            fingerprint=experiment.fingerprint,
            cost=stored_cost(experiment.spec),
            owner=experiment.owner,
        )


class ExperimentPage(BaseModel):
    items: list[ExperimentPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class LossSeries(BaseModel):
    """Documentation of GET /experiments/{id}/loss (served as raw JSON bytes for speed)."""

    experiment_id: str
    status: str
    series: str = Field(description="The series' name: loss, or a GAN's discriminator/generator.")
    steps: list[int]
    values: list[float | None] = Field(description="NaN and infinite losses are null.")
    points: int = Field(description="Points in this answer.")
    total_points: int = Field(description="Points the stored series has after since_step.")
    downsampled: bool
    last_step: int | None = Field(description="Pass as since_step to poll for newer points.")


class PredictionRecord(BaseModel):
    index: int
    label: int
    predicted: int
    correct: bool
    outputs: list[float] = Field(description="The network's 10 outputs for this record.")


class PredictionsPage(BaseModel):
    """Documentation of GET /experiments/{id}/predictions (served as raw JSON bytes)."""

    experiment_id: str
    total_records: int = Field(description="Test records evaluated by the run.")
    matching: int = Field(description="Records that pass the filter (all, or misclassified).")
    offset: int
    limit: int
    records: list[PredictionRecord]


class NoFields(BaseModel):
    """The body of a POST that takes no fields (cancel): `{}`. A body is asked for, with
    Content-Type: application/json, so that no other web site can send the request from a
    browser (see api/middleware.py); sending none, with that content type, works as well."""

    model_config = ConfigDict(extra="forbid")


# For a route's `openapi_extra`: the `{}` body is documented as required (it is how a client
# shows the request is its own), though an empty body is taken too.
BODY_REQUIRED: dict[str, Any] = {"requestBody": {"required": True}}


class PresetPublic(BaseModel):
    name: str
    description: str
    spec: dict[str, Any] = Field(description="The full spec the preset runs.")
    cost: CostPublic


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, in one line for a person.")


class FieldError(BaseModel):
    field: str = Field(description="The field, e.g. model.hidden[0], overrides.epochs, cursor.")
    in_: str = Field(alias="in", description="body, query, path or header.")
    reason: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[FieldError]


class NotReadyBody(BaseModel):
    status: str
    detail: str
    checks: dict[str, str] = Field(description="Each dependency: ok, or what is wrong with it.")


Responses = dict[int | str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# What each error status means, for the `responses=` of the routes (api/openapi.py adds those
# every endpoint can answer: 400, 422, and 413 and 415 for POSTs).
NOT_FOUND: Responses = {404: _error("No such experiment or ablation.")}
CONFLICT: Responses = {409: _error("Not possible in the resource's current state (said why).")}
DATABASE_DOWN: Responses = {
    503: _error("The database is unavailable; retry after Retry-After seconds.")
}
INVALID: Responses = {
    422: {"model": ValidationErrorBody, "description": "Invalid fields, each named."}
}
BAD_REQUEST: Responses = {
    400: _error(
        "A Host this server does not answer to, control characters in the path, "
        "or a body that could not be read."
    )
}
TOO_LARGE: Responses = {413: _error("The body is larger than TRAINLAB_MAX_BODY_BYTES.")}
NOT_JSON: Responses = {415: _error("A POST without Content-Type: application/json.")}


class TooManyBody(BaseModel):
    """A 429: a request rate limit (`scope` key or address, `limit` like "600 per 1 minute"),
    an event-stream cap, or a key's quota (`quota`, its `limit` and the key's `current` use).
    Retry-After says when to try again."""

    detail: str
    scope: str | None = None
    quota: str | None = None
    limit: str | float | None = None
    current: float | None = None


TOO_MANY: Responses = {
    429: {
        "model": TooManyBody,
        "description": "Over a rate limit or a quota; Retry-After says when to retry.",
    }
}
# The routes that read one stored resource: it may be missing, and the database may be away.
ERROR_RESPONSES: Responses = {**NOT_FOUND, **DATABASE_DOWN}


class ArmPublic(BaseModel):
    """One arm of an ablation (documentation of the ablation answers, served as plain JSON)."""

    index: int
    label: str
    preset: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict, description="This arm's factors.")
    spec: ExperimentSpec = Field(description="The arm's spec; each member adds its seed.")


class AblationPublic(BaseModel):
    """Documentation of POST /ablations and GET /ablations/{id} (also lists the spec's schema,
    with every bound, which the dashboard's forms read)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None
    design: str = Field(description="grid or book")
    owner: str | None = Field(default=None, description="The account that made it.")
    status: str
    seeds: list[int]
    status_counts: dict[str, int]
    progress: dict[str, Any]
    arms: list[ArmPublic]
    members: list[dict[str, Any]] = Field(
        default_factory=list, description="(arm, seed, experiment_id, status, ...) per cell."
    )
