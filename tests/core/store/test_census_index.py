"""PostgreSQL answers the census reads (/metrics' totals by status, the change feed's marks)
from ix_experiments_census alone (migration 0013), not by reading every experiment row.
Without the index the planner reads the table (a sequential scan), so this fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from core.store import census
from tests.core.store.planner import filled_postgres, plans


@pytest.fixture(scope="module")
def filled() -> Iterator[Engine]:
    with filled_postgres() as engine:
        yield engine


@pytest.mark.parametrize("read", [census.status_totals, census.activity_marks])
def test_census_reads_are_index_only_scans(filled: Engine, read: Any) -> None:
    found = plans(filled, read)
    assert found, "the read ran no statement on experiments"
    for plan in found:
        assert '"Index Only Scan"' in plan and '"ix_experiments_census"' in plan, plan
        assert '"Seq Scan"' not in plan, plan
