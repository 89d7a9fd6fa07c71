"""Request and response models of the experiment endpoints (the spec itself is
core.spec.ExperimentSpec). XBase holds what a client sends and reads back, XCreate what
it sends, XPublic what it reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core import store
from core.spec import ExperimentSpec
from core.store.clock import as_utc
from core.store.models import Experiment

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
MAX_TAGS = 32


class ExperimentBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200, description="A label for people.")
    tags: list[Tag] = Field(
        default_factory=list, max_length=MAX_TAGS, description="Free labels; filter by one."
    )


class ExperimentCreate(ExperimentBase):
    """The preset form of POST /experiments. The other form is a full spec (the fields of
    ExperimentSpec at the top level) plus `name` and `tags`."""

    preset: str | None = Field(default=None, description="One of GET /presets' names.")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='Spec changes on top of the preset: nested ({"model": {"activation": '
        '"relu"}}) or dotted ({"model.activation": "relu"}).',
    )


class Progress(BaseModel):
    step: int
    total: int
    fraction: float = Field(description="step / total, 0 before the run knows its total.")


class ExperimentPublic(ExperimentBase):
    model_config = ConfigDict(extra="ignore")

    id: str
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


class ErrorBody(BaseModel):
    detail: str


class FieldError(BaseModel):
    field: str
    in_: str = Field(alias="in")
    reason: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[FieldError]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No experiment with this id."},
    422: {"model": ValidationErrorBody, "description": "A field is invalid; each one is named."},
}


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
    status: str
    seeds: list[int]
    status_counts: dict[str, int]
    progress: dict[str, Any]
    arms: list[ArmPublic]
    members: list[dict[str, Any]] = Field(
        default_factory=list, description="(arm, seed, experiment_id, status, ...) per cell."
    )
