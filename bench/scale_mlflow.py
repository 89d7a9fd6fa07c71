"""MLflow beside trainlab at the same size, on the same kind of store, over HTTP.

MLflow's store: its schema made by its own SqlAlchemyStore (its Alembic migrations), on a
PostgreSQL database of its own (beside a PostgreSQL trainlab store) or a SQLite file (beside
SQLite). The runs are written in bulk through its own table definitions (its SQLAlchemy
models' tables, executemany): one experiment of N finished runs, each with 5 params, its name
and user tags, test_accuracy and final_loss, and a loss history of 500 points for one run in
ten (the rest 20 points), with the latest_metrics rows its search orders by. Its REST client
would take an HTTP call per run (about 10,000 calls); what its server reads is the same rows.

Then `mlflow server` (one worker, as trainlab serve is one process) and, sample by sample in
turn so that both see the same machine, the three reads against trainlab's same reads:
- listing ordered by a metric: runs/search ordered by metrics.test_accuracy DESC, 50 runs,
  against GET /experiments?sort=-test_accuracy&limit=50;
- one run: runs/get against GET /experiments/{id};
- a 500-point history: metrics/get-history of a run's 500 loss points, against
  GET /experiments/{id}/loss?max_points=500 (trainlab's run has 18,000 points, downsampled).
Ratios: MLflow's p50 and p95 over trainlab's (above 1: trainlab is faster).
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.api_clients import percentile
from bench.scale_hooks import LiveStore
from bench.scale_reads import client
from tests.conftest import free_port
from worker.shutdown import kill_tree

RUNS_WITH_HISTORY = 10  # one run in this many has a 500-point loss history
SAMPLES = 40


def _rows(experiment_id: str, size: int) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    rng = random.Random(0)
    now = int(time.time() * 1000)
    names = ("runs", "params", "tags", "metrics", "latest_metrics")
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    long_runs = []
    for i in range(size):
        run = uuid.uuid4().hex
        start = now - rng.randrange(365 * 86_400_000)
        tables["runs"].append({
            "run_uuid": run, "name": f"run-{i}", "source_type": "LOCAL", "source_name": "bench",
            "entry_point_name": "", "user_id": f"user{i % 20}", "status": "FINISHED",
            "start_time": start, "end_time": start + 60_000, "deleted_time": None,
            "source_version": "", "lifecycle_stage": "active", "experiment_id": int(experiment_id),
            "artifact_uri": f"file:///tmp/mlflow-bench/{run}",
        })  # fmt: skip
        for key, value in (("lr", "0.001"), ("width", "200"), ("optimizer", "adam"),
                           ("epochs", "3"), ("dataset", "mnist")):  # fmt: skip
            tables["params"].append({"key": key, "value": value, "run_uuid": run})
        for key, value in (("mlflow.runName", f"run-{i}"), ("mlflow.user", f"user{i % 20}")):
            tables["tags"].append({"key": key, "value": value, "run_uuid": run})
        points = 500 if i % RUNS_WITH_HISTORY == 0 else 20
        if points == 500:
            long_runs.append(run)
        loss = [2.3 * 0.995**s + rng.random() * 0.05 for s in range(points)]
        finals = {"test_accuracy": 0.8 + rng.random() * 0.19, "final_loss": loss[-1]}
        metric: dict[str, Any] = {"run_uuid": run, "timestamp": start, "is_nan": False}
        tables["metrics"] += [{**metric, "key": "loss", "value": v, "step": s}
                              for s, v in enumerate(loss)]  # fmt: skip
        for key, figure in [*finals.items(), ("loss", loss[-1])]:
            step = points - 1 if key == "loss" else 0
            if key != "loss":
                tables["metrics"].append({**metric, "key": key, "value": figure, "step": step})
            tables["latest_metrics"].append({**metric, "key": key, "value": figure, "step": step})
    return tables, long_runs


def build(backend_uri: str, size: int, artifacts: str) -> tuple[str, list[str], float]:
    """MLflow's store of `size` runs: (experiment id, runs with 500 points, seconds)."""
    from mlflow.store.tracking.dbmodels import models
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    started = time.perf_counter()
    store = SqlAlchemyStore(backend_uri, artifacts)  # type: ignore[no-untyped-call]
    experiment_id = store.create_experiment("scale")  # type: ignore[no-untyped-call]
    tables, long_runs = _rows(experiment_id, size)
    orm: dict[str, Any] = {"runs": models.SqlRun, "params": models.SqlParam, "tags": models.SqlTag,
           "metrics": models.SqlMetric, "latest_metrics": models.SqlLatestMetric}  # fmt: skip
    with store.engine.begin() as connection:
        for name, rows in tables.items():
            table = orm[name].__table__
            for at in range(0, len(rows), 5000):
                connection.execute(table.insert(), rows[at : at + 5000])
    store.engine.dispose()
    return experiment_id, long_runs, time.perf_counter() - started


def backend(live: LiveStore, workdir: Path) -> tuple[str, str | None]:
    """MLflow's store URI beside `live` (a database of its own, or a file), and the database
    to drop after."""
    if live.store == "sqlite":
        return f"sqlite:///{workdir / 'mlflow.db'}", None
    name = f"mlflow_scale_{uuid.uuid4().hex[:8]}"
    admin = live.database_url.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.replace('postgresql', 'postgresql+psycopg')}/{name}", name


def serve(uri: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (workdir / "mlflow.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
         "--default-artifact-root", (workdir / "artifacts").as_uri(), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.5)
    kill_tree(server.pid)
    raise RuntimeError(f"mlflow server did not start: {(workdir / 'mlflow.log').read_text()}")


def _time(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    answer = call()
    answer.raise_for_status()
    return (time.perf_counter() - started) * 1000


Get = Callable[[httpx.Client, int], httpx.Response]


def reads(live: LiveStore, mlflow: str, experiment_id: str, long_runs: list[str]) -> dict[str, Any]:
    api = f"{mlflow}/api/2.0/mlflow"
    ours = live.built.full_ids

    def theirs_of(i: int) -> str:
        return long_runs[i % len(long_runs)]

    search = {"experiment_ids": [experiment_id], "max_results": 50,
              "order_by": ["metrics.test_accuracy DESC"]}  # fmt: skip
    pairs: dict[str, tuple[Get, Get]] = {
        "listing_by_metric": (
            lambda http, i: http.get("/experiments?sort=-test_accuracy&limit=50"),
            lambda http, i: http.post(f"{api}/runs/search", json=search),
        ),
        "one_run": (
            lambda http, i: http.get(f"/experiments/{ours[i % len(ours)]}"),
            lambda http, i: http.get(f"{api}/runs/get", params={"run_id": theirs_of(i)}),
        ),
        "history_500": (
            lambda http, i: http.get(f"/experiments/{ours[i % len(ours)]}/loss?max_points=500"),
            lambda http, i: http.get(f"{api}/metrics/get-history", params={
                "run_id": theirs_of(i), "metric_key": "loss", "max_results": 500}),
        ),
    }  # fmt: skip
    figures: dict[str, Any] = {}
    with client(live.base_url, live.token) as ours_http, httpx.Client(timeout=60) as theirs:
        assert len(theirs.post(f"{api}/runs/search", json=search).json()["runs"]) == 50
        for name, (trainlab, mlflow_read) in pairs.items():
            times: dict[str, list[float]] = {"trainlab": [], "mlflow": []}
            for i in range(5 + SAMPLES):
                a = _time(lambda: trainlab(ours_http, i))  # noqa: B023
                b = _time(lambda: mlflow_read(theirs, i))  # noqa: B023
                if i >= 5:
                    times["trainlab"].append(a)
                    times["mlflow"].append(b)
            row = {f"{who}_{q}_ms": round(percentile(t, p), 1) for who, t in times.items()
                   for q, p in (("p50", 0.5), ("p95", 0.95))}  # fmt: skip
            row["ratio_p50"] = round(row["mlflow_p50_ms"] / row["trainlab_p50_ms"], 2)
            row["ratio_p95"] = round(row["mlflow_p95_ms"] / row["trainlab_p95_ms"], 2)
            figures[name] = row
    return figures


def compare(live: LiveStore) -> dict[str, Any]:
    print(f"[{time.strftime('%H:%M:%S')}] MLflow at {live.size:,} runs ({live.store})", flush=True)
    with tempfile.TemporaryDirectory(prefix="trainlab-mlflow-") as tmp:
        workdir = Path(tmp)
        uri, database = backend(live, workdir)
        server = None
        try:
            experiment_id, long_runs, build_s = build(uri, live.size, (workdir / "a").as_uri())
            print(f"  MLflow store built in {build_s:.1f} s", flush=True)
            server, url = serve(uri, workdir)
            figures: dict[str, Any] = {"build_s": round(build_s, 1)}
            figures["reads"] = reads(live, url, experiment_id, long_runs)
        finally:
            if server is not None:
                kill_tree(server.pid)  # the CLI and the uvicorn server it starts
                server.wait(timeout=30)
            if database is not None:
                admin = live.database_url.rsplit("/", 1)[0].replace(
                    "postgresql+psycopg", "postgresql"
                )
                with psycopg.connect(f"{admin}/postgres", autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    ratios = [r[k] for r in figures["reads"].values() for k in ("ratio_p50", "ratio_p95")]
    figures["min_ratio"] = min(ratios)
    for name, row in figures["reads"].items():
        print(f"  {name}: {row}", flush=True)
    return figures
