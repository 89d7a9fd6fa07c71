"""Loss series as rows, while a run trains: written by its worker, read until it has finished
(core/store/series.py packs them into one row then, and reads either).

Loss points are rows keyed by step and inserted with ON CONFLICT DO NOTHING, so a delivery
repeated after a crash writes the same keys again and the series has no duplicate and no gap.
Every worker write first takes the experiment row's write lock with a no-op UPDATE that only
matches the current attempt (`lock_if_owner`): a superseded attempt writes nothing, and on
SQLite the lock also keeps the check and the insert in one write transaction.

The classifier's one series (DEFAULT_SERIES) is rows of `loss_points`, keyed (experiment_id,
step) as before series had names: the previous release's workers go on inserting there, with
ON CONFLICT on that key, while an upgrade runs (README, "Upgrades: expand, then contract").
Every other series (a GAN's two, recorded at the same steps) is rows of `series_points`, keyed
(experiment_id, series, step).

SQLite turns a bound NaN into NULL (and the value column is NOT NULL), so on SQLite NaN is
stored as the text 'NaN', which the REAL column keeps as text and which reads back as nan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, Float, String, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session

from core.store.models import DEFAULT_SERIES
from core.store.tables import LOSS, NAMED, lock_if_owner

Steps = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


def append_loss(
    session: Session,
    experiment_id: str,
    attempt: int,
    steps: Sequence[int],
    values: Sequence[float],
    series: str = DEFAULT_SERIES,
) -> int:
    """Write loss points for the current attempt; points already stored are left as they
    are. Returns how many rows were new (0 when the attempt is no longer current)."""
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values")
    if not steps or not lock_if_owner(session, experiment_id, attempt):
        return 0
    named = {} if series == DEFAULT_SERIES else {"series": series}
    rows = [
        {"experiment_id": experiment_id, **named, "step": int(s), "value": float(v)}
        for s, v in zip(steps, values, strict=True)
    ]
    statement = _insert_ignoring_conflicts(session.get_bind().dialect.name, bool(named))
    # One statement executed for many rows: SQLAlchemy batches them into multi-row INSERTs
    # ("insertmanyvalues"), and RETURNING counts the rows really inserted (conflicting ones
    # return nothing), which rowcount doesn't do reliably on every driver.
    return len(session.execute(statement, rows).all())


class _LossValue(TypeDecorator[float]):
    """A float column value, except that SQLite gets NaN as the text 'NaN': bound as a
    number it would be stored as NULL, which the NOT NULL column refuses."""

    impl = Float
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # On SQLite bind untouched (Float would coerce the text back into a float NaN).
        return dialect.type_descriptor(String() if dialect.name == "sqlite" else Float())

    def process_bind_param(self, value: float | None, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and value is not None and math.isnan(value):
            return "NaN"
        return value


def _insert_ignoring_conflicts(dialect: str, named: bool) -> Any:
    table = NAMED if named else LOSS
    keys = ["experiment_id", "series", "step"] if named else ["experiment_id", "step"]
    values: dict[str, Any] = {key: bindparam(key) for key in keys}
    values["value"] = bindparam("value", type_=_LossValue())
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).values(values)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(values)
    else:
        raise NotImplementedError(f"the store supports sqlite and postgresql, not {dialect}")
    return statement.on_conflict_do_nothing(index_elements=keys).returning(table.c.step)


def _points(experiment_id: str, series: str) -> tuple[Table, list[ColumnElement[bool]]]:
    """The table holding a series' rows, and the condition that picks them."""
    if series == DEFAULT_SERIES:
        return LOSS, [LOSS.c.experiment_id == experiment_id]
    return NAMED, [NAMED.c.experiment_id == experiment_id, NAMED.c.series == series]


def truncate_loss_after(session: Session, experiment_id: str, step: int) -> None:
    """Drop points of every series after `step`: a run resumed from a checkpoint at `step`
    writes them again."""
    for table in (LOSS, NAMED):
        session.execute(
            delete(table).where(table.c.experiment_id == experiment_id, table.c.step > step)
        )


def rows_series(
    session: Session, experiment_id: str, since_step: int | None, series: str = DEFAULT_SERIES
) -> tuple[Steps, Values]:
    """A series' points as stored in rows, after `since_step` (all without it)."""
    table, picked = _points(experiment_id, series)
    query = select(table.c.step, table.c.value).where(*picked)
    if since_step is not None:
        query = query.where(table.c.step > since_step)
    rows = session.execute(query.order_by(table.c.step)).all()
    steps = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    # float() also reads SQLite's stored 'NaN' text back as nan.
    values = np.fromiter((float(row[1]) for row in rows), dtype=np.float64, count=len(rows))
    return steps, values
