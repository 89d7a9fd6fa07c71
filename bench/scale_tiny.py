"""1,000 tiny runs through 2 workers, and the same tiny function as 1,000 Ray Tune trials.

trainlab: a real stack (tests/integration/stack.py: `trainlab migrate`, `serve --no-worker`
and two `trainlab worker` processes on a fresh PostgreSQL database and a leased Redis
database), every setting at its shipped default but the quotas, the rates and fusion (off, so
each run is its own delivery, as each Ray trial is its own call). Two warm-up runs first (a
pool process imports torch and decodes MNIST once), then the workers are paused (SIGSTOP),
the N runs are POSTed, and the clock runs from resuming the workers to the last run's
finished_at. Ray Tune: 2 concurrent trials of 1 CPU each, actors reused, the same spec
trained by the same engine call inside each trial.

Overhead per run, for both: the wall time each of the 2 slots spends per run
(2 x wall / N) less the mean time of the training function itself (trainlab: the run's
metrics.phases load_s + train_s + evaluate_s; Ray: the trial's own clock around the same
call). Where trainlab's overhead goes: phases.claim_s (claim to the engine's start) and
write_s (the outcome's writes), and the rest of started_at -> finished_at; the gap between
one run's end and the next run's start on the same worker (the Celery round trip, the claim).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.conftest import TEST_DATA_DIR
from tests.integration.stack import BASE_SETTINGS, TERMINAL, Stack, start_production

PRESET = "seed-adam"
# train_limit / test_limit 100 as the issue says; one epoch of 10 batches, a loss point each.
TINY: dict[str, object] = {
    "train_limit": 100, "test_limit": 100, "epochs": 1, "batch_size": 10, "log_every": 1,
    "device": "cpu",
}  # fmt: skip
SETTINGS = {
    **BASE_SETTINGS,
    "TRAINLAB_MAX_FUSED_RUNS": "1",
    "TRAINLAB_QUOTA_ACTIVE_EXPERIMENTS": "100000",
    "TRAINLAB_QUOTA_DAILY_CPU_HOURS": "1000000",
    "TRAINLAB_RATE_LIMIT_KEY": "1000000/minute",
    "TRAINLAB_RATE_LIMIT_ADDRESS": "1000000/minute",
}


def _signal_workers(stack: Stack, sig: int) -> None:
    for pid in stack.worker_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _rows(database_url: str, ids: list[str]) -> list[dict[str, Any]]:
    raw = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw) as connection:
        cursor = connection.execute(
            "SELECT id, status, worker, started_at, finished_at, metrics::jsonb -> 'phases'"
            " FROM experiments WHERE id = ANY(%s)",
            (ids,),
        )
        names = ("id", "status", "worker", "started_at", "finished_at", "phases")
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _wait_terminal(stack: Stack, database_url: str, ids: list[str], timeout: float) -> None:
    raw = database_url.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + timeout
    with psycopg.connect(raw, autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT count(*) FROM experiments WHERE id = ANY(%s) AND status = ANY(%s)",
                (ids, sorted(TERMINAL)),
            ).fetchone()
            if row is not None and row[0] == len(ids):
                return
            time.sleep(0.5)
    raise RuntimeError(f"tiny runs not all ended after {timeout:.0f} s\n{stack.logs()}")


def trainlab_tiny(runs: int, workers: int = 2) -> dict[str, Any]:
    """The N tiny runs through a live stack; figures for the table and JSON line."""
    body = {"preset": PRESET, "overrides": TINY}
    with tempfile.TemporaryDirectory(prefix="trainlab-tiny-") as tmp:
        stack = start_production(Path(tmp), workers=workers, settings=SETTINGS)
        try:
            database_url = stack.env["TRAINLAB_DATABASE_URL"]
            warm = [stack.submit(body)["id"] for _ in range(workers)]
            _wait_terminal(stack, database_url, warm, timeout=300)
            _signal_workers(stack, signal.SIGSTOP)
            posted = time.perf_counter()
            with httpx.Client(base_url=stack.base_url, timeout=30.0) as client:
                ids = []
                for _ in range(runs):
                    response = client.post("/experiments", json=body)
                    response.raise_for_status()
                    ids.append(response.json()["id"])
            post_ms = (time.perf_counter() - posted) * 1000 / runs
            resumed = time.time()
            _signal_workers(stack, signal.SIGCONT)
            _wait_terminal(stack, database_url, ids, timeout=120 + runs * 2.0)
            rows = _rows(database_url, ids)
            exact = _exact_series(stack, ids)
        finally:
            _signal_workers(stack, signal.SIGCONT)
            stack.stop()
    return {**summarise(rows, resumed, workers, post_ms), "exact_series": exact}


def _exact_series(stack: Stack, ids: list[str]) -> str:
    """How many of the runs' loss series (read over HTTP, as a client sees it) are exactly the
    10 steps one epoch of 10 batches logs, once each."""
    with httpx.Client(base_url=stack.base_url, timeout=30.0) as client:
        exact = sum(
            client.get(f"/experiments/{eid}/loss").json().get("steps") == list(range(1, 11))
            for eid in ids
        )
    return f"{exact}/{len(ids)}"


def mean_ms(values: list[float]) -> float | None:
    return round(statistics.mean(values) * 1000, 1) if values else None


def summarise(
    rows: list[dict[str, Any]], resumed: float, workers: int, post_ms: float
) -> dict[str, Any]:
    ended = max(r["finished_at"] for r in rows)
    wall = ended.timestamp() - resumed
    done = [r for r in rows if r["status"] == "succeeded" and r["phases"]]
    engine = [r["phases"]["load_s"] + r["phases"]["train_s"] + r["phases"]["evaluate_s"]
              for r in done]  # fmt: skip
    engine_ms = statistics.mean(engine) * 1000 if engine else 0.0
    in_run = [(r["finished_at"] - r["started_at"]).total_seconds() for r in done]
    gaps: list[float] = []
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_worker.setdefault(row["worker"] or "?", []).append(row)
    for own in by_worker.values():
        own.sort(key=lambda r: r["started_at"])
        gaps += [
            (b["started_at"] - a["finished_at"]).total_seconds() for a, b in itertools.pairwise(own)
        ]
    return {
        "runs": len(rows),
        "statuses": {s: sum(r["status"] == s for r in rows) for s in sorted(TERMINAL)},
        "wall_s": round(wall, 1),
        "runs_per_s": round(len(rows) / wall, 2),
        "engine_ms": round(engine_ms, 1),
        "overhead_ms": round(workers * wall * 1000 / len(rows) - engine_ms, 1),
        "claim_ms": mean_ms([r["phases"]["claim_s"] for r in done]),
        "write_ms": mean_ms([r["phases"]["write_s"] for r in done]),
        "start_to_finish_ms": mean_ms(in_run),
        "between_runs_ms": mean_ms(gaps),
        "post_ms": round(post_ms, 1),
    }


def ray_tiny(trials: int, concurrent: int = 2) -> dict[str, Any]:
    """The same engine call as N Ray Tune trials, `concurrent` at a time."""
    import ray
    from ray import tune

    repo = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)
    ray.init(
        num_cpus=concurrent, include_dashboard=False, log_to_driver=False,
        configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
    )  # fmt: skip
    data_dir = str(TEST_DATA_DIR)

    def trainable(config: dict[str, Any]) -> None:
        started = time.perf_counter()
        from core.presets import build_spec
        from worker.engine import run_training

        spec = build_spec(PRESET, dict(TINY))
        run_training(spec, data_dir=Path(data_dir), allow_download=False, device="cpu", threads=1)
        tune.report({"fn_s": time.perf_counter() - started})

    try:
        with tempfile.TemporaryDirectory(prefix="trainlab-tiny-ray-") as storage:
            started = time.perf_counter()
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": 1}),
                param_space={"i": tune.grid_search(list(range(trials)))},
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),
                run_config=tune.RunConfig(storage_path=storage, name="tiny", verbose=0),
            )
            results = tuner.fit()
            wall = time.perf_counter() - started
            metrics = [results[i].metrics or {} for i in range(len(results))]
            fn = [m["fn_s"] for m in metrics if "fn_s" in m]
    finally:
        ray.shutdown()
    fn_ms = statistics.mean(fn) * 1000 if fn else 0.0
    return {
        "trials": len(fn),
        "wall_s": round(wall, 1),
        "runs_per_s": round(len(fn) / wall, 2) if fn else None,
        "fn_ms": round(fn_ms, 1),
        "overhead_ms": round(concurrent * wall * 1000 / max(len(fn), 1) - fn_ms, 1),
    }


def tiny_runs(runs: int, with_ray: bool = True) -> dict[str, Any]:
    """Both sides and their ratio; prints them."""
    load = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')}] tiny runs: {runs:,} through trainlab", flush=True)
    figures: dict[str, Any] = {"trainlab": trainlab_tiny(runs), "load_before": load}
    print(f"  trainlab: {figures['trainlab']}", flush=True)
    if with_ray:
        print(f"[{time.strftime('%H:%M:%S')}] tiny runs: {runs:,} Ray Tune trials", flush=True)
        figures["ray"] = ray_tiny(runs)
        print(f"  ray tune: {figures['ray']}", flush=True)
        ours, theirs = figures["trainlab"]["overhead_ms"], figures["ray"]["overhead_ms"]
        figures["overhead_vs_ray"] = round(ours / theirs, 3) if theirs > 0 else None
        figures["runs_per_s_vs_ray"] = round(
            figures["trainlab"]["runs_per_s"] / figures["ray"]["runs_per_s"], 3
        )
        print(f"  trainlab / Ray Tune: overhead per run {figures['overhead_vs_ray']}, "
              f"runs per second {figures['runs_per_s_vs_ray']}", flush=True)  # fmt: skip
    figures["load_after"] = os.getloadavg()[0]
    return figures


if __name__ == "__main__":
    import argparse
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    print(json.dumps(tiny_runs(args.runs, not args.no_ray), separators=(",", ":")))
