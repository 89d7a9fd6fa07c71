"""Loss series: points as rows while a run trains (core/store/series_points.py), one packed
row per series once it has finished, and the reads of either.

A finished experiment's series never changes, so decoded copies are kept in a small
in-process LRU cache; a finished 18,000-point curve is then served without touching the rows.

A run records one series per name its kind declares (core/kinds: Kind.series); the
classifier's one series is DEFAULT_SERIES, which every function reads when given no name.
Packed series are one table, keyed (experiment_id, series), for all: steps as int32 and
values as float32, little endian (`packed_row`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import kinds
from core.errors import invalid
from core.store import series_points
from core.store.cache import LRU, cache_key
from core.store.models import DEFAULT_SERIES, TERMINAL_VALUES
from core.store.tables import EXPERIMENTS, NAMED, SERIES

Steps = series_points.Steps
Values = series_points.Values


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
        steps, values = series_points.rows_series(session, experiment_id, None, name)
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
        return series_points.rows_series(session, experiment_id, since_step, series)
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
        steps, values = series_points.rows_series(session, experiment_id, since_step, name)
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
        else series_points.rows_series(session, i, None, series)
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
