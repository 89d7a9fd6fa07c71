"""PostgreSQL answers the census reads (/metrics' totals by status, the change feed's marks)
without reading the experiments table: no statement scans it sequentially, and the one that
sums every ended experiment (/metrics, when one has ended or been deleted since its last
read) is an index-only scan of ix_experiments_census (migration 0013). Without the index the
planner reads the table, so this fails."""

from __future__ import annotations

import json
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
def test_census_reads_never_read_the_table(filled: Engine, read: Any) -> None:
    census.forget_ended_totals()
    found = plans(filled, read)
    assert found, "the read ran no statement on experiments"
    for plan in found:
        assert "experiments" not in _scanned_whole(json.loads(plan)), plan


def _scanned_whole(node: Any) -> set[str]:
    """The tables a plan reads sequentially, anywhere in its tree."""
    if isinstance(node, list):
        return set().union(*(_scanned_whole(n) for n in node))
    if not isinstance(node, dict):
        return set()
    found = {node["Relation Name"]} if node.get("Node Type") == "Seq Scan" else set()
    return found.union(*(_scanned_whole(v) for v in node.values() if isinstance(v, list | dict)))


@pytest.mark.parametrize("read", [census.status_totals, census.activity_marks])
def test_a_quiet_store_costs_a_read_of_its_open_experiments_only(filled: Engine, read: Any) -> None:
    """Once the ended totals are kept, a read of a store where nothing has ended since reads
    the queued and running experiments (a tenth of these) and the counts the writes keep
    (migration 0017), not a count of all of them, which grows with the store."""
    census.forget_ended_totals()
    plans(filled, census.status_totals)  # sums the ended ones once, and keeps them
    read_rows = [_rows_of_experiments(json.loads(plan)) for plan in plans(filled, read)]
    assert read_rows and max(read_rows) <= OPEN_ROWS * 1.5, read_rows


OPEN_ROWS = 400  # tests/core/store/planner.py: one running experiment in ten of 4,000


def _rows_of_experiments(node: Any) -> float:
    """The rows the planner expects to read from experiments, over the plan's tree (under a
    Limit, what the limit lets through: the newest row read off an index is one row)."""
    if isinstance(node, list):
        return sum(_rows_of_experiments(n) for n in node)
    if not isinstance(node, dict):
        return 0.0
    if node.get("Node Type") == "Limit":
        below = _rows_of_experiments(node["Plans"])
        return min(below, float(node["Plan Rows"]))
    own = float(node["Plan Rows"]) if node.get("Relation Name") == "experiments" else 0.0
    return own + sum(_rows_of_experiments(v) for v in node.values() if isinstance(v, list | dict))


def test_the_ended_totals_are_an_index_only_scan_of_the_census_index(filled: Engine) -> None:
    census.forget_ended_totals()
    ended = [p for p in plans(filled, census.status_totals) if "succeeded" in p]
    assert ended, "the ended experiments' totals were not read"
    for plan in ended:
        assert '"Index Only Scan"' in plan and '"ix_experiments_census"' in plan, plan
