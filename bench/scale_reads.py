"""The reads the scale benchmark times, over real HTTP, and their p50 / p95.

Each read is a URL per sample. Reads of one experiment take a different one each sample (a
team opens many runs, and a repeated one would only time the server's caches); the rest
repeat the same question. One client, one request at a time, keep-alive, after warm-up
samples that are not counted (they warm the connection and the server's code paths).

GET /changes answers from a store read shared by every client and redone at most every 2 s
(api/services/changes.py): each of its samples waits that long first, so every sample times
a fresh read, the worst a client gets.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bench.api_clients import cpu_seconds, percentile
from bench.scale_store import BuiltStore

CHANGES_FRESH_S = 2.05
PAGE = 50  # the dashboard's page
# Paging reads go 20 at a time: page 50 then exists at every size (rows 981..1,000 of 1,000).
SMALL_PAGE = 20


@dataclass(frozen=True)
class Read:
    name: str
    url: Callable[[int], str]  # the i-th sample's path and query
    stream: bool = False  # an event stream: timed to its first event
    pause_s: float = 0.0  # waited before each sample, untimed


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p95_ms: float
    samples: int
    api_cpu_ms: float | None = None  # the API process's CPU per sample: load-independent


def client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, timeout=60.0, headers={"Authorization": f"Bearer {token}"}
    )


def cursor_of_page(http: httpx.Client, page: int, query: str = "") -> str:
    """The cursor that opens page `page` (1-based) of the listing, walked to page by page."""
    cursor = ""
    for _ in range(page - 1):
        answer = http.get(f"/experiments?limit={SMALL_PAGE}{query}{cursor}")
        answer.raise_for_status()
        found = answer.json()["next_cursor"]
        if found is None:
            raise RuntimeError(f"the listing ends before page {page}")
        cursor = f"&cursor={found}"
    return cursor


def catalogue(
    store: BuiltStore, http: httpx.Client, *, seed: int = 1, recent_only: bool = False
) -> list[Read]:
    """The reads of the issue, on this store; with `recent_only`, of runs a prune of the
    older half leaves (reads while it runs must not ask for what it is deleting)."""
    rng = random.Random(seed)

    def pick(ids: list[str]) -> list[str]:
        kept = [i for i in ids if i in store.recent] if recent_only else ids
        return rng.sample(kept, len(kept))

    full = pick(store.full_ids)
    every = pick(store.full_ids + store.short_ids)
    by_metric = "&sort=-test_accuracy"
    page_50 = cursor_of_page(http, 50)
    page_50_metric = cursor_of_page(http, 50, by_metric)

    short = pick(store.short_ids)

    def twenty(i: int) -> str:
        """20 runs of the store's mix, the same at every size: 2 full-length (the one in ten of
        18,000 points) and 18 short. Drawn from every finished run instead, the smallest store
        compared fewer full-length runs (its 450 ablation and sweep runs are all short), so
        the read grew with the mix, not the store (p50 points 23,500 at 1,000, 34,500 at
        100,000)."""
        chosen = [full[(i * 2 + k) % len(full)] for k in range(2)]
        chosen += [short[(i * 18 + k) % len(short)] for k in range(18)]
        return ",".join(chosen)

    presets = store.presets
    return [
        Read("list_default", lambda i: f"/experiments?limit={PAGE}"),
        Read(
            "list_filtered_by_metric",
            lambda i: (
                f"/experiments?status=succeeded&preset={presets[i % len(presets)]}"
                f"{by_metric}&limit={PAGE}"
            ),
        ),
        Read("list_page_50", lambda i: f"/experiments?limit={SMALL_PAGE}{page_50}"),
        Read(
            "list_page_50_by_metric",
            lambda i: f"/experiments?limit={SMALL_PAGE}{by_metric}{page_50_metric}",
        ),
        Read("experiment", lambda i: f"/experiments/{every[i % len(every)]}"),
        Read("loss_500", lambda i: f"/experiments/{full[i % len(full)]}/loss?max_points=500"),
        Read("compare_loss_20", lambda i: f"/compare/loss?experiments={twenty(i)}"),
        Read("ablation_summary", lambda i: f"/ablations/{store.ablation_id}/summary"),
        Read("metrics", lambda i: "/metrics"),
        Read("changes_first_event", lambda i: "/changes", stream=True, pause_s=CHANGES_FRESH_S),
        Read("sweep", lambda i: f"/sweeps/{store.sweep_id}"),
    ]


def sample(http: httpx.Client, read: Read, i: int) -> float:
    """One sample of `read`, in milliseconds."""
    url = read.url(i)
    started = time.perf_counter()
    if read.stream:
        with http.stream("GET", url) as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                if line.startswith("data:"):
                    break
    else:
        answer = http.get(url)
        answer.raise_for_status()
    return (time.perf_counter() - started) * 1000


def time_reads(
    http: httpx.Client, reads: list[Read], samples: int, api_pid: int, warmup: int = 5
) -> dict[str, Timing]:
    """p50 and p95 of each read over `samples` samples (streams: a third as many, as each
    waits for a fresh store read), after `warmup` uncounted ones; with the CPU time the API
    process (`api_pid`) spent per sample, which shared cores slow far less than wall time
    (its idle work, the reaper's and retention's passes, counts in too)."""
    timings: dict[str, Timing] = {}
    for read in reads:
        count = max(10, samples // 3) if read.pause_s else samples
        times: list[float] = []
        cpu = 0.0
        for i in range(warmup + count):
            if read.pause_s:
                time.sleep(read.pause_s)
            before = cpu_seconds(api_pid)
            elapsed = sample(http, read, i)
            if i >= warmup:
                times.append(elapsed)
                cpu += cpu_seconds(api_pid) - before
        timings[read.name] = summarize(times, cpu * 1000 / count)
    return timings


def summarize(times: list[float], api_cpu_ms: float | None = None) -> Timing:
    return Timing(
        round(percentile(times, 0.5), 2),
        round(percentile(times, 0.95), 2),
        len(times),
        None if api_cpu_ms is None else round(api_cpu_ms, 2),
    )


def round_robin(
    http: httpx.Client, reads: list[Read], until: Callable[[], bool]
) -> dict[str, list[float]]:
    """Every read in turn, without pauses, until `until()` is true: latencies by read."""
    times: dict[str, list[float]] = {read.name: [] for read in reads}
    i = 0
    while not until():
        for read in reads:
            times[read.name].append(sample(http, read, 1000 + i))
        i += 1
    return times
