"""Which experiments may judge a GAN's images: finished MNIST classifiers with a model file
(core/kinds/gan_spec.py: GanSpec.judge)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.store.artifacts import MODELS
from core.store.models import Status
from core.store.tables import EXPERIMENTS

_C = EXPERIMENTS.c
# Newest finished MNIST experiments of an account looked at for a default judge.
_SCAN = 50


def _is_classifier(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("kind", "classifier") == "classifier"


def judge_problem(session: Session, experiment_id: str) -> str | None:
    """Why `experiment_id` can't judge a GAN; None when it can."""
    row = session.execute(
        select(_C.status, _C.dataset, _C.spec, MODELS.c.experiment_id.label("model"))
        .outerjoin(MODELS, MODELS.c.experiment_id == _C.id)
        .where(_C.id == experiment_id)
    ).first()
    if row is None:
        return f"no experiment {experiment_id!r}"
    if not _is_classifier(row.spec):
        return f"experiment {experiment_id} is not a classifier"
    if row.dataset != "mnist":
        return f"experiment {experiment_id} is a {row.dataset} classifier, not an MNIST one"
    if row.status != Status.succeeded.value or row.model is None:
        return (
            f"experiment {experiment_id} is not a finished classifier with a model ({row.status})"
        )
    return None


def newest_judge(session: Session, owner: str | None) -> str | None:
    """The account's newest finished MNIST classifier with a model file, if any."""
    same_owner = _C.owner.is_(None) if owner is None else _C.owner == owner
    rows = session.execute(
        select(_C.id, _C.spec)
        .join(MODELS, MODELS.c.experiment_id == _C.id)
        .where(same_owner, _C.status == Status.succeeded.value, _C.dataset == "mnist")
        .order_by(_C.created_at.desc(), _C.id.desc())
        .limit(_SCAN)
    ).all()
    for row in rows:
        if _is_classifier(row.spec):
            return str(row.id)
    return None
