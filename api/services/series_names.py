"""Which loss series a read means: the one it names (checked against the experiment's kind),
or the kind's first series (a classifier's `loss`, a GAN's `discriminator`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from sqlalchemy import select
from sqlmodel import Session

from api.errors import invalid
from core import kinds
from core.store.models import DEFAULT_SERIES
from core.store.tables import EXPERIMENTS

SeriesName = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z_]+$",
        description="Which series: a classifier records `loss`, a GAN `discriminator` (the "
        "default) and `generator`.",
    ),
]


def series_name(session: Session, experiment_id: str, series: str | None) -> str:
    """The series a read of `experiment_id` means (422 naming `series` for one its kind does
    not record). One indexed read of the spec unless `loss` is asked for by name."""
    if series == DEFAULT_SERIES:
        return series
    spec = session.execute(
        select(EXPERIMENTS.c.spec).where(EXPERIMENTS.c.id == experiment_id)
    ).scalar()
    try:
        kind = kinds.kind_of_raw(spec if isinstance(spec, dict) else {})
    except kinds.UnknownKindError:
        return series or DEFAULT_SERIES
    if series is None:
        return kind.series[0]
    if series not in kind.series:
        invalid(
            "series", f"a {kind.name} records {', '.join(kind.series)}, not {series!r}", "query"
        )
    return series
