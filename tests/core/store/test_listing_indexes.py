"""PostgreSQL pages the listing filtered by status and sorted by a metric by walking
ix_experiments_status_<metric> (migration 0013) and stopping after the page: no read of
every row, no sort of every run of that status. Without the index the plan reads the table
or sorts every match, so this fails."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.store.listing import ExperimentFilters, list_experiments
from core.store.models import SORTABLE_METRICS
from tests.core.store.planner import filled_postgres, plans


@pytest.fixture(scope="module")
def filled() -> Iterator[Engine]:
    with filled_postgres() as engine:
        yield engine


def _nodes(plan: object) -> Iterator[dict[str, object]]:
    if isinstance(plan, dict):
        yield plan
        for child in plan.get("Plans", []):
            yield from _nodes(child)
    elif isinstance(plan, list):
        for item in plan:
            yield from _nodes(item.get("Plan", item))


@pytest.mark.parametrize("metric", SORTABLE_METRICS)
@pytest.mark.parametrize("sign", ["-", ""])
def test_status_filtered_metric_sort_walks_its_index(
    filled: Engine, metric: str, sign: str
) -> None:
    def read(session: Session) -> None:
        page, cursor = list_experiments(
            session, filters=ExperimentFilters(status="succeeded"), sort=sign + metric, limit=20
        )
        assert len(page) == 20 and cursor is not None
        list_experiments(  # the next page, from its cursor
            session, filters=ExperimentFilters(status="succeeded"), sort=sign + metric,
            limit=20, cursor=cursor,
        )  # fmt: skip

    found = plans(filled, read)
    assert len(found) == 2  # one statement a page: the page never reaches the runs without it
    for plan in found:
        nodes = list(_nodes(json.loads(plan)))
        scans = [n.get("Index Name") for n in nodes if "Scan" in str(n["Node Type"])]
        assert scans == [f"ix_experiments_status_{metric}"], plan
        assert not any(n["Node Type"] == "Sort" for n in nodes), plan  # incremental at most
