"""The judge of a submitted GAN (GanSpec.judge): the one it names must be a finished MNIST
classifier (422 naming `judge` otherwise); with none named, the account's newest such
classifier judges it, written into the stored spec so the run says exactly what judged it."""

from __future__ import annotations

from sqlmodel import Session

from core.errors import InvalidFields, field_error
from core.kinds import AnySpec, GanSpec
from core.store.judges import judge_problem, newest_judge


def resolve_judge(session: Session, spec: AnySpec, owner: str | None, field: str) -> AnySpec:
    if not isinstance(spec, GanSpec):
        return spec
    if spec.judge is not None:
        problem = judge_problem(session, spec.judge)
        if problem is not None:
            raise InvalidFields(
                [field_error(field, f"{problem}: a judge is a finished MNIST classifier")]
            )
        return spec
    chosen = newest_judge(session, owner)
    if chosen is None:
        return spec  # nothing to judge with: the run stores samples and losses only
    return spec.model_copy(update={"judge": chosen})
