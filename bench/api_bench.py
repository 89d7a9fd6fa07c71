"""The service's own overhead, each figure against its baseline from the same go.

On a real stack (PostgreSQL + Redis: `trainlab serve --no-worker` and a `trainlab worker`; or,
with --embedded, the SQLite default: `trainlab serve` and the worker it starts as its child):

1. End to end: the spec (`seed-layernorm`, --epochs, --train-limit) trained by the engine
   alone in this process (1 thread, the data decoded before the clock starts, as a worker
   has it warm before its claim) vs POST /experiments -> `succeeded` through the API,
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
   of serve, and /proc counts serve's own threads only. With PostgreSQL the figure leaves out
   the database server's own work for each query (its backend is another process); with
   SQLite, which runs inside serve, it is included: compare modes with that in mind.
4. Training steps/s (the run's metrics.steps_per_second) of a fresh --load-epochs run with no
   clients, then of another while 20 pollers each send 5 requests/s (status and incremental
   loss, alternating, with ETags when given). Goal: slowdown <= 10%.
   Also the API process's share of a CPU during each run: how much of the training core
   the pollers cost it. (Both runs also carry this process's own wait, a status GET every
   0.25 s: the baseline's share says how little that is.)
5. POST latency, 200 POSTs from 20 concurrent clients (a small spec): p50 (goal <= 50 ms),
   p95, p99, first with the worker paused (SIGSTOP: the API's own figure, with its CPU per
   POST), then again while the worker trains the runs queued so far on the API's core. Last,
   because the runs they make queue up behind each other; the stack goes after.

CPU placement (machines with 2+ CPUs): the API, the worker and its pool are pinned to the first
CPU; this process (after the engine-alone run, which takes that same CPU for like for like) and
the load generators (bench/api_load.py, a process of their own under taskset) to the others.
So every CPU second the API spends answering comes out of the training core, as on a small
single-host deployment, the worst case this goal is about, while the clients' own CPU time
(their JSON, their HTTP) never does. PostgreSQL and Redis are shared servers and stay where the
scheduler puts them. On one CPU nothing is pinned and the figures say less. Before any timing
the stack is left to go quiet (settle_s): /readyz answers while a worker's pool processes are
still importing torch, CPU time that would otherwise land in the first figures.

Prints a table (figure, value, goal) and one JSON line per mode. No figure is asserted.

Usage: python bench/api_bench.py --data-dir ../shared/data [--epochs 3] [--train-limit N]
       [--embedded] [--profile]
`make bench-api` runs PostgreSQL + Redis, then embedded; `make bench-api-embedded` embedded only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import api_clients as clients  # noqa: E402
from bench.api_figures import PHASES, breakdown, print_table, rounded  # noqa: E402
from bench.api_phases import (  # noqa: E402
    PRESET,
    cpu_layout,
    engine_alone,
    poll_costs,
    post_latency,
    steps_per_second,
)
from bench.api_profile import Profiler, print_tops  # noqa: E402
from tests.integration.stack import start_embedded, start_production  # noqa: E402

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
        alone = steps_per_second(stack, load_overrides, layout, pollers=0)
        polled = steps_per_second(stack, load_overrides, layout, pollers=args.pollers)
        rows["steps_per_s_alone"] = alone["steps_per_s"]
        rows["steps_per_s_polled"] = polled["steps_per_s"]
        rows["pollers_slowdown_pct"] = (
            None
            if not alone["steps_per_s"] or polled["steps_per_s"] is None
            else (1 - polled["steps_per_s"] / alone["steps_per_s"]) * 100
        )
        rows["api_cpu_share_alone"] = alone["api_cpu_share"]
        rows["api_cpu_share_polled"] = polled["api_cpu_share"]
        rows["pollers_requests_per_s"] = polled.get("requests_per_s")
        rows["pollers_not_modified"] = polled.get("not_modified")
        rows["pollers_p50_ms"] = polled.get("p50_ms")
        rows["pollers_errors"] = polled.get("errors")
        # Last: the runs these POSTs make queue up (see post_latency).
        rows.update(post_latency(stack, layout, args.posts, args.post_clients, worker_paused=True))
        rows.update(post_latency(stack, layout, args.posts, args.post_clients, worker_paused=False))
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
    "engine alone": [
        "engine_data_load_s", "engine_train_s", "engine_other_s", "engine_steps_per_s",
    ],
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
        "api_cpu_share_alone", "api_cpu_share_polled", "pollers_requests_per_s",
        "pollers_not_modified", "pollers_p50_ms", "pollers_errors",
    ],
    "POST under concurrent clients (worker paused, then training)": [
        "post_count", "post_refused", "post_p50_ms", "post_p95_ms", "post_p99_ms",
        "api_cpu_ms_per_post", "post_busy_p50_ms", "post_busy_p95_ms", "post_busy_p99_ms",
        "post_busy_refused",
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
