"""The experiment listing: filters, sorts and keyset pages that cost the same at any size.

Every page is read in index order and stops after `limit + 1` rows, whatever the store holds:
- sorted by creation, the created_at index is walked from the cursor's position, which the
  condition names as a range (`created_at <= c AND (created_at < c OR id < i)`), so the
  database seeks to it instead of filtering every row before it;
- sorted by a metric, the experiments that have it come first and those without it last
  (NULLS LAST), so a page is read in two parts: those with the metric in the metric's index
  order (the one-column index, read either way), then, once they run out, those without it,
  newest first. One ORDER BY with NULLS LAST would need an index of that exact ordering,
  which SQLite cannot declare for ascending sorts; with the parts apart, any plain index
  serves, and the database never sorts the whole table to find 50 rows.
The answer is the same rows in the same order as one `ORDER BY metric NULLS LAST, created_at
DESC, id DESC` query would give; tests/core/store/test_listing.py checks it on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from core.store.cursor import decode_sort_cursor, encode_sort_cursor
from core.store.models import SORTABLE_METRICS, Experiment
from core.store.tables import EXPERIMENTS

_C = EXPERIMENTS.c


@dataclass(frozen=True)
class ExperimentFilters:
    """What the listing keeps: every given field must match (None means any)."""

    status: str | None = None
    tag: str | None = None
    preset: str | None = None
    dataset: str | None = None
    name: str | None = None  # case-insensitive substring of the name


# Sort keys: created_at, or a metric copied into a column (SORTABLE_METRICS); "-" descends.
SORT_KEYS = ("created_at", *SORTABLE_METRICS)
SORTS = tuple(f"{sign}{key}" for key in SORT_KEYS for sign in ("-", ""))
DEFAULT_SORT = "-created_at"

# Where a page starts: the last row of the page before (its sort value, created_at, id).
Position = tuple[float | None, datetime, str]


def list_experiments(
    session: Session,
    *,
    filters: ExperimentFilters | None = None,
    sort: str = DEFAULT_SORT,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Experiment], str | None]:
    """One page of experiments in `sort` order (default newest first), with the cursor of the
    next page. Keyset paging on (sort value, created_at, id): the cursor names the last row of
    a page (and the sort it belongs to), so pages stay stable while experiments arrive.

    A metric sort puts experiments without that metric (unfinished, failed) last, and breaks
    ties newest first; `sort=created_at` is oldest first, `-created_at` newest first."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
    conditions = _filter_conditions(session, filters or ExperimentFilters())
    descending, key = sort.startswith("-"), sort.lstrip("-")
    position = None if cursor is None else decode_sort_cursor(cursor, sort)
    if key == "created_at":
        rows = _by_creation(session, conditions, descending, position, limit + 1)
    else:
        rows = _by_metric(session, conditions, key, descending, position, limit + 1)
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    value = None if key == "created_at" else getattr(last, key)
    return page, encode_sort_cursor(sort, value, last.created_at, last.id)


def _fetch(
    session: Session, conditions: list[ColumnElement[bool]], order: list[Any], count: int
) -> list[Experiment]:
    query = select(Experiment).where(*conditions).order_by(*order).limit(count)
    return list(session.execute(query).scalars())


def _newest_first_after(created: datetime, last_id: str) -> ColumnElement[bool]:
    """Rows after (created, last_id) newest first: `created_at <= c` is the range the index
    seeks to, the rest settles ties of the same instant."""
    return and_(_C.created_at <= created, or_(_C.created_at < created, _C.id < last_id))


def _by_creation(
    session: Session,
    conditions: list[ColumnElement[bool]],
    descending: bool,
    position: Position | None,
    count: int,
) -> list[Experiment]:
    created, row_id = _C.created_at, _C.id
    where = list(conditions)
    if position is not None:
        _, when, last_id = position
        if descending:
            where.append(_newest_first_after(when, last_id))
        else:
            where.append(and_(created >= when, or_(created > when, row_id > last_id)))
    order = [created.desc(), row_id.desc()] if descending else [created.asc(), row_id.asc()]
    return _fetch(session, where, order, count)


def _by_metric(
    session: Session,
    conditions: list[ColumnElement[bool]],
    key: str,
    descending: bool,
    position: Position | None,
    count: int,
) -> list[Experiment]:
    """Those with the metric in its order, then those without it, newest first."""
    metric = _C[key]
    newest = [_C.created_at.desc(), _C.id.desc()]
    rows: list[Experiment] = []
    if position is None or position[0] is not None:  # the page starts among those with it
        present = [*conditions, metric.is_not(None)]
        if position is not None:
            value, when, last_id = position
            # Equal values come newest first, like the rows without the metric.
            if descending:
                beyond = and_(metric <= value, or_(metric < value, _after_tie(when, last_id)))
            else:
                beyond = and_(metric >= value, or_(metric > value, _after_tie(when, last_id)))
            present.append(beyond)
        order = [metric.desc() if descending else metric.asc(), *newest]
        rows = _fetch(session, present, order, count)
    if len(rows) < count:
        missing = [*conditions, metric.is_(None)]
        if position is not None and position[0] is None:
            missing.append(_newest_first_after(position[1], position[2]))
        rows += _fetch(session, missing, newest, count - len(rows))
    return rows


def _after_tie(created: datetime, last_id: str) -> ColumnElement[bool]:
    return or_(_C.created_at < created, and_(_C.created_at == created, _C.id < last_id))


def _filter_conditions(session: Session, wanted: ExperimentFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if wanted.status is not None:
        conditions.append(_C.status == wanted.status)
    if wanted.tag is not None:
        conditions.append(_has_tag(session, wanted.tag))
    if wanted.preset is not None:
        conditions.append(_C.preset == wanted.preset)
    if wanted.dataset is not None:
        conditions.append(_C.dataset == wanted.dataset)
    if wanted.name is not None:
        # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite; % and _ match themselves.
        conditions.append(_C.name.icontains(wanted.name, autoescape=True))
    return conditions


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return sa_cast(_C.tags, JSONB).contains([tag])
    members = func.json_each(_C.tags).table_valued("value")
    return exists(select(literal(1)).select_from(members).where(members.c.value == tag))
