"""Loss series: points as rows while a run trains, one packed row once it has finished.

Loss points are rows keyed by step and inserted with ON CONFLICT DO NOTHING, so a delivery
repeated after a crash writes the same keys again and the series has no duplicate and no gap.
Every worker write first takes the experiment row's write lock with a no-op UPDATE that only
matches the current attempt (`lock_if_owner`): a superseded attempt writes nothing, and on
SQLite the lock also keeps the check and the insert in one write transaction.

A finished experiment's series never changes, so decoded copies are kept in a small
in-process LRU cache; a finished 18,000-point curve is then served without touching the rows.

A run records one series per name its kind declares (core/kinds: Kind.series); the
classifier's one series is DEFAULT_SERIES, which every function reads when given no name. Its
points are rows of `loss_points`, keyed (experiment_id, step) as before series had names: the
previous release's workers go on inserting there, with ON CONFLICT on that key, while an
upgrade runs (README, "Upgrades: expand, then contract"). Every other series (a GAN's two,
recorded at the same steps) is rows of `series_points`, keyed (experiment_id, series, step).
Packed series are one table, keyed (experiment_id, series), for all.

SQLite turns a bound NaN into NULL (and the value column is NOT NULL), so on SQLite NaN is
stored as the text 'NaN', which the REAL column keeps as text and which reads back as nan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, Float, String, Table, bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session

from core import kinds
from core.errors import invalid
from core.store.cache import LRU, cache_key
from core.store.models import DEFAULT_SERIES, TERMINAL_VALUES
from core.store.tables import EXPERIMENTS, LOSS, NAMED, SERIES, lock_if_owner

Steps = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FinishedSeries:
    """A finished experiment's packed series and its (final, so cacheable) status."""

    status: str
    steps: Steps
    values: Values


def _series_bytes(packed: dict[str, FinishedSeries]) -> int:
    return sum(int(one.steps.nbytes + one.values.nbytes) for one in packed.values())


# Per finished experiment, every series it recorded, by name; bounded by the bytes of them all
# (16 bytes a point, so 32 MiB is about a hundred book-length curves).
SERIES_CACHE_BYTES = 32 * 1_048_576
_series_cache: LRU[tuple[str, str], dict[str, FinishedSeries]] = LRU(
    SERIES_CACHE_BYTES, _series_bytes, per_run=True
)


def cached_finished_series(
    engine: Engine, experiment_id: str, series: str = DEFAULT_SERIES
) -> FinishedSeries | None:
    """The finished series if this process has already read it: no database round trip."""
    cached = _series_cache.get((str(engine.url), experiment_id))
    return None if cached is None else cached.get(series)


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


def _rows_series(
    session: Session, experiment_id: str, since_step: int | None, series: str = DEFAULT_SERIES
) -> tuple[Steps, Values]:
    table, picked = _points(experiment_id, series)
    query = select(table.c.step, table.c.value).where(*picked)
    if since_step is not None:
        query = query.where(table.c.step > since_step)
    rows = session.execute(query.order_by(table.c.step)).all()
    steps = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    # float() also reads SQLite's stored 'NaN' text back as nan.
    values = np.fromiter((float(row[1]) for row in rows), dtype=np.float64, count=len(rows))
    return steps, values


def pack_series(session: Session, experiment_id: str) -> int:
    """Store each series' rows as one ExperimentSeries row (int32 steps, float32 values);
    the default series always has its row, even empty. Returns the points packed."""
    names = set(
        session.execute(
            select(NAMED.c.series).where(NAMED.c.experiment_id == experiment_id).distinct()
        ).scalars()
    )
    session.execute(delete(SERIES).where(SERIES.c.experiment_id == experiment_id))
    packed = 0
    for name in sorted(names | {DEFAULT_SERIES}):
        steps, values = _rows_series(session, experiment_id, None, name)
        session.execute(insert(SERIES).values(**packed_row(experiment_id, name, steps, values)))
        packed += int(steps.shape[0])
    return packed


def packed_row(
    experiment_id: str, name: str, steps: npt.ArrayLike, values: npt.ArrayLike
) -> dict[str, Any]:
    """The ExperimentSeries row of one series: steps as int32, values as float32, little
    endian. The one place that format is written (bulk loaders use it too)."""
    step_array = np.asarray(steps)
    return {
        "experiment_id": experiment_id,
        "series": name,
        "points": int(step_array.shape[0]),
        "steps": step_array.astype("<i4").tobytes(),
        "values": np.asarray(values).astype("<f4").tobytes(),
    }


def read_series(
    session: Session,
    experiment_id: str,
    *,
    since_step: int | None = None,
    series: str = DEFAULT_SERIES,
) -> tuple[Steps, Values]:
    """A loss series (steps int64, values float64, step order): the packed row once the
    experiment has finished, the live rows before that. Arrays may be shared: don't mutate."""
    packed = _read_packed(session, experiment_id)
    if packed is None:
        return _rows_series(session, experiment_id, since_step, series)
    return _packed_after(packed, series, since_step)


@dataclass(frozen=True)
class RunSeries:
    """A run's state and the points of one of its series, read in that order
    (read_run_series)."""

    status: str
    error: str | None
    step: int
    total_steps: int  # what the worker reported (0 before it first beats)
    steps: Steps
    values: Values
    series: str = DEFAULT_SERIES  # which series the points are of


_STATE = select(
    EXPERIMENTS.c.status,
    EXPERIMENTS.c.error,
    EXPERIMENTS.c.step,
    EXPERIMENTS.c.total_steps,
    EXPERIMENTS.c.spec["kind"].as_string(),  # NULL for a classifier's spec (no kind field)
).where(EXPERIMENTS.c.id == bindparam("experiment_id"))


def read_run_series(
    session: Session,
    experiment_id: str,
    *,
    since_step: int | None = None,
    series: str | None = DEFAULT_SERIES,
) -> RunSeries | None:
    """The run's state, then the points of `series` after `since_step` (all without it); None
    when there is no such experiment. The one reader of "status, then points" (GET /loss,
    /loss.csv and the event stream): the status is read first, so a status read as terminal
    guarantees that the points read after it are complete (the worker writes its last points
    before it finishes). A finished run's packed series are cached from then on.

    `series` None means the first series the run's kind records (a classifier's `loss`, a
    GAN's `discriminator`); a name its kind does not record is refused (InvalidFields naming
    the query's `series`)."""
    row = session.execute(_STATE, {"experiment_id": experiment_id}).first()
    if row is None:
        return None
    status, error, step, total_steps = str(row[0]), row[1], int(row[2]), int(row[3])
    name = _series_name(row[4], series)
    packed = _read_packed(session, experiment_id) if status in TERMINAL_VALUES else None
    if packed is not None:
        steps, values = _packed_after(packed, name, since_step)
    else:
        steps, values = _rows_series(session, experiment_id, since_step, name)
        # Each statement sees the store as of its start (PostgreSQL's READ COMMITTED): a run
        # deleted after its terminal status was read has no packed series and no rows left,
        # which would read as a run that finished with no points. It is gone instead.
        if status in TERMINAL_VALUES and steps.size == 0 and _gone(session, experiment_id):
            return None
    return RunSeries(status, error, step, total_steps, steps, values, name)


def _gone(session: Session, experiment_id: str) -> bool:
    return session.execute(_STATE, {"experiment_id": experiment_id}).first() is None


def _series_name(kind_name: str | None, series: str | None) -> str:
    """The series a read means, given the run's stored kind (None: a classifier's spec)."""
    if series == DEFAULT_SERIES:
        return series
    try:
        kind = kinds.get(kind_name or kinds.DEFAULT_KIND)
    except kinds.UnknownKindError:  # a spec an older schema stored: its one series
        return series or DEFAULT_SERIES
    if series is None:
        return kind.series[0]
    if series not in kind.series:
        invalid("series", f"a {kind.name} records {', '.join(kind.series)}, not {series!r}")
    return series


def read_finished_series(
    session: Session, experiment_id: str, series: str = DEFAULT_SERIES
) -> FinishedSeries | None:
    """A packed series with the experiment's status, or None before the run has finished
    (or when there is no such experiment or series). Cached: a packed series never changes."""
    packed = _read_packed(session, experiment_id)
    return None if packed is None else packed.get(series)


def _read_packed(session: Session, experiment_id: str) -> dict[str, FinishedSeries] | None:
    """Every packed series of a finished experiment by name; None before it has finished."""
    return _read_packed_many(session, [experiment_id]).get(experiment_id)


def _read_packed_many(
    session: Session, experiment_ids: Sequence[str]
) -> dict[str, dict[str, FinishedSeries]]:
    """_read_packed of each experiment, those not cached read in one query; experiments
    that have not finished are left out."""
    found: dict[str, dict[str, FinishedSeries]] = {}
    missing = []
    for experiment_id in dict.fromkeys(experiment_ids):
        cached = _series_cache.get(cache_key(session, experiment_id))
        if cached is not None:
            found[experiment_id] = cached
        else:
            missing.append(experiment_id)
    if not missing:
        return found
    rows = session.execute(
        select(
            SERIES.c.experiment_id, SERIES.c.series, SERIES.c.steps, SERIES.c["values"],
            EXPERIMENTS.c.status,
        )
        .join(EXPERIMENTS, EXPERIMENTS.c.id == SERIES.c.experiment_id)
        .where(SERIES.c.experiment_id.in_(missing))
    ).all()  # fmt: skip
    read: dict[str, dict[str, FinishedSeries]] = {}
    for row in rows:
        steps = np.frombuffer(row[2], dtype="<i4").astype(np.int64)
        values = np.frombuffer(row[3], dtype="<f4").astype(np.float64)
        steps.flags.writeable = False
        values.flags.writeable = False
        packed = read.setdefault(str(row[0]), {})
        packed[str(row[1])] = FinishedSeries(status=str(row[4]), steps=steps, values=values)
    for experiment_id, packed in read.items():
        _series_cache.put(cache_key(session, experiment_id), packed)
    return found | read


def read_series_many(
    session: Session, experiment_ids: Sequence[str], series: str = DEFAULT_SERIES
) -> list[tuple[Steps, Values]]:
    """read_series of each experiment (in order): the finished ones' packed rows in one
    query, the live rows of the others one by one (few: they are still running)."""
    packed = _read_packed_many(session, experiment_ids)
    return [
        _packed_after(packed[i], series, None)
        if i in packed
        else _rows_series(session, i, None, series)
        for i in experiment_ids
    ]


def _packed_after(
    packed: dict[str, FinishedSeries], series: str, since_step: int | None
) -> tuple[Steps, Values]:
    finished = packed.get(series)
    if finished is None:  # a series the run never recorded
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    return _after(finished.steps, finished.values, since_step)


def _after(steps: Steps, values: Values, since_step: int | None) -> tuple[Steps, Values]:
    if since_step is None:
        return steps, values
    start = int(np.searchsorted(steps, since_step, side="right"))
    return steps[start:], values[start:]
