"""The listing pages through every sort exactly as one ORDER BY would: metric ascending or
descending with the experiments lacking it last, ties newest first then by id; read in two
parts (with the metric, then without) and with range conditions for the cursor, on both
backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.store.listing import SORTS, ExperimentFilters, list_experiments
from core.store.models import Experiment

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _store(engine: Engine) -> list[Experiment]:
    """Twenty runs: metrics missing on some, repeated values, shared creation instants."""
    made = []
    for n in range(20):
        value = None if n % 4 == 3 else float(n % 5) / 10  # ties: 0.0..0.4 repeat
        made.append(
            Experiment(
                id=f"{(n * 7919) % 97:02d}{n:030d}",
                tags=["even"] if n % 2 == 0 else [],
                spec={},
                spec_hash="h",
                status="succeeded" if value is not None else "failed",
                created_at=START + timedelta(minutes=n // 3),  # three at each instant
                test_accuracy=value,
                final_loss=None if value is None else 1 - value,
                test_loss=value,
            )
        )
    with Session(engine) as session:
        session.add_all(made)
        session.commit()
        return list(session.exec(select(Experiment)).all())


def _expected(rows: list[Experiment], sort: str) -> list[str]:
    descending, key = sort.startswith("-"), sort.lstrip("-")
    if key == "created_at":
        ordered = sorted(rows, key=lambda e: (e.created_at, e.id), reverse=descending)
        return [e.id for e in ordered]
    newest = sorted(rows, key=lambda e: (e.created_at, e.id), reverse=True)
    present = [e for e in newest if getattr(e, key) is not None]
    present.sort(key=lambda e: getattr(e, key), reverse=descending)  # stable: ties stay newest
    return [e.id for e in present] + [e.id for e in newest if getattr(e, key) is None]


def _walk(engine: Engine, sort: str, filters: ExperimentFilters, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    with Session(engine) as session:
        while True:
            page, cursor = list_experiments(
                session, filters=filters, sort=sort, limit=limit, cursor=cursor
            )
            seen += [e.id for e in page]
            if cursor is None:
                return seen


@pytest.mark.parametrize("sort", SORTS)
def test_pages_follow_the_one_query_order_across_the_missing_metric_boundary(
    engine: Engine, sort: str
) -> None:
    rows = _store(engine)
    expected = _expected(rows, sort)
    for limit in (1, 3, 7, 50):
        assert _walk(engine, sort, ExperimentFilters(), limit) == expected, limit
    even = [e for e in rows if "even" in e.tags]
    assert _walk(engine, sort, ExperimentFilters(tag="even"), 4) == _expected(even, sort)
    failed = [e for e in rows if e.status == "failed"]
    assert _walk(engine, sort, ExperimentFilters(status="failed"), 2) == _expected(failed, sort)
