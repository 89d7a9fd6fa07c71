"""The request and response models of the HTTP API, in two parts: what the endpoints answer
(experiments.py: XPublic, XPage, and the full-spec form of POST /experiments for the
documentation) and the error answers and empty bodies every route shares (responses.py).
The request models the services read (ExperimentCreate, AblationRequest) are core's
(core/submissions.py): listed here because the API documents them."""

from __future__ import annotations

from api.schemas.experiments import (
    AblationPublic,
    ArmPublic,
    CostPublic,
    ExperimentPage,
    ExperimentPublic,
    ExperimentSubmitSpec,
    LossSeries,
    PredictionRecord,
    PredictionsPage,
    PresetPublic,
    Progress,
    stored_cost,
)
from api.schemas.responses import (
    BAD_REQUEST,
    BODY_REQUIRED,
    CONFLICT,
    DATABASE_DOWN,
    ERROR_RESPONSES,
    INVALID,
    NOT_FOUND,
    NOT_JSON,
    TOO_LARGE,
    TOO_MANY,
    ErrorBody,
    FieldError,
    NoFields,
    NotReadyBody,
    Responses,
    TooManyBody,
    ValidationErrorBody,
)
from core.submissions import AblationRequest, ExperimentBase, ExperimentCreate

__all__ = [
    "BAD_REQUEST",
    "BODY_REQUIRED",
    "CONFLICT",
    "DATABASE_DOWN",
    "ERROR_RESPONSES",
    "INVALID",
    "NOT_FOUND",
    "NOT_JSON",
    "TOO_LARGE",
    "TOO_MANY",
    "AblationPublic",
    "AblationRequest",
    "ArmPublic",
    "CostPublic",
    "ErrorBody",
    "ExperimentBase",
    "ExperimentCreate",
    "ExperimentPage",
    "ExperimentPublic",
    "ExperimentSubmitSpec",
    "FieldError",
    "LossSeries",
    "NoFields",
    "NotReadyBody",
    "PredictionRecord",
    "PredictionsPage",
    "PresetPublic",
    "Progress",
    "Responses",
    "TooManyBody",
    "ValidationErrorBody",
    "stored_cost",
]
