"""The service's own overhead, each figure against its baseline from the same go.

On a real stack (PostgreSQL + Redis: `trainlab serve --no-worker` and a `trainlab worker`; or,
with --embedded, the SQLite default: `trainlab serve` and the worker it starts as its child):

1. End to end: the spec (`seed-layernorm`, --epochs, --train-limit) trained by the engine
   alone in this process (1 thread) vs POST /experiments -> `succeeded` through the API,
   noticed on the experiment's event stream (GET /experiments/{id}/events, `end`) rather
   than by polling, which would add its interval; polling only if the stream can't say.
   Goal: API / engine <= 1.05.
2. Where that time goes: POST until created_at, queue wait (created_at -> started_at, the
   claim), the worker's metrics["phases"] (claim/load/train/evaluate/write, "n/a" until the
   worker writes them) and what they leave of started_at -> finished_at, then the notice lag
   (finished_at -> the client knowing). The engine alone: its train_seconds and the rest.
   --profile adds py-spy's top functions by own time for the API and the worker (raw stacks
   in bench/results/api-profile-<mode>/).
3. GET /experiments/{id}/loss latency on the finished run (goals p50 <= 20 ms for the full
   curve, <= 5 ms with max_points=500), then the API process's CPU seconds per 1,000 status
   polls and 1,000 incremental loss polls (each fetching about one second's worth of new
   points, and with nothing new), read from /proc/<pid>/stat less its idle rate; with
   If-None-Match (the 304 path) too when the server sends ETags. Measured on the finished run
   in both modes so that nothing else runs meanwhile: the embedded worker is a child process
   of serve, and /proc counts serve's own threads only.
4. Training steps/s (the run's metrics.steps_per_second) of a fresh --load-epochs run with no
   clients, then of another while 20 pollers each send 5 requests/s (status and incremental
   loss, alternating, with ETags when given). Goal: slowdown <= 10%.
5. POST latency, 200 POSTs from 20 concurrent clients (a small spec): p50 (goal <= 50 ms),
   p95, p99. Last, because the runs it makes queue up behind each other; the stack goes after.

CPU placement (machines with 2+ CPUs): the API, the worker and its pool are pinned to the first
CPU; this process (after the engine-alone run, which takes that same CPU for like for like) and
the load generators (bench/api_load.py, a process of their own under taskset) to the others.
So every CPU second the API spends answering comes out of the training core, as on a small
single-host deployment, the worst case this goal is about, while the clients' own CPU time
(their JSON, their HTTP) never does. PostgreSQL and Redis are shared servers and stay where the
scheduler puts them. On one CPU nothing is pinned and the figures say less.

Prints a table (figure, value, goal) and one JSON line per mode. No figure is asserted.

Usage: python bench/api_bench.py --data-dir ../shared/data [--epochs 3] [--train-limit N]
       [--embedded] [--profile]
`make bench-api` runs PostgreSQL + Redis, then embedded; `make bench-api-embedded` embedded only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import api_clients as clients  # noqa: E402
from bench.api_figures import PHASES, breakdown, engine_phases, print_table, rounded  # noqa: E402
from bench.api_profile import Profiler, print_tops  # noqa: E402
from tests.integration.stack import Stack, start_embedded, start_production  # noqa: E402

PRESET = "seed-layernorm"
# The deployment's own intervals (core/settings.py defaults), not the tests' short ones: a
# checkpoint every second is right for a test of crash recovery, not for a speed figure.
# Quotas and rates high enough for 200 POSTs and 20 pollers from one (loopback) client; the
# event stream long enough for a whole run, so no reconnect shows up in the notice lag.
BENCH_SETTINGS = {
    "TRAINLAB_FLUSH_INTERVAL_S": "1",
    "TRAINLAB_CHECKPOINT_INTERVAL_S": "60",
    "TRAINLAB_HEARTBEAT_TIMEOUT_S": "60",
    "TRAINLAB_REAPER_INTERVAL_S": "10",
    "TRAINLAB_QUOTA_ACTIVE_EXPERIMENTS": "100000",
    "TRAINLAB_QUOTA_DAILY_CPU_HOURS": "1000000",
    "TRAINLAB_RATE_LIMIT_KEY": "1000000/minute",
    "TRAINLAB_RATE_LIMIT_ADDRESS": "1000000/minute",
    "TRAINLAB_MAX_STREAM_S": "86400",
}


def cpu_layout() -> tuple[set[int], set[int]] | None:
    """(server CPUs, client CPUs), or None on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, set(cpus[1:])) if len(cpus) >= 2 else None


def engine_alone(
    overrides: dict[str, object], data_dir: Path, layout: tuple[set[int], set[int]] | None
) -> dict[str, float | None]:
    import torch

    from core.presets import build_spec
    from worker.engine import run_training

    torch.set_num_threads(1)
    spec = build_spec(PRESET, overrides)
    if layout:
        clients.pin([os.getpid()], layout[0])  # the worker's core, for like for like
    try:
        started = time.perf_counter()
        result = run_training(
            spec, data_dir=data_dir, allow_download=False, device="cpu", threads=1
        )
        seconds = time.perf_counter() - started
    finally:
        if layout:
            clients.pin([os.getpid()], layout[1])
    return engine_phases(seconds, result.metrics)


def load_process(layout: tuple[set[int], set[int]] | None, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(REPO / "bench" / "api_load.py"), *args]
    if layout:
        command = ["taskset", "-c", ",".join(map(str, sorted(layout[1]))), *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def load_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=7200)
    if process.returncode != 0:
        raise SystemExit(f"load generator exited {process.returncode}")
    found: dict[str, Any] = json.loads(out)
    return found


def steps_per_second(
    stack: Stack,
    overrides: dict[str, object],
    layout: tuple[set[int], set[int]] | None,
    *,
    pollers: int,
) -> tuple[float | None, dict[str, Any] | None]:
    """A fresh run of the load spec; with `pollers`, the clients start as soon as it exists
    and stop when they see it finished."""
    if layout:
        clients.pin([stack.api_pid, *stack.worker_pids()], layout[0])
    body = {"preset": PRESET, "overrides": overrides}
    with stack.client() as client:
        experiment_id = client.post("/experiments", json=body).json()["id"]
    load = None
    if pollers:
        load = load_process(
            layout, "poll", "--base-url", stack.base_url, "--experiment", experiment_id,
            "--clients", str(pollers), "--rate", "5",
        )  # fmt: skip
    finished = stack.wait_terminal(experiment_id, timeout=7200)
    traffic = load_result(load) if load else None
    if finished["status"] != "succeeded":
        raise SystemExit(f"load run ended {finished['status']}: {finished['error']}")
    rate = (finished.get("metrics") or {}).get("steps_per_second")
    return (None if rate is None else float(rate)), traffic


def poll_costs(stack: Stack, experiment_id: str, polls: int) -> dict[str, Any]:
    """API CPU per 1,000 polls on the finished run. The incremental loss poll's cursor walks
    the series in steps of one second of training (the flush interval's worth of points), as
    a poller that keeps up sees it; `nothing new` asks past the last point."""
    with stack.client() as client:
        experiment = client.get(f"/experiments/{experiment_id}").json()
        steps = client.get(f"/experiments/{experiment_id}/loss").json()["steps"]
    metrics = experiment.get("metrics") or {}
    per_second = len(steps) / max(float(metrics.get("train_seconds") or 1.0), 1e-9)
    stride = max(1, round(per_second))
    status_url = f"/experiments/{experiment_id}"
    # Cursors before the last point only: each of these polls gets new points.
    cursors = [s for s in [0, *steps[stride - 1 :: stride]] if steps and s < steps[-1]]
    walk = [f"{status_url}/loss?since_step={s}" for s in cursors]
    last = [f"{status_url}/loss?since_step={steps[-1] if steps else 0}"]
    idle = clients.idle_cpu_rate(stack.api_pid)
    rows: dict[str, Any] = {"api_idle_cpu_per_s": idle, "loss_points_per_poll": stride}
    cases = {
        "status": [status_url],
        "loss_new": walk or last,
        "loss_nothing_new": last,
    }
    for name, urls in cases.items():
        cost = clients.poll_cost(stack, urls, polls, idle)
        rows[f"cpu_s_per_1000_{name}"] = cost.cpu_s_per_1000
        rows[f"{name}_p50_ms"] = cost.p50_ms
        # A poller that keeps up gets new points with a new cursor: no tag to send. The 304
        # path is for the same URL asked again, with nothing new since.
        if name != "loss_new" and clients.gives_etag(stack, urls[0]):
            tagged = clients.poll_cost(stack, urls, polls, idle, etag=True)
            rows[f"cpu_s_per_1000_{name}_304"] = tagged.cpu_s_per_1000
            rows[f"{name}_304_share"] = tagged.statuses.get(304, 0) / polls
        elif name != "loss_new":
            rows[f"cpu_s_per_1000_{name}_304"] = None
    return rows


def post_latency(
    stack: Stack, layout: tuple[set[int], set[int]] | None, count: int, concurrency: int
) -> dict[str, Any]:
    # Small enough that the worker churning through the queue they make stays a side show.
    body = {"preset": PRESET, "overrides": {"epochs": 1, "train_limit": 200, "device": "cpu"}}
    result = load_result(
        load_process(
            layout,
            "post",
            "--base-url",
            stack.base_url,
            "--body",
            json.dumps(body),
            "--count",
            str(count),
            "--clients",
            str(concurrency),
        )
    )
    times: list[float] = result["latencies_ms"]
    return {
        "post_count": len(times),
        "post_refused": result["failures"] or None,
        "post_p50_ms": statistics.median(times),
        "post_p95_ms": clients.percentile(times, 0.95),
        "post_p99_ms": clients.percentile(times, 0.99),
    }


def run_mode(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    overrides: dict[str, object] = {"epochs": args.epochs, "device": "cpu"}
    load_overrides: dict[str, object] = {"epochs": args.load_epochs, "device": "cpu"}
    if args.train_limit:
        overrides["train_limit"] = load_overrides["train_limit"] = args.train_limit
    layout = cpu_layout()
    rows: dict[str, Any] = {
        "mode": "embedded" if args.embedded else "postgres+redis",
        "pinned": None
        if layout is None
        else f"server {sorted(layout[0])}, clients {sorted(layout[1])}",
    }
    starter = start_embedded if args.embedded else start_production
    # The worker trains at one thread (the stack's TRAINLAB_TORCH_THREADS), as the engine
    # alone does here: like for like.
    stack = starter(workdir, settings=BENCH_SETTINGS)
    # The raw stacks stay for a closer look (flamegraph.pl, speedscope): bench/results/ is
    # ignored by git.
    profile_dir = REPO / "bench" / "results" / f"api-profile-{rows['mode'].replace('+', '-')}"
    if args.profile:
        profile_dir.mkdir(parents=True, exist_ok=True)
    client_cpus = None if layout is None else ",".join(map(str, sorted(layout[1])))
    profiler = Profiler(profile_dir, client_cpus)
    try:

        def server() -> list[int]:
            return [stack.api_pid, *stack.worker_pids()]

        if layout:
            clients.pin(server(), layout[0])
        rows["settle_s"] = clients.wait_quiet(server)
        rows.update(engine_alone(overrides, args.data_dir, layout))
        if layout:  # pool children the worker started meanwhile
            clients.pin(server(), layout[0])
        if args.profile:
            profiler.start("api", stack.api_pid, gil=True)
            # `trainlab worker` processes, or embedded serve's worker child (parents first).
            roots = [worker.pid for worker in stack.workers] or stack.worker_pids()[:1]
            for i, pid in enumerate(roots):
                profiler.start(f"worker{i}", pid, subprocesses=True)
        done = clients.submit_and_wait(stack, {"preset": PRESET, "overrides": overrides})
        tops = profiler.stop() if args.profile else {}
        rows["api_s"] = done.noticed - done.post_started
        rows["api_over_engine"] = rows["api_s"] / rows["engine_s"]
        rows["noticed_via"] = done.via
        rows.update(breakdown(done))
        experiment_id = done.experiment["id"]
        with stack.client() as client:
            curve = client.get(f"/experiments/{experiment_id}/loss").json()
        rows["loss_points"] = len(curve["steps"])
        full = clients.latency_ms(stack, experiment_id, {}, args.requests)
        reduced = clients.latency_ms(stack, experiment_id, {"max_points": 500}, args.requests)
        rows["loss_full_p50_ms"] = statistics.median(full)
        rows["loss_full_p95_ms"] = clients.percentile(full, 0.95)
        rows["loss_500_p50_ms"] = statistics.median(reduced)
        rows["loss_500_p95_ms"] = clients.percentile(reduced, 0.95)
        rows.update(poll_costs(stack, experiment_id, args.polls))
        alone, _ = steps_per_second(stack, load_overrides, layout, pollers=0)
        polled, traffic = steps_per_second(stack, load_overrides, layout, pollers=args.pollers)
        rows["steps_per_s_alone"] = alone
        rows["steps_per_s_polled"] = polled
        rows["pollers_slowdown_pct"] = (
            None if not alone or polled is None else (1 - polled / alone) * 100
        )
        rows["pollers_requests_per_s"] = traffic and traffic["requests_per_s"]
        rows["pollers_p50_ms"] = traffic and traffic["p50_ms"]
        rows["pollers_errors"] = traffic and traffic["errors"]
        rows.update(post_latency(stack, layout, args.posts, args.post_clients))
    finally:
        if profiler.recorders:
            profiler.stop()
        stack.stop()
    report(rows)
    if tops:
        print_tops(tops)
        print(f"raw stacks (py-spy's folded format): {profile_dir}")
    return rows


SECTIONS = {
    "end to end (API vs engine alone)": [
        "settle_s", "engine_s", "api_s", "api_over_engine", "noticed_via",
    ],
    "where the API's time goes": [
        "post_rtt_s", "post_to_created_s", "queue_wait_s", "worker_run_s",
        *[f"phase_{p}" for p in PHASES], "worker_residual_s", "worker_train_seconds",
        "notice_lag_s", "total_s",
    ],
    "engine alone": ["engine_train_s", "engine_other_s", "engine_steps_per_s"],
    "GET /loss on the finished run": [
        "loss_points", "loss_full_p50_ms", "loss_full_p95_ms", "loss_500_p50_ms",
        "loss_500_p95_ms",
    ],
    "API CPU per 1,000 polls (finished run, idle rate subtracted)": [
        "api_idle_cpu_per_s", "loss_points_per_poll", "cpu_s_per_1000_status",
        "cpu_s_per_1000_status_304", "cpu_s_per_1000_loss_new",
        "cpu_s_per_1000_loss_nothing_new", "cpu_s_per_1000_loss_nothing_new_304",
        "status_304_share", "loss_nothing_new_304_share",
        "status_p50_ms", "loss_new_p50_ms", "loss_nothing_new_p50_ms",
    ],
    "training under 20 pollers at 5 req/s": [
        "steps_per_s_alone", "steps_per_s_polled", "pollers_slowdown_pct",
        "pollers_requests_per_s", "pollers_p50_ms", "pollers_errors",
    ],
    "POST under concurrent clients": [
        "post_count", "post_refused", "post_p50_ms", "post_p95_ms", "post_p99_ms",
    ],
}  # fmt: skip


def report(rows: dict[str, Any]) -> None:
    shown = rounded(rows)
    print(f"\n== {rows['mode']} ({rows['pinned'] or 'one CPU: nothing pinned'})")
    print_table(shown, SECTIONS)
    print(clients.json_line(shown))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=3, help="the end-to-end run's")
    parser.add_argument("--train-limit", type=int, default=None, help="every run's records")
    parser.add_argument("--load-epochs", type=int, default=1, help="the steps/s runs'")
    parser.add_argument("--requests", type=int, default=200, help="per /loss latency figure")
    parser.add_argument("--polls", type=int, default=1000, help="per CPU-per-poll figure")
    parser.add_argument("--pollers", type=int, default=20)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--post-clients", type=int, default=20)
    parser.add_argument("--embedded", action="store_true", help="SQLite + embedded worker")
    parser.add_argument("--profile", action="store_true", help="py-spy the end-to-end run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        run_mode(args, Path(workdir))


if __name__ == "__main__":
    main()
