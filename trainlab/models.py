"""The answers, as pydantic models. Those the server documents in /openapi.json are checked
field by field against it (tests/client/test_models_match_openapi.py): same fields, types and
required-ness, so they cannot drift. The ablation listing, summary and curves have no schema
on the server; their models type what the client and its helpers read and keep the rest
(extra="allow").

Answers are read leniently (extra fields are ignored or kept, never refused): a newer server
that adds a field must not break an older client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import trainlab.frames as frames

Role = Literal["viewer", "member", "admin"]
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Progress(Answer):
    step: int
    total: int
    fraction: float


class Cost(Answer):
    """What one run of a spec costs, as the server estimates it."""

    parameters: int
    buffers: int
    optimizer_state: int
    checkpoint_bytes: int
    memory_bytes: int
    steps: int
    samples: int
    loss_points: int
    step_parameters: float
    cpu_seconds: float
    cpu_hours: float


class Experiment(Answer):
    id: str
    name: str | None
    tags: list[str]
    preset: str | None
    spec: dict[str, Any]
    spec_hash: str
    status: str
    cancel_requested: bool
    attempt: int
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
    cost: Cost | None
    owner: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class ExperimentPage(Answer):
    items: list[Experiment]
    next_cursor: str | None

    def to_pandas(self) -> Any:
        return frames.experiments_frame(self.items)


class LossSeries(Answer):
    experiment_id: str
    status: str
    series: str
    steps: list[int]
    values: list[float | None]
    points: int
    total_points: int
    downsampled: bool
    last_step: int | None

    def to_pandas(self) -> Any:
        """step, and the series' values under its name (loss for a classifier)."""
        return frames.frame({"step": self.steps, self.series: self.values})

    def plot(self, ax: Any = None) -> Any:
        from trainlab import plots

        return plots.loss(self, ax)


class PredictionRecord(Answer):
    index: int
    label: int
    predicted: int
    correct: bool
    outputs: list[float]

    def plot(self, ax: Any = None) -> Any:
        """The network's 10 outputs as bars, the label's and the answer's marked."""
        from trainlab import plots

        return plots.outputs(self, ax)


class PredictionsPage(Answer):
    experiment_id: str
    total_records: int
    matching: int
    offset: int
    limit: int
    records: list[PredictionRecord]

    def to_pandas(self) -> Any:
        """One row per record: index, label, predicted, correct, out_0..out_9."""
        rows = [
            {
                **r.model_dump(exclude={"outputs"}),
                **{f"out_{i}": v for i, v in enumerate(r.outputs)},
            }
            for r in self.records
        ]
        return frames.frame(rows)


class Prediction(Answer):
    experiment_id: str
    outputs: list[float]
    predicted: int


class ExperimentDeleted(Answer):
    experiment_id: str
    deleted: bool
    freed_bytes: int


class AblationDeleted(Answer):
    ablation_id: str
    deleted_experiments: list[str]
    pending_experiments: list[str]
    kept_shared: list[str]
    freed_bytes: int


class Arm(Answer):
    index: int
    label: str
    preset: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any]


class ArmLabel(Answer):
    """An arm as a listing shows it."""

    index: int
    label: str


class Ablation(BaseModel):
    """An ablation: POST /ablations, GET /ablations/{id} and its cancel answer. What the
    create and cancel answers add (created_experiments, cost, cancel_requested, ...) is kept
    as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    name: str | None
    design: str
    owner: str | None = None
    status: str
    seeds: list[int]
    status_counts: dict[str, int]
    progress: dict[str, Any]
    arms: list[Arm]
    members: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return bool(self.progress.get("finished") == self.progress.get("experiments"))


class AblationListed(BaseModel):
    """An ablation in GET /ablations: its arms' labels, no members."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    name: str | None
    design: str
    owner: str | None = None
    status: str
    seeds: list[int]
    status_counts: dict[str, int]
    progress: dict[str, Any]
    arms: list[ArmLabel]


class SummaryArm(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    arm: int
    label: str
    n: int
    # A classifier's figures; another kind's arm carries them under its metric's name (a
    # GAN's `entropy_bits`): AblationSummary.figures() reads either.
    test_accuracy: dict[str, Any] | None = None
    final_loss: dict[str, Any]


class Comparison(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    arm: int
    label: str
    baseline: int
    baseline_label: str
    test_accuracy: dict[str, Any] | None = None
    final_loss: dict[str, Any] | None = None


class AblationSummary(BaseModel):
    """GET /ablations/{id}/summary: per arm its statistics, per pair its paired comparison."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # The figure compared: a classifier's `test_accuracy` (a share), a GAN's `entropy_bits`.
    metric: str = "test_accuracy"
    compare: str
    reference: int | None
    test: str
    method: str
    notes: list[str] = Field(default_factory=list)
    arms: list[SummaryArm]
    comparisons: list[Comparison]

    def figures(self, row: SummaryArm | Comparison) -> dict[str, Any]:
        """The metric's figures of an arm (mean, ci_low, ...) or of a comparison (mean_diff,
        p_value, p_holm, ...), whichever the metric."""
        found = getattr(row, self.metric, None)
        if found is None:
            found = (row.model_extra or {}).get(self.metric)
        return dict(found or {})

    def to_pandas(self) -> Any:
        return frames.summary_frame(self)

    def plot(self, ax: Any = None) -> Any:
        """The forest plot: each comparison's accuracy difference with its 95% interval."""
        from trainlab import plots

        return plots.forest(self, ax)


class ArmCurve(Answer):
    arm: int
    label: str
    seeds: int
    mean: list[float | None]
    low: list[float | None]
    high: list[float | None]


class AblationCurves(Answer):
    ablation_id: str
    steps: list[int]
    band: str
    smoothing: float
    arms: list[ArmCurve]

    def to_pandas(self) -> Any:
        """Long form: arm, label, seeds, step, mean, low, high."""
        rows = [
            {"arm": a.arm, "label": a.label, "seeds": a.seeds, "step": step,
             "mean": m, "low": lo, "high": hi}
            for a in self.arms
            for step, m, lo, hi in zip(self.steps, a.mean, a.low, a.high, strict=True)
        ]  # fmt: skip
        return frames.frame(rows)

    def plot(self, ax: Any = None) -> Any:
        """Each arm's mean loss with its min/max band across seeds."""
        from trainlab import plots

        return plots.curves(self, ax)


class Caller(Answer):
    name: str | None
    role: Role
    key_id: str | None


class Key(Answer):
    id: str
    prefix: str
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedKey(Key):
    key: str


class Event(Answer):
    """One event of GET /experiments/{id}/events: `kind` is status, progress, loss or end."""

    kind: str
    data: dict[str, Any]
    id: int | None = None
