"""DELETE for experiments and ablations: a finished experiment goes with every row and blob
it owns; an unfinished one only when asked to cancel it (then it goes once it has stopped).
The rules themselves live in core/store/retention.py; this module maps them onto HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from api.auth import Member, ensure_can_change
from api.deps import SessionDep
from api.routes.params import AblationId, ExperimentId
from api.schemas import ERROR_RESPONSES
from api.services import predictors
from core.store import ablations, experiments, retention
from core.store.cache import cache_key

router = APIRouter(tags=["retention"])

_CANCEL = Query(
    description="Cancel it first if it has not finished: a queued run is deleted at once, a "
    "running one (202) once it has stopped, within TRAINLAB_RETENTION_INTERVAL_S."
)


class ExperimentDeleted(BaseModel):
    experiment_id: str
    deleted: bool = Field(description="false: cancelled, and deleted once it has stopped.")
    freed_bytes: int = Field(
        description="Payload bytes removed (blobs, 12 per loss point); 0 when pending."
    )


class AblationDeleted(BaseModel):
    ablation_id: str
    deleted_experiments: list[str]
    pending_experiments: list[str] = Field(
        description="Cancelled runs that are deleted once they have stopped."
    )
    kept_shared: list[str] = Field(
        description="Member experiments another ablation shares: they stay."
    )
    freed_bytes: int


def _conflict(exc: Exception) -> HTTPException:
    return HTTPException(409, str(exc))


@router.delete(
    "/experiments/{experiment_id}",
    response_model=ExperimentDeleted,
    responses={
        202: {"model": ExperimentDeleted, "description": "Cancelled; deleted once stopped."},
        409: {
            "description": "Unfinished and cancel=true not given, or a member of an ablation "
            "(the answer names it; delete the ablation instead)."
        },
        **ERROR_RESPONSES,
    },
)
def delete_experiment(
    experiment_id: ExperimentId,
    session: SessionDep,
    principal: Member,
    response: Response,
    cancel: Annotated[bool, _CANCEL] = False,
) -> ExperimentDeleted:
    """Remove a finished experiment with its curve, predictions, checkpoint and model (200).
    Members of an ablation are refused (409) so that no ablation loses a run silently. Only
    its owner, or an admin, may delete it (403)."""
    owner = experiments.require_experiment(session, experiment_id).owner
    ensure_can_change(principal, owner, f"experiment {experiment_id}")
    try:
        outcome = retention.delete_experiment(session, experiment_id, cancel=cancel)
        session.commit()
        if outcome.deleted:
            predictors.forget(cache_key(session, experiment_id)[0], [experiment_id])
    except (retention.StillRunning, retention.InAblations) as exc:
        raise _conflict(exc) from exc
    except IntegrityError as exc:  # an ablation took it up as a member meanwhile
        session.rollback()
        raise HTTPException(409, f"experiment {experiment_id} became an ablation member") from exc
    response.status_code = 200 if outcome.deleted else 202
    return ExperimentDeleted(
        experiment_id=experiment_id, deleted=outcome.deleted, freed_bytes=outcome.freed_bytes
    )


@router.delete(
    "/ablations/{ablation_id}",
    response_model=AblationDeleted,
    responses={
        202: {
            "model": AblationDeleted,
            "description": "Deleted; some cancelled members go once they have stopped.",
        },
        409: {"description": "Members still run and cancel=true was not given."},
        **ERROR_RESPONSES,
    },
)
def delete_ablation(
    ablation_id: AblationId,
    session: SessionDep,
    principal: Member,
    response: Response,
    cancel: Annotated[bool, _CANCEL] = False,
) -> AblationDeleted:
    """Remove the ablation and its member experiments, except those another ablation shares
    or another account made (they stay, listed in `kept_shared`). Only its owner, or an
    admin, may delete it (403)."""
    ensure_can_change(
        principal, ablations.require_ablation(session, ablation_id).owner, f"ablation {ablation_id}"
    )
    try:
        outcome = retention.delete_ablation(session, ablation_id, cancel=cancel)
        session.commit()
        predictors.forget(cache_key(session, ablation_id)[0], outcome.deleted)
    except retention.StillRunning as exc:
        raise _conflict(exc) from exc
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(
            409, f"a member of ablation {ablation_id} was taken up meanwhile"
        ) from exc
    response.status_code = 202 if outcome.pending else 200
    body: dict[str, Any] = {
        "ablation_id": ablation_id,
        "deleted_experiments": outcome.deleted,
        "pending_experiments": outcome.pending,
        "kept_shared": outcome.kept_shared,
        "freed_bytes": outcome.freed_bytes,
    }
    return AblationDeleted(**body)
