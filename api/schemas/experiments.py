"""What the experiment and ablation endpoints answer (XPublic, XPage), and the full-spec form
of POST /experiments for the documentation. The request models the services read are core's
(core/submissions.py); the spec itself is core.spec.ExperimentSpec."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core import kinds
from core.cost import SpecCost, estimate
from core.kinds.gan_spec import GanSpec
from core.labels import Label
from core.spec import ExperimentSpec
from core.store import experiments
from core.store.clock import as_utc
from core.store.models import Experiment
from core.submissions import MAX_TAGS


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
    def of(cls, experiment: Experiment, cost: SpecCost | None = None) -> ExperimentPublic:
        """`cost`: the spec's, when the caller has just priced it (a submit); else it is
        estimated from the stored spec."""
        total = experiments.expected_total_steps(experiment)
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
            cost=CostPublic.of(cost) if cost is not None else stored_cost(experiment.spec),
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


class PresetPublic(BaseModel):
    name: str
    description: str
    spec: dict[str, Any] = Field(description="The full spec the preset runs.")
    cost: CostPublic


class ArmPublic(BaseModel):
    """One arm of an ablation (documentation of the ablation answers, served as plain JSON)."""

    index: int
    label: str
    preset: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict, description="This arm's factors.")
    spec: ExperimentSpec | GanSpec = Field(
        description="The arm's spec (a classifier's, or a GAN's); each member adds its seed."
    )


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
