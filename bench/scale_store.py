"""A store of N experiments for the scale benchmark, built fast in the store's exact format.

The schema comes from Alembic (`upgrade_to_head`), the keys from core/store/keys.py, the
ablations' arms and the sweep from the service's own planners (bench/scale_groups.py), and the
rows go in through the store's Core tables as multi-row INSERTs: the same columns, JSON and
timestamps as the ORM writes, and the packed series and predictions made by the store's own
packing functions (series.packed_row, artifacts.predictions_row). Only the path is quicker
than one request per run: nothing trains.

Not stored: final weights (experiment_models) and checkpoints. A real year of 100,000 runs
would keep ~0.64 MB of weights per succeeded MLP run (tens of GB): no read measured here
touches them, and the store would no longer fit in a few GB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Table, insert

from bench import scale_data as data
from bench.scale_groups import Groups, add_ablations, add_sweep, plan_groups
from core.keys import Role
from core.store import keys
from core.store.artifacts import predictions_row
from core.store.migrate import upgrade_to_head
from core.store.series import packed_row
from core.store.session import make_engine, session_scope
from core.store.tables import EXPERIMENTS, LOSS, PREDICTIONS, SERIES

KEYS = 50  # API keys: 2 admins, 8 viewers, 40 members over 20 accounts (rotated keys)
ACCOUNTS = 20
CHUNK_ROWS = 2_000
CHUNK_BYTES = 16 * 1_048_576
PREDICTIONS_POOL = 32
KEPT_DAYS = 170  # safely inside what `trainlab prune --older-than 183d` keeps


@dataclass
class BuiltStore:
    """What the reads need to know about the store that was built."""

    url: str
    size: int
    build_s: float = 0.0
    token: str = ""  # a viewer's key: reads need no more
    full_ids: list[str] = field(default_factory=list)  # succeeded, 18,000 points
    short_ids: list[str] = field(default_factory=list)  # succeeded, a few hundred points
    # Those of them made in the last KEPT_DAYS days: what a prune of older runs leaves.
    recent: set[str] = field(default_factory=set)
    ablation_id: str = ""  # the 50 arms x 5 seeds one
    sweep_id: str = ""  # the 200-trial one
    presets: tuple[str, ...] = data.PRESETS
    tags: tuple[str, ...] = data.TAGS


def make_keys(engine: Engine) -> tuple[list[data.Who], str]:
    """The store's 50 keys; (the members who own runs, a viewer's token)."""
    members: list[data.Who] = []
    viewer = ""
    with session_scope(engine) as session:
        for n in range(KEYS):
            if n < 2:
                keys.create_key(session, f"admin-{n}", Role.admin)
            elif n < 10:
                _, token = keys.create_key(session, f"viewer-{n}", Role.viewer)
                viewer = viewer or token
            else:
                key, _ = keys.create_key(session, f"user-{n % ACCOUNTS:02d}", Role.member)
                members.append(data.Who(key.name, key.id))
    return members, viewer


class Writer:
    """Buffers rows per table and writes them in multi-row INSERTs, one transaction a chunk."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.bytes = 0

    def add(self, table: Table, row: dict[str, Any], size: int = 0) -> None:
        self.rows.setdefault(table.name, []).append(row)
        self.bytes += size
        if self.bytes >= CHUNK_BYTES or len(self.rows[table.name]) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        # Experiments first: every other row points at one.
        order = [EXPERIMENTS, SERIES, LOSS, PREDICTIONS]
        with self.engine.begin() as connection:
            for table in order:
                pending = self.rows.pop(table.name, [])
                if pending:
                    write(connection, table, pending)
        self.bytes = 0


def write(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    connection.execute(insert(table), rows)


class Builder:
    def __init__(self, engine: Engine, size: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.writer = Writer(engine)
        self.size = size
        self.now = data.now_utc()
        self.pool, self.labels = data.outputs_pool(self.rng, PREDICTIONS_POOL)
        self.predicted = [outputs.argmax(axis=1) for outputs in self.pool]
        self.written = 0

    def put(self, run: data.Run) -> None:
        """The run's row, its series (packed once ended, live rows before) and predictions."""
        row = run.row
        shape_every = int(row["spec"].get("log_every", 10))
        self.writer.add(EXPERIMENTS, row, 3_000)
        steps, values = data.loss_curve(self.rng, run.points, shape_every)
        if run.packed:
            packed = packed_row(row["id"], "loss", steps, values)
            self.writer.add(SERIES, packed, 8 * run.points)
        else:
            for step, value in zip(steps.tolist(), values.tolist(), strict=True):
                self.writer.add(LOSS, {"experiment_id": row["id"], "series": "loss",
                                       "step": step, "value": value})  # fmt: skip
        if run.predictions:
            pick = int(self.rng.integers(len(self.pool)))
            blob = predictions_row(row["id"], self.pool[pick], self.labels, self.predicted[pick])
            self.writer.add(PREDICTIONS, blob, 42 * data.TEST_RECORDS)
        self.written += 1


def general_runs(
    builder: Builder, count: int, owners: list[data.Who], built: BuiltStore
) -> Iterator[tuple[str, int, str, datetime]]:
    """Write the team's ordinary runs; yield (id, seed, status, created) of each."""
    full, short = data.spec_shapes()
    rng = builder.rng
    for index in range(count):
        status = data.status_of(rng, index, count)
        created = data.when(count, index, builder.now)
        if status in ("queued", "running"):  # in flight: from the last hour
            created = builder.now - timedelta(minutes=float(rng.uniform(1, 60)))
        is_full = index % 10 == 0
        shapes = full if is_full else short
        shape = shapes[int(rng.integers(len(shapes)))]
        seed = int(rng.integers(data.SEEDS))
        tags = sorted({data.TAGS[int(t)] for t in rng.integers(0, len(data.TAGS), rng.integers(4))})
        name = f"{shape.preset} lr={shape.spec['lr']:.4g} #{index}" if rng.random() < 0.7 else None
        run = data.make_run(
            rng, shape, seed, created, owners[int(rng.integers(len(owners)))], status=status,
            name=name, tags=tags, predictions=index % 20 == 0,
        )  # fmt: skip
        builder.put(run)
        if status == "succeeded":
            (built.full_ids if is_full else built.short_ids).append(run.row["id"])
            if builder.now - created < timedelta(days=KEPT_DAYS):
                built.recent.add(run.row["id"])
        yield run.row["id"], seed, status, created


def build_store(url: str, size: int, *, seed: int = 0, log: bool = True) -> BuiltStore:
    """Migrate the empty database at `url` and fill it with `size` experiments."""
    started = time.perf_counter()
    built = BuiltStore(url, size)
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        owners, built.token = make_keys(engine)
        builder = Builder(engine, size, seed)
        groups: Groups = plan_groups(builder.rng)
        finished: list[tuple[str, int]] = []
        for run_id, run_seed, status, _ in general_runs(builder, size - groups.runs, owners, built):
            if status == "succeeded":
                finished.append((run_id, run_seed))
            if log and builder.written % 10_000 == 0:
                print(f"  {builder.written:,} runs written, {time.perf_counter() - started:.0f} s")
        group_owner = owners[0]
        grouped = groups.runs_to_write(builder.rng, builder.now, group_owner)
        for run in grouped:
            builder.put(run)
        builder.writer.flush()
        built.ablation_id = add_ablations(engine, builder.rng, groups, finished, group_owner)
        built.sweep_id = add_sweep(engine, groups, group_owner)
    finally:
        engine.dispose()
    built.build_s = time.perf_counter() - started
    return built
