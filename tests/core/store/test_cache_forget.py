"""Runs deleted through another process leave this process's caches at its next retention
pass (`forget_deleted`): a deletion elsewhere is a plain DELETE of the row, which none of
this process's caches hears of."""

from __future__ import annotations

from sqlalchemy import Engine, text

from core.store import series
from core.store.cache import LRU, forget_deleted
from core.store.session import session_scope
from tests.api.recorded_runs import RecordedRuns, small_spec


def test_entries_of_runs_deleted_elsewhere_are_forgotten_and_the_rest_kept(
    engine: Engine,
) -> None:
    runs = RecordedRuns(engine)
    kept = runs.finished_run(small_spec(seed=1), accuracy=0.9, final_loss=0.1).id
    gone = runs.finished_run(small_spec(seed=2), accuracy=0.8, final_loss=0.2).id
    with session_scope(engine) as session:
        for experiment_id in (kept, gone):  # both finished series now in the store's cache
            assert series.read_series(session, experiment_id)[0].size > 0
    url = str(engine.url)
    other: LRU[tuple[str, ...], int] = LRU(10, per_run=True)  # e.g. the decoded models
    other.put((url, gone, "sha"), 1)
    other.put(("sqlite:///another.db", gone, "sha"), 2)  # another database's run of that id
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM experiments WHERE id = :id"), {"id": gone})

    # (Other tests' runs of this database, gone since, are forgotten with it.)
    assert forget_deleted(engine) >= 1
    held = {key[1] for key in series._series_cache.held_keys() if key[0] == url}
    assert gone not in held and kept in held
    assert other.get((url, gone, "sha")) is None
    assert other.get(("sqlite:///another.db", gone, "sha")) == 2
    assert forget_deleted(engine) == 0
