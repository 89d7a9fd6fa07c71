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
from core.store.artifacts import PredictionsBlob, get_checkpoint, read_predictions, save_checkpoint
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
from core.store.runs import (
    attempt_held_by,
    claim,
    fail,
    finish,
    heartbeat,
    mark_dispatched,
    requeue,
    stale_running,
    undispatched,
    waiting_since,
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
    "AblationNotFound",
    "AlreadyFinished",
    "ExperimentNotFound",
    "FinishedSeries",
    "IdempotencyConflict",
    "InvalidCursor",
    "PredictionsBlob",
    "StoreError",
    "add_ablation",
    "append_loss",
    "attempt_held_by",
    "cached_finished_series",
    "claim",
    "create_experiment",
    "expected_total_steps",
    "fail",
    "find_reusable",
    "finish",
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
    "read_finished_series",
    "read_predictions",
    "read_series",
    "request_cancel",
    "requeue",
    "require_ablation",
    "require_experiment",
    "save_checkpoint",
    "session_scope",
    "shared_elsewhere",
    "stale_running",
    "truncate_loss_after",
    "undispatched",
    "waiting_since",
]
