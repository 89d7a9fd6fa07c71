"""The experiment store: tables (schema owned by Alembic, see migrations/), engines and
sessions, and every read and write of experiments, their runs, results and ablations.

Callers use this module as one namespace (`from core import store`; `store.claim(...)`).
Functions take a Session and commit nothing; state changes are conditional UPDATEs naming the
state they expect, so concurrent callers (API processes, the reaper, workers) can't both win.
"""

from core.store.ablations import (
    add_ablation,
    find_reusable,
    get_ablation,
    list_ablations,
    members_with_experiments,
    require_ablation,
    shared_elsewhere,
)
from core.store.artifacts import (
    ModelInfo,
    PredictionsBlob,
    get_checkpoint,
    model_info,
    read_model,
    read_predictions,
    save_checkpoint,
    save_model,
)
from core.store.census import RunningProgress, StatusTotal, running_progress, status_totals
from core.store.errors import (
    AblationNotFound,
    AlreadyFinished,
    ExperimentNotFound,
    IdempotencyConflict,
    InvalidCursor,
    StoreError,
)
from core.store.experiments import (
    create_experiment,
    expected_total_steps,
    get_experiment,
    get_status,
    list_experiments,
    request_cancel,
    require_experiment,
)
from core.store.pruning import (
    PruneCandidate,
    SweepReport,
    prune_candidates,
    sweep,
    sweep_until_done,
)
from core.store.retention import (
    AblationDeletion,
    ExperimentDeletion,
    Footprint,
    InAblations,
    StillRunning,
    delete_ablation,
    delete_experiment,
    deleted_totals,
    footprints,
    remove_experiments,
)
from core.store.runs import (
    claim,
    fail,
    finish,
    heartbeat,
    mark_dispatched,
    requeue,
    stale_running,
    undispatched,
)
from core.store.series import (
    FinishedSeries,
    append_loss,
    cached_finished_series,
    read_finished_series,
    read_series,
    truncate_loss_after,
)
from core.store.session import make_engine, session_scope

__all__ = [
    "AblationDeletion",
    "AblationNotFound",
    "AlreadyFinished",
    "ExperimentDeletion",
    "ExperimentNotFound",
    "FinishedSeries",
    "Footprint",
    "IdempotencyConflict",
    "InAblations",
    "InvalidCursor",
    "ModelInfo",
    "PredictionsBlob",
    "PruneCandidate",
    "RunningProgress",
    "StatusTotal",
    "StillRunning",
    "StoreError",
    "SweepReport",
    "add_ablation",
    "append_loss",
    "cached_finished_series",
    "claim",
    "create_experiment",
    "delete_ablation",
    "delete_experiment",
    "deleted_totals",
    "expected_total_steps",
    "fail",
    "find_reusable",
    "finish",
    "footprints",
    "get_ablation",
    "get_checkpoint",
    "get_experiment",
    "get_status",
    "heartbeat",
    "list_ablations",
    "list_experiments",
    "make_engine",
    "mark_dispatched",
    "members_with_experiments",
    "model_info",
    "prune_candidates",
    "read_finished_series",
    "read_model",
    "read_predictions",
    "read_series",
    "remove_experiments",
    "request_cancel",
    "requeue",
    "require_ablation",
    "require_experiment",
    "running_progress",
    "save_checkpoint",
    "save_model",
    "session_scope",
    "shared_elsewhere",
    "stale_running",
    "status_totals",
    "sweep",
    "sweep_until_done",
    "truncate_loss_after",
    "undispatched",
]
