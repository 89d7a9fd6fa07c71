"""Migration 0010 names the series and leaves the previous release's writes working, on SQLite
and Postgres: its workers go on inserting the classifier's points with ON CONFLICT on
(experiment_id, step) while an upgrade runs (the upgrade drill does it with live processes),
packed rows stored before it are the classifier's "loss", and a named series (a GAN's, at the
same steps as its other one) is stored beside them."""

from __future__ import annotations

from sqlalchemy import text

from core.store.migrate import upgrade_to_head
from core.store.session import make_engine, session_scope
from tests.core.store.helpers import migrate_to

EXPERIMENT = text(
    "INSERT INTO experiments (id, tags, spec, spec_hash, status, cancel_requested, attempt, "
    "step, total_steps, created_at, cost) VALUES (:id, '[]', '{}', 'h', 'running', false, 1, "
    "0, 0, '2026-01-01 00:00:00+00:00', 0)"
)
PACKED = text(
    'INSERT INTO experiment_series (experiment_id, points, steps, "values") '
    "VALUES (:id, 0, :empty, :empty)"
)
# What the previous release's worker sends for each batch of points (core/store/series.py at
# tests/migrations/previous_release.py's commit).
PREVIOUS_RELEASE_POINTS = text(
    "INSERT INTO loss_points (experiment_id, step, value) VALUES (:id, :step, :value) "
    "ON CONFLICT (experiment_id, step) DO NOTHING RETURNING step"
)


def test_the_previous_release_still_writes_points_and_named_series_fit_beside(
    empty_database: str,
) -> None:
    from core.store.series import pack_series, read_series
    from core.store.series_points import append_loss

    running, finished = "a" * 32, "b" * 32
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            migrate_to(connection, empty_database, "0009")
            for row_id in (running, finished):
                connection.execute(EXPERIMENT, {"id": row_id})
            connection.execute(PACKED, {"id": finished, "empty": b""})
        upgrade_to_head(empty_database)
        with engine.begin() as connection:
            packed = connection.execute(text("SELECT experiment_id, series FROM experiment_series"))
            assert [tuple(row) for row in packed] == [(finished, "loss")]
            points = {"id": running, "step": 10, "value": 0.5}
            assert connection.execute(PREVIOUS_RELEASE_POINTS, points).all() == [(10,)]
            assert connection.execute(PREVIOUS_RELEASE_POINTS, points).all() == []  # a repeat
        with session_scope(engine) as session:
            assert append_loss(session, running, 1, [10, 20], [0.5, 0.25]) == 1
            for name in ("discriminator", "generator"):
                assert append_loss(session, running, 1, [10, 20], [1.0, 2.0], name) == 2
        with session_scope(engine) as session:
            assert read_series(session, running)[0].tolist() == [10, 20]
            assert read_series(session, running, series="generator")[1].tolist() == [1.0, 2.0]
            assert pack_series(session, running) == 6
    finally:
        engine.dispose()


# 0010's first version, as a store that ran it has it: the named series' points in
# loss_points, keyed (experiment_id, series, step), and no series_points.
FIRST_0010_POSTGRES = [
    "DROP TABLE series_points",
    "ALTER TABLE loss_points DROP CONSTRAINT loss_points_pkey",
    "ALTER TABLE loss_points ADD COLUMN series VARCHAR(32) NOT NULL DEFAULT 'loss'",
    "ALTER TABLE loss_points ADD CONSTRAINT loss_points_pkey PRIMARY KEY "
    "(experiment_id, series, step)",
]
FIRST_0010_SQLITE = [
    "DROP TABLE series_points",
    "CREATE TABLE _first (experiment_id VARCHAR NOT NULL, series VARCHAR(32) DEFAULT 'loss' "
    "NOT NULL, step INTEGER NOT NULL, value FLOAT NOT NULL, CONSTRAINT loss_points_pkey "
    "PRIMARY KEY (experiment_id, series, step), FOREIGN KEY(experiment_id) REFERENCES "
    "experiments (id) ON DELETE CASCADE)",
    "DROP TABLE loss_points",
    "ALTER TABLE _first RENAME TO loss_points",
]
FIRST_LAYOUT_POINTS = text(
    "INSERT INTO loss_points (experiment_id, series, step, value) VALUES (:id, :series, 10, :v)"
)


def test_a_store_that_ran_the_first_0010_gets_its_layout_and_keeps_every_point(
    empty_database: str,
) -> None:
    from core.store.series import read_series

    gan, classifier = "c" * 32, "d" * 32
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            migrate_to(connection, empty_database, "0010")
            sqlite = connection.dialect.name == "sqlite"
            for statement in FIRST_0010_SQLITE if sqlite else FIRST_0010_POSTGRES:
                connection.execute(text(statement))
            for row_id in (gan, classifier):
                connection.execute(EXPERIMENT, {"id": row_id})
            connection.execute(FIRST_LAYOUT_POINTS, {"id": classifier, "series": "loss", "v": 0.5})
            for name, value in (("discriminator", 1.0), ("generator", 2.0)):
                connection.execute(FIRST_LAYOUT_POINTS, {"id": gan, "series": name, "v": value})
        upgrade_to_head(empty_database)
        engine.dispose()  # connections made after the migration, as a restarted process's
        with engine.begin() as connection:
            # The key the previous release's inserts (and this one's) name is there again.
            points = {"id": classifier, "step": 20, "value": 0.25}
            assert connection.execute(PREVIOUS_RELEASE_POINTS, points).all() == [(20,)]
            assert connection.execute(PREVIOUS_RELEASE_POINTS, points).all() == []
        with session_scope(engine) as session:
            assert read_series(session, classifier)[1].tolist() == [0.5, 0.25]
            assert read_series(session, gan, series="discriminator")[1].tolist() == [1.0]
            assert read_series(session, gan, series="generator")[1].tolist() == [2.0]
    finally:
        engine.dispose()
