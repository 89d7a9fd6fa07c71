"""Float blobs are stored without PostgreSQL's compression (migration 0015): pglz runs over a
whole model file or checkpoint before it gives up on float data, for no saving. Checked by
what the server does with a value it could compress (zeros): stored at full size, so no
compression was tried; the packed series' steps (ascending integers), which do shrink, keep
the default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from core.presets import build_spec
from core.store import artifacts, experiments
from core.store.migrate import upgrade_to_head
from core.store.session import make_engine, session_scope
from tests.conftest import create_schema, drop_schema, postgres_schema_url, require_postgres

UNCOMPRESSED = {
    ("experiment_models", "data"),
    ("experiment_checkpoints", "data"),
    ("experiment_predictions", "outputs"),
}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    require_postgres()
    schema = create_schema("trainlab_blobs")
    url = postgres_schema_url(schema)
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_schema(schema)


def test_the_float_columns_are_stored_external(engine: Engine) -> None:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname, a.attname, a.attstorage FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relnamespace = current_schema()::regnamespace "
                "AND a.atttypid = 'bytea'::regtype AND a.attnum > 0"
            )
        ).all()
    storage = {(table, column): kind for table, column, kind in rows}
    assert {key: storage[key] for key in UNCOMPRESSED} == dict.fromkeys(UNCOMPRESSED, "e")
    assert storage[("experiment_series", "steps")] == "x"  # compressible: left as it was


def test_a_stored_model_is_not_compressed_and_reads_back_whole(engine: Engine) -> None:
    data = bytes(200_000)  # pglz would shrink this to almost nothing
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(session, build_spec("seed-adam", {}))
        session.execute(
            text("UPDATE experiments SET status = 'running', attempt = 1 WHERE id = :id"),
            {"id": experiment.id},
        )
        assert artifacts.save_model(
            session, experiment.id, 1, step=1, data=data, keep_checkpoint=False
        )
        assert artifacts.save_checkpoint(session, experiment.id, 1, 1, data)
    with engine.connect() as connection:
        sizes = connection.execute(
            text(
                "SELECT (SELECT pg_column_size(data) FROM experiment_models WHERE experiment_id"
                " = :id), (SELECT pg_column_size(data) FROM experiment_checkpoints WHERE"
                " experiment_id = :id)"
            ),
            {"id": experiment.id},
        ).one()
    assert tuple(sizes) == (len(data), len(data))
    with session_scope(engine) as session:
        info = artifacts.model_info(session, experiment.id)
    assert info is not None and b"".join(artifacts.iter_model(engine, info)) == data
