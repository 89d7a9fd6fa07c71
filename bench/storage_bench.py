"""Bytes one finished full run keeps in the store, before and after retention, measured.

The run is the book's `seed-layernorm` at 3 epochs of batch size 1: 18,000 loss points, 10,000
test predictions, a checkpoint of the 784-200-10 LayerNorm network with Adam's state, and its
final weights. The rows are written through the store as a worker writes them (append_loss in
flushes, save_checkpoint, save_model, finish), with values drawn at random; the checkpoint and
the weights file are the real ones for that network (the engine trains it for a few steps: the
sizes depend on the shapes only). Three states:
- before: what a run kept until now (every loss row, the packed series, predictions, the
  checkpoint kept after success; no final weights);
- finished: what a run keeps at once now (the worker drops the checkpoint when it stores the
  final weights);
- after the retention pass: the loss rows dropped too (the packed series holds the curve).
Payload bytes are blob lengths plus 12 per loss point; "on disk" is the database's own size of
those tables after VACUUM (PostgreSQL: pg_total_relation_size with TOAST and indexes; SQLite:
the file's pages).

Usage: python bench/storage_bench.py [--data-dir ../shared/data] [--postgres URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import Engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.presets import build_spec  # noqa: E402
from core.store import artifacts, experiments, pruning, retention, runs, series_points  # noqa: E402
from core.store.migrate import upgrade_to_head  # noqa: E402
from core.store.models import Status  # noqa: E402
from core.store.session import make_engine, session_scope  # noqa: E402

TABLES = (
    "experiments",
    "loss_points",
    "experiment_series",
    "experiment_predictions",
    "experiment_checkpoints",
    "experiment_models",
)
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def real_blobs(data_dir: Path) -> tuple[bytes, bytes]:
    """The checkpoint and the weights file of seed-layernorm (sizes depend on shapes only)."""
    from worker.artifacts import final_weights
    from worker.engine import run_training

    spec = build_spec("seed-layernorm", {"epochs": 1, "train_limit": 20, "device": "cpu"})
    result = run_training(spec, data_dir=data_dir, allow_download=False, threads=1)
    weights = final_weights(spec, result, experiment_id="0" * 32)
    assert weights is not None
    return result.checkpoint, weights


def write_run(engine: Engine, checkpoint: bytes, weights: bytes | None, *, keep: bool) -> str:
    spec = build_spec("seed-layernorm")
    rng = np.random.default_rng(0)
    with session_scope(engine) as session:
        experiment, _ = experiments.create_experiment(session, spec, name="storage bench")
    with session_scope(engine) as session:
        attempt = runs.claim(session, experiment.id, worker="bench", stale_after_s=3600)
        assert attempt is not None
    steps = list(range(10, spec.total_steps + 1, spec.log_every))
    values = rng.random(len(steps)).tolist()
    for start in range(0, len(steps), 200):  # a flush a second, as a worker writes them
        with session_scope(engine) as session:
            series_points.append_loss(
                session, experiment.id, attempt, steps[start : start + 200],
                values[start : start + 200],
            )  # fmt: skip
    outputs = rng.random((10_000, 10)).astype(np.float32)
    with session_scope(engine) as session:
        artifacts.save_checkpoint(session, experiment.id, attempt, spec.total_steps, checkpoint)
        if weights is not None:
            artifacts.save_model(
                session, experiment.id, attempt, step=spec.total_steps, data=weights,
                keep_checkpoint=keep,
            )  # fmt: skip
        runs.finish(
            session, experiment.id, attempt, status=Status.succeeded,
            metrics={"test_accuracy": 0.97}, outputs=outputs,
            labels=rng.integers(0, 10, 10_000), predicted=outputs.argmax(axis=1),
            step=spec.total_steps,
        )  # fmt: skip
    return experiment.id


def on_disk(engine: Engine, url: str) -> int:
    if engine.dialect.name == "postgresql":
        raw = url.replace("postgresql+psycopg://", "postgresql://")
        schema = url.split("search_path%3D", 1)[1]
        with psycopg.connect(raw.split("?", 1)[0], autocommit=True) as connection:
            connection.execute(f'SET search_path TO "{schema}"')
            for table in TABLES:
                connection.execute(f"VACUUM FULL {table}")
            return sum(
                connection.execute(f"SELECT pg_total_relation_size('{t}')").fetchone()[0]  # type: ignore[index]
                for t in TABLES
            )
    with engine.connect() as connection:
        connection.execute(text("VACUUM"))
        total = 0
        for table in TABLES:
            total += connection.execute(
                text("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = :t OR name IN "
                     "(SELECT name FROM sqlite_master WHERE tbl_name = :t AND type = 'index')"),
                {"t": table},
            ).scalar_one()  # fmt: skip
        return int(total)


def measure(url: str, checkpoint: bytes, weights: bytes) -> None:
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        empty = on_disk(engine, url)
        rows: list[tuple[str, int, int]] = []
        states = (("before: checkpoint, no weights", None), ("finished now", weights))
        for label, model in states:
            experiment_id = write_run(engine, checkpoint, model, keep=model is None)
            with session_scope(engine) as session:
                payload = retention.footprints(session, [experiment_id])[experiment_id]
            rows.append((label, payload.bytes, on_disk(engine, url) - empty))
            with session_scope(engine) as session:
                retention.remove_experiments(session, [experiment_id])
        experiment_id = write_run(engine, checkpoint, weights, keep=False)
        pruning.sweep_until_done(engine, keep_checkpoints=False)
        with session_scope(engine) as session:
            payload = retention.footprints(session, [experiment_id])[experiment_id]
        rows.append(("after the retention pass", payload.bytes, on_disk(engine, url) - empty))
        print(f"{engine.dialect.name}:")
        for label, payload_bytes, disk in rows:
            sizes = f"payload {payload_bytes / 1e6:6.2f} MB   on disk {disk / 1e6:6.2f} MB"
            print(f"  {label:<32} {sizes}")
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--postgres", default=POSTGRES, help="'' to skip PostgreSQL")
    args = parser.parse_args()
    checkpoint, weights = real_blobs(args.data_dir)
    print(f"checkpoint {len(checkpoint):,} bytes, final weights {len(weights):,} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        measure(f"sqlite:///{Path(tmp) / 'storage.db'}", checkpoint, weights)
    if args.postgres:
        schema = f"storage_bench_{uuid.uuid4().hex[:8]}"
        admin = args.postgres.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        try:
            measure(f"{args.postgres}?options=-csearch_path%3D{schema}", checkpoint, weights)
        finally:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
