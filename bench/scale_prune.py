"""Retention at scale: `trainlab prune` removing about half of a store, timed, while the reads
of bench/scale_reads.py run against the live server the whole time.

The store's ordinary runs are spread over the last 365 days, so `--older-than 183d` takes
about half of them (ablation members stay: prune leaves those alone, as the API does). The
command is the real CLI in a process of its own on the same database; it removes experiments
100 at a time, each batch its own transaction (cli/maintenance.py). On PostgreSQL the
longest transaction it held open is watched from pg_stat_activity (every 50 ms), which shows
whether it works in bounded batches or holds one long lock.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from bench.scale_reads import Read, Timing, round_robin, summarize
from tests.integration.stack import Stack

PRUNE_AGE = "183d"
REMOVED = re.compile(r"^removed [0-9a-f]{32} ", re.M)  # one line per experiment removed
APPLICATION = "trainlab-scale-prune"


@dataclass(frozen=True)
class PruneResult:
    removed: int
    seconds: float
    reads: dict[str, Timing]  # the reads while it ran
    worst_read_p95_ms: float
    longest_transaction_s: float | None  # PostgreSQL only


def _with_application(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={APPLICATION}"


class TransactionWatch(threading.Thread):
    """The longest-open transaction of the prune's connections, polled."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.url = database_url.replace("postgresql+psycopg://", "postgresql://")
        self.longest = 0.0
        self.failed: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        query = (
            "SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) "
            "FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL"
        )
        try:
            with psycopg.connect(self.url, autocommit=True) as connection:
                while not self.stop.is_set():
                    row = connection.execute(query, (APPLICATION,)).fetchone()
                    self.longest = max(self.longest, float(row[0]) if row else 0.0)
                    time.sleep(0.05)
        except psycopg.Error as exc:  # the figure is lost, not the run
            self.failed = repr(exc)


def prune_half(
    stack: Stack, database_url: str, http: httpx.Client, reads: list[Read], log: Path
) -> PruneResult:
    """Run `trainlab prune --older-than 183d` on the store and time `reads` meanwhile (of
    runs it keeps: bench/scale_reads.catalogue's recent_only)."""
    postgres = database_url.startswith("postgresql")
    env = {**stack.env, "TRAINLAB_DATABASE_URL": _with_application(database_url)}
    if not postgres:
        env["TRAINLAB_DATABASE_URL"] = database_url
    watch = TransactionWatch(database_url) if postgres else None
    if watch is not None:
        watch.start()
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "prune", "--older-than", PRUNE_AGE],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        # Reads without pauses (the change feed is timed as it comes) until prune exits.
        live = [Read(r.name, r.url, r.stream) for r in reads]
        times = round_robin(http, live, lambda: process.poll() is not None)
        process.wait()
    seconds = time.perf_counter() - started
    if watch is not None:
        watch.stop.set()
        watch.join()
        if watch.failed:
            print(f"  (transaction watch failed: {watch.failed})", flush=True)
    if process.returncode != 0:
        raise RuntimeError(f"trainlab prune exited {process.returncode}: {log.read_text()[-2000:]}")
    removed = len(REMOVED.findall(log.read_text()))
    timings = {name: summarize(t) for name, t in times.items() if t}
    worst = max((t.p95_ms for t in timings.values()), default=0.0)
    return PruneResult(removed, seconds, timings, worst,
                       None if watch is None else round(watch.longest, 3))  # fmt: skip
