"""A team's year of runs: how reads, retention and bytes on disk behave from 1,000 to 100,000
experiments, on PostgreSQL and on the embedded SQLite store (`make bench-scale`).

For each size N (BENCH_SCALE_SIZES, default 1000,10000,100000) and each store:
1. a fresh store of N experiments (bench/scale_store.py: a PostgreSQL database made for it on
   the shared server, or a temporary SQLite file), its build time and bytes on disk;
2. a real `trainlab serve` on it (bench/scale_server.py) and the reads over HTTP, p50 / p95
   (bench/scale_reads.py), with the API process's CPU per read;
3. the figures other modules measure on the same live store (bench/scale_hooks.py);
4. `trainlab prune` removing about half the store while the reads go on
   (bench/scale_prune.py);
then the store is dropped. It ends with a table and one JSON line per size and store.

Usage: python bench/scale_bench.py [--sizes 1000,10000] [--stores postgres,sqlite]
       [--samples 60] [--no-prune] [--no-dashboard] [--tiny-runs 1000] [--no-ray]
       [--mlflow-sizes 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scale_hooks import DETAILS, FIGURES, SETTINGS, LiveStore  # noqa: E402
from bench.scale_prune import prune_half  # noqa: E402
from bench.scale_reads import catalogue, client, time_reads  # noqa: E402
from bench.scale_server import start_server  # noqa: E402
from bench.scale_store import build_store  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GOALS = {"postgres": 50.0, "sqlite": 100.0}  # every read's p95 at 100,000, ms


@contextlib.contextmanager
def fresh_store(store: str, size: int, admin_url: str, workdir: Path) -> Iterator[str]:
    """The URL of an empty database for one run, dropped afterwards."""
    if store == "sqlite":
        path = workdir / f"scale-{size}.db"
        yield f"sqlite:///{path}"
        return
    name = f"trainlab_scale_{size}_{uuid.uuid4().hex[:8]}"
    admin = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle_and_measure(url: str) -> int:
    """Bytes on disk once the store is settled: PostgreSQL after VACUUM ANALYZE (what
    autovacuum does after a bulk load; the planner then knows the sizes), the database's
    size; SQLite after a checkpoint of its write-ahead log, the file's."""
    if url.startswith("postgresql"):
        raw = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(raw, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
            row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
            assert row is not None
            return int(row[0])
    import sqlite3

    path = url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*"))


def run_one(size: int, store: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"size": size, "store": store, "load_before": os.getloadavg()[0]}
    with fresh_store(store, size, args.postgres, workdir) as url:
        print(f"[{time.strftime('%H:%M:%S')}] {store} {size:,}: building", flush=True)
        built = build_store(url, size)
        disk = settle_and_measure(url)
        row |= {"build_s": round(built.build_s, 1), "bytes_on_disk": disk,
                "bytes_per_experiment": round(disk / size)}  # fmt: skip
        print(f"  built in {built.build_s:.1f} s, {disk / 1e6:,.0f} MB on disk "
              f"({disk / size / 1e3:,.1f} kB per experiment)", flush=True)  # fmt: skip
        stack = start_server(url, workdir / f"{store}-{size}")
        try:
            with client(stack.base_url, built.token) as http:
                reads = catalogue(built, http)
                timings = time_reads(http, reads, args.samples, stack.api_pid)
                row["reads"] = {k: vars(t) for k, t in timings.items()}
                live = LiveStore(size, store, stack.base_url, built.token, url, built)
                for key, figure in FIGURES.items():
                    row[key] = figure(live)
                row |= DETAILS.get((size, store), {})
                if not args.no_prune:
                    print(f"  reads done; pruning half ({time.strftime('%H:%M:%S')})", flush=True)
                    kept = catalogue(built, http, recent_only=True)
                    log = workdir / f"prune-{store}-{size}.log"
                    pruned = prune_half(stack, url, http, kept, log)
                    row |= {
                        "prune_s": round(pruned.seconds, 1), "prune_removed": pruned.removed,
                        "prune_read_p95_ms": pruned.worst_read_p95_ms,
                        "prune_longest_transaction_s": pruned.longest_transaction_s,
                        "prune_reads": {k: vars(t) for k, t in pruned.reads.items()},
                    }  # fmt: skip
        finally:
            stack.stop()
    row["load_after"] = os.getloadavg()[0]
    worst = max(row["reads"].items(), key=lambda item: item[1]["p95_ms"])
    row["worst_read"], row["worst_read_p95_ms"] = worst[0], worst[1]["p95_ms"]
    row["metrics_p95_ms"] = row["reads"]["metrics"]["p95_ms"]
    return row


def add_growth(rows: list[dict[str, Any]]) -> None:
    """p95_growth_vs_1000: the largest ratio, over the reads, of a read's p95 to its p95 on
    the 1,000-experiment store of the same kind (None without one)."""
    base = {r["store"]: r for r in rows if r["size"] == 1000}
    for row in rows:
        ref = base.get(row["store"])
        if ref is None:
            row["p95_growth_vs_1000"] = row["growth_read"] = None
            continue
        ratios = {k: t["p95_ms"] / ref["reads"][k]["p95_ms"] for k, t in row["reads"].items()}
        row["growth_read"] = max(ratios, key=lambda k: ratios[k])
        row["p95_growth_vs_1000"] = round(ratios[row["growth_read"]], 2)


def print_table(rows: list[dict[str, Any]]) -> None:
    names = list(rows[0]["reads"])
    head = "".join(f"{r['store'][:2]} {r['size']:>7,}".rjust(22) for r in rows)
    print(f"\n{'read  (p50 / p95 ms, API CPU ms)':<30}{head}")
    for name in names:
        cells = "".join(
            f"{r['reads'][name]['p50_ms']:7.1f}/{r['reads'][name]['p95_ms']:6.1f} "
            f"({r['reads'][name]['api_cpu_ms'] or 0:4.1f})".rjust(22) for r in rows
        )  # fmt: skip
        print(f"{name:<30}{cells}")
    for key in ("worst_read_p95_ms", "p95_growth_vs_1000", "prune_s", "prune_read_p95_ms",
                "prune_longest_transaction_s", "build_s", "bytes_per_experiment",
                "load_before", "load_after"):  # fmt: skip
        print(f"{key:<30}" + "".join(str(r.get(key)).rjust(22) for r in rows))


JSON_KEYS = (
    "size", "store", "worst_read_p95_ms", "worst_read", "p95_growth_vs_1000", "growth_read",
    "metrics_p95_ms", "prune_read_p95_ms", "dashboard_usable_s", "tiny_run_overhead_ms",
    "dashboard_next_page_s", "mlflow_min_ratio",
    "build_s", "bytes_on_disk", "bytes_per_experiment", "prune_s", "prune_removed",
    "prune_longest_transaction_s", "load_before", "load_after", "reads", "dashboard",
    "tiny_runs", "mlflow",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = os.environ.get("BENCH_SCALE_SIZES", "1000,10000,100000")
    parser.add_argument("--sizes", default=sizes, help="comma-separated (BENCH_SCALE_SIZES)")
    parser.add_argument("--stores", default="postgres,sqlite")
    parser.add_argument("--samples", type=int, default=60, help="timed samples per read")
    parser.add_argument("--postgres", default=POSTGRES, help="an admin URL of the server")
    parser.add_argument("--no-prune", action="store_true")
    parser.add_argument("--no-dashboard", action="store_true", help="no headless Chromium")
    parser.add_argument("--tiny-runs", type=int, default=1000, help="0: none")
    parser.add_argument("--no-ray", action="store_true", help="tiny runs without Ray Tune")
    parser.add_argument("--mlflow-sizes", default="10000", help="'': no MLflow")
    args = parser.parse_args()
    SETTINGS.dashboard, SETTINGS.ray = not args.no_dashboard, not args.no_ray
    SETTINGS.tiny_runs = args.tiny_runs
    SETTINGS.mlflow_sizes = {int(s) for s in args.mlflow_sizes.split(",") if s}
    rows = []
    with tempfile.TemporaryDirectory(prefix="trainlab-scale-") as tmp:
        for size in sorted(int(s) for s in args.sizes.split(",")):
            if size < 1000:
                raise SystemExit("sizes start at 1,000 (the ablations and sweep take 450 runs)")
            for store in args.stores.split(","):
                rows.append(run_one(size, store, args, Path(tmp)))
                print("  partial: " + json.dumps(rows[-1], separators=(",", ":")), flush=True)
    add_growth(rows)
    print_table(rows)
    for row in rows:
        print(json.dumps({key: row.get(key) for key in JSON_KEYS}, separators=(",", ":")))


if __name__ == "__main__":
    main()
