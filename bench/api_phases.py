"""The phases of bench/api_bench.py that drive a stack: the engine alone, the runs under
load, the CPU cost of polls and POST latency. Each returns figures for the table."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import api_clients as clients
from bench.api_figures import engine_phases
from tests.integration.stack import Stack

REPO = Path(__file__).resolve().parent.parent
PRESET = "seed-layernorm"
# (server CPUs, client CPUs), or None where there is one CPU and nothing is pinned.
Layout = tuple[set[int], set[int]] | None


def cpu_layout() -> Layout:
    """(server CPUs, client CPUs), or None on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, set(cpus[1:])) if len(cpus) >= 2 else None


def engine_alone(
    overrides: dict[str, object], data_dir: Path, layout: Layout
) -> dict[str, float | None]:
    import torch

    from core.presets import build_spec
    from worker.engine import run_training
    from worker.engine.data import load_dataset

    torch.set_num_threads(1)
    spec = build_spec(PRESET, overrides)
    if layout:
        clients.pin([os.getpid()], layout[0])  # the worker's core, for like for like
    try:
        # The data decoded before the clock starts, as a worker has it before its claim
        # (TRAINLAB_WARM_DATASETS): the baseline is the engine at its best, not a cold start.
        started = time.perf_counter()
        load_dataset(spec.dataset, data_dir, torch.device("cpu"), allow_download=False)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        result = run_training(
            spec, data_dir=data_dir, allow_download=False, device="cpu", threads=1
        )
        seconds = time.perf_counter() - started
    finally:
        if layout:
            clients.pin([os.getpid()], layout[1])
    return {**engine_phases(seconds, result.metrics), "engine_data_load_s": load_s}


def load_process(layout: Layout, *args: str) -> subprocess.Popen[str]:
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
    layout: Layout,
    *,
    pollers: int,
) -> dict[str, Any]:
    """A fresh run of the load spec; with `pollers`, the clients start as soon as it exists
    and stop when they see it finished. Also the API process's share of a CPU meanwhile: the
    part of the slowdown it explains, on the core it shares with training."""
    if layout:
        clients.pin([stack.api_pid, *stack.worker_pids()], layout[0])
    body = {"preset": PRESET, "overrides": overrides}
    api_cpu, started = clients.cpu_seconds(stack.api_pid), time.monotonic()
    with stack.client() as client:
        experiment_id = client.post("/experiments", json=body).json()["id"]
    load = None
    if pollers:
        load = load_process(
            layout, "poll", "--base-url", stack.base_url, "--experiment", experiment_id,
            "--clients", str(pollers), "--rate", "5",
        )  # fmt: skip
    finished = stack.wait_terminal(experiment_id, timeout=7200)
    api_share = (clients.cpu_seconds(stack.api_pid) - api_cpu) / (time.monotonic() - started)
    traffic = load_result(load) if load else {}
    if finished["status"] != "succeeded":
        raise SystemExit(f"load run ended {finished['status']}: {finished['error']}")
    rate = (finished.get("metrics") or {}).get("steps_per_second")
    return {
        "steps_per_s": None if rate is None else float(rate),
        "api_cpu_share": api_share,
        **traffic,
    }


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
    stack: Stack,
    layout: Layout,
    count: int,
    concurrency: int,
    *,
    worker_paused: bool,
) -> dict[str, Any]:
    """`count` POSTs from `concurrency` clients. With `worker_paused` (SIGSTOP on the worker
    and its pool) the API has its core to itself: the API's own figure, and its CPU per POST.
    Without, the worker trains the runs queued so far on that same core meanwhile: POST on a
    busy single-core host. The spec is small, so the queue drains quickly afterwards."""
    body = {"preset": PRESET, "overrides": {"epochs": 1, "train_limit": 200, "device": "cpu"}}
    paused = stack.worker_pids() if worker_paused else []
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    options = ["--base-url", stack.base_url, "--body", json.dumps(body), "--count", str(count)]
    options += ["--clients", str(concurrency)]
    api_cpu = clients.cpu_seconds(stack.api_pid)
    try:
        result = load_result(load_process(layout, "post", *options))
    finally:
        for pid in paused:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    times: list[float] = result["latencies_ms"]
    prefix = "post" if worker_paused else "post_busy"
    rows = {
        f"{prefix}_p50_ms": statistics.median(times),
        f"{prefix}_p95_ms": clients.percentile(times, 0.95),
        f"{prefix}_p99_ms": clients.percentile(times, 0.99),
        f"{prefix}_refused": result["failures"] or None,
    }
    if worker_paused:
        rows["post_count"] = len(times)
        rows["api_cpu_ms_per_post"] = (clients.cpu_seconds(stack.api_pid) - api_cpu) * 1000 / count
    return rows
