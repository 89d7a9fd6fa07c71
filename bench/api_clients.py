"""What the API benchmark does to a live stack: submit and wait, poll, time, read CPU time.

Everything here runs in the benchmark's own process (the load generators that must run in a
process of their own are in bench/api_load.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.integration.stack import TERMINAL, Stack

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads, not its children), from
    /proc/<pid>/stat: no psutil needed for two numbers."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its closing ')' do not.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def pin(pids: Iterable[int], cpus: set[int]) -> None:
    """Pin every thread of each process to `cpus`. sched_setaffinity(pid) would move only
    the main thread; threads started later inherit from the thread that starts them."""
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(int(tid), cpus)


def wait_quiet(
    processes: Callable[[], list[int]], timeout: float = 180.0, busy_share: float = 0.05
) -> float:
    """Wait until `processes()` (asked afresh each second: a worker forks its pool while we
    wait) together use under `busy_share` of a CPU over a second; return how long it took.
    /readyz answers before a worker's pool processes have imported torch and the engine:
    seconds of CPU that would otherwise land in the engine-alone run on the same core, or in
    the first run through the API."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pids = processes()
        before = _total_cpu(pids)
        time.sleep(1.0)
        if _total_cpu(pids) - before < busy_share:
            break
    return time.monotonic() - started


def _total_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds(pid)
    return total


def timestamp(value: str | None) -> float | None:
    """An API datetime (ISO 8601, UTC) as epoch seconds, comparable with time.time()."""
    return None if value is None else datetime.fromisoformat(value).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class Completion:
    experiment: dict[str, Any]
    post_started: float  # time.time() just before the POST
    post_s: float  # the POST's round trip
    noticed: float  # time.time() when the client learnt the run had finished
    via: str  # "stream", or "polling" when the stream could not say


def submit_and_wait(stack: Stack, body: dict[str, Any], timeout: float = 7200) -> Completion:
    """POST the spec, then wait for the end on the experiment's event stream: the server
    sends `end` within one of its store polls (0.5 s) of the run finishing, where client-side
    polling would add its own interval to the figure."""
    with stack.client() as client:
        post_started = time.time()
        response = client.post("/experiments", json=body)
        post_s = time.time() - post_started
        if response.status_code != 201:
            raise SystemExit(f"POST /experiments answered {response.status_code}: {response.text}")
        experiment_id = response.json()["id"]
        noticed, via = _wait_stream(client, experiment_id, time.monotonic() + timeout)
        experiment: dict[str, Any] = client.get(f"/experiments/{experiment_id}").json()
    if experiment["status"] != "succeeded":
        raise SystemExit(f"run ended {experiment['status']}: {experiment['error']}")
    return Completion(experiment, post_started, post_s, noticed, via)


def _wait_stream(client: httpx.Client, experiment_id: str, deadline: float) -> tuple[float, str]:
    last_id: str | None = None
    while time.monotonic() < deadline:
        headers = {"Last-Event-ID": last_id} if last_id is not None else {}
        try:
            with client.stream(
                "GET", f"/experiments/{experiment_id}/events", headers=headers, timeout=None
            ) as response:
                if response.status_code != 200:
                    break  # no stream to be had (e.g. too many open): poll instead
                event = ""
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        last_id = line[4:]
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "end":
                        return time.time(), "stream"
        except httpx.HTTPError:
            break
        # The stream closed without `end` (the server's max_stream_s): is the run over?
        if client.get(f"/experiments/{experiment_id}").json()["status"] in TERMINAL:
            return time.time(), "polling"
    while time.monotonic() < deadline:
        if client.get(f"/experiments/{experiment_id}").json()["status"] in TERMINAL:
            return time.time(), "polling"
        time.sleep(0.05)
    raise SystemExit(f"{experiment_id} not finished in time")


def latency_ms(stack: Stack, experiment_id: str, params: dict[str, int], n: int) -> list[float]:
    times = []
    with stack.client() as client:
        for i in range(n + 5):
            started = time.perf_counter()
            response = client.get(f"/experiments/{experiment_id}/loss", params=params)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if i >= 5:  # the first few warm the connection and the caches
                times.append(elapsed)
    return times


@dataclass
class PollCost:
    cpu_s_per_1000: float
    p50_ms: float
    statuses: dict[int, int]


def idle_cpu_rate(pid: int, seconds: float = 3.0) -> float:
    """The API's own CPU seconds per second with no requests (its background passes), so
    that the per-poll figures count the polls alone."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def poll_cost(
    stack: Stack,
    urls: list[str],
    n: int,
    idle_rate: float,
    etag: bool = False,
) -> PollCost:
    """CPU seconds the API process spends on `n` sequential keep-alive GETs cycling through
    `urls`, per 1,000, less its idle rate. With `etag`, each URL's last ETag goes back as
    If-None-Match (the 304 path)."""
    tags: dict[str, str] = {}
    statuses: dict[int, int] = {}
    times: list[float] = []
    with stack.client() as client:
        for url in urls[:5]:  # warm the connection, the caches and the tags
            response = client.get(url)
            if "etag" in response.headers:
                tags[url] = response.headers["etag"]
        started_cpu, started = cpu_seconds(stack.api_pid), time.perf_counter()
        for i in range(n):
            url = urls[i % len(urls)]
            headers = {"If-None-Match": tags[url]} if etag and url in tags else {}
            sent = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - sent) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if etag and "etag" in response.headers:
                tags[url] = response.headers["etag"]
        elapsed = time.perf_counter() - started
        spent = cpu_seconds(stack.api_pid) - started_cpu - idle_rate * elapsed
    return PollCost(max(0.0, spent) * 1000 / n, statistics.median(times), statuses)


def gives_etag(stack: Stack, url: str) -> bool:
    with stack.client() as client:
        return "etag" in client.get(url).headers


def json_line(rows: dict[str, Any]) -> str:
    return json.dumps(rows, separators=(",", ":"), default=str)
